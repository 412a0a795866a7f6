#!/usr/bin/python3
"""Fixtures for search/stats_test.go, computed apart from the Go code.

Regenerate with (Debian: apt-get install -y python3-scipy):

    cd search && /usr/bin/python3 testdata/stats_fixtures.py > testdata/stats.json

scipy.stats.kendalltau is Kendall's tau-b (variant="b", the default),
scipy.stats.spearmanr gives tied values their mean rank, and numpy's std
with ddof=1 is the sample standard deviation. SciPy returns nan where a
side is constant; effnas defines both correlations as 0 there, and those
cases are written by hand in the Go test, not here.
"""

import itertools
import json
import math

import numpy as np
import scipy
from scipy import stats


def tau(x, y):
    v = stats.kendalltau(x, y, variant="b").statistic
    assert not math.isnan(v), (x, y)
    return float(v)


def rho(x, y):
    v = stats.spearmanr(x, y).statistic
    assert not math.isnan(v), (x, y)
    return float(v)


def mean_std(xs):
    xs = np.asarray(xs, dtype=float)
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


# Rank correlations: ties in x, in y, in both, and pairs tied in both.
pairs = [
    ("n=2 concordant", [1, 2], [3, 5]),
    ("n=2 discordant", [1, 2], [5, 3]),
    ("n=3 tie in x", [1, 1, 2], [1, 2, 3]),
    ("n=3 tie in y", [1, 2, 3], [2, 1, 1]),
    ("n=3 a pair tied in both", [1, 1, 2], [1, 1, 2]),
    ("n=4 ties in x and in y, apart", [1, 1, 2, 3], [1, 2, 2, 3]),
    # The examples of SciPy's own documentation (1.10): kendalltau gives
    # -0.47140452079103173, spearmanr 0.8207826816681233.
    ("scipy kendalltau doc", [12, 2, 1, 12, 2], [1, 4, 7, 1, 0]),
    ("scipy spearmanr doc", [1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
    # A panel of 13 (B0 and 12 random members, as effnas bench proxy
    # draws by default): proxy means against reference means, with ties
    # of 3 and 2 in x, 3, 3 and 2 in y, and a pair tied in both (0, 10).
    ("n=13 panel",
     [0.912, 0.887, 0.905, 0.912, 0.874, 0.899, 0.905, 0.921, 0.868, 0.893, 0.912, 0.881, 0.899],
     [0.968, 0.955, 0.962, 0.971, 0.951, 0.962, 0.959, 0.968, 0.949, 0.962, 0.968, 0.955, 0.960]),
]

# Mean and sample sd: the classic example whose population sd is 2 (the
# sample sd is sqrt(32/7)), two runs, one run.
means = [
    [2, 4, 4, 4, 5, 5, 7, 9],
    [0.9, 0.8],
    [0.9],
    [0.9167, 0.9167, 0.9167],
]

# pairwise: three seeds' columns over 6 architectures, with ties; the
# three pairs disagree, so the mean of all three differs from any one.
columns = [
    [0.91, 0.88, 0.93, 0.88, 0.90, 0.87],
    [0.93, 0.90, 0.89, 0.91, 0.90, 0.88],
    [0.92, 0.89, 0.90, 0.90, 0.93, 0.89],
]

# A proxy benchmark of B0 and 5 random members (Panel 5), 3 proxy seeds,
# 2 reference seeds. Proxy accuracies are correct answers out of 128
# validation images, reference test accuracies out of 64 test images, so
# that every sum is exact in binary and equal sums are equal means in Go
# as here. None is a failed run: architecture 3's proxy seed 1 diverged,
# so it is left out of every figure taken over the panel.
VAL, TEST = 128, 64
proxy = [
    [117, 119, 118],   # B0: mean 118
    [113, 115, 114],   # mean 114
    [119, 114, 115],   # mean 116, tied with 5; first at seed 0 among the complete
    [122, None, 121],  # failed at seed 1: left out
    [113, 117, 115],   # mean 115; seed 0 tied with 1, seed 2 with 2
    [115, 115, 118],   # mean 116, tied with 2
]
reference = [
    [62, 62],  # 62
    [60, 61],  # 60.5
    [61, 60],  # 60.5, tied with 1
    [63, 63],  # the best, but left out
    [61, 62],  # 61.5
    [62, 61],  # 61.5, tied with 4
]


def panel():
    seeds, ref_seeds = 3, 2
    archs = []
    for p, r in zip(proxy, reference):
        pv = [c / VAL for c in p if c is not None]
        rv = [c / TEST for c in r if c is not None]
        pm, ps = mean_std(pv)
        rm, rs = mean_std(rv)
        archs.append({"proxy_mean": pm, "proxy_std": ps, "reference": rm, "reference_std": rs,
                      "failed": sum(c is None for c in p) + sum(c is None for c in r)})
    full = [i for i, (p, r) in enumerate(zip(proxy, reference)) if None not in p and None not in r]

    def col(runs, scale, s):
        return [runs[i][s] / scale for i in full]

    def mean_pairs(runs, scale, k):
        ps = list(itertools.combinations(range(k), 2))
        return (float(np.mean([tau(col(runs, scale, a), col(runs, scale, b)) for a, b in ps])),
                float(np.mean([rho(col(runs, scale, a), col(runs, scale, b)) for a, b in ps])))

    seed_std = float(np.mean([archs[i]["proxy_std"] for i in full]))
    ts, rs = mean_pairs(proxy, VAL, seeds)
    trs, rrs = mean_pairs(reference, TEST, ref_seeds)
    pm = [archs[i]["proxy_mean"] for i in full]
    rm = [archs[i]["reference"] for i in full]
    return {
        "val_size": VAL, "test_size": TEST, "proxy": proxy, "reference_runs": reference,
        "want": {
            "seed_std": seed_std,
            "reference_std": float(np.mean([archs[i]["reference_std"] for i in full])),
            "tau_seeds": ts, "spearman_seeds": rs,
            "tau_reference_seeds": trs, "spearman_reference_seeds": rrs,
            "tau_reference": tau(pm, rm), "spearman_reference": rho(pm, rm),
            "noise": 2 * math.sqrt(2) * seed_std,
            "noise_mean": 2 * math.sqrt(2 / seeds) * seed_std,
            "archs": archs,
        },
    }


out = {
    "generator": "search/testdata/stats_fixtures.py, SciPy %s, NumPy %s" % (scipy.__version__, np.__version__),
    "correlations": [{"name": n, "x": x, "y": y, "tau_b": tau(x, y), "spearman": rho(x, y)} for n, x, y in pairs],
    "mean_std": [dict(zip(("xs", "mean", "std"), (xs, *mean_std(xs)))) for xs in means],
    "pairwise": {
        "columns": columns,
        "tau": float(np.mean([tau(a, b) for a, b in itertools.combinations(columns, 2)])),
        "spearman": float(np.mean([rho(a, b) for a, b in itertools.combinations(columns, 2)])),
        "first_pair_tau": tau(columns[0], columns[1]),
    },
    "panel": panel(),
}
print(json.dumps(out, indent=1))
