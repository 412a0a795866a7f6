package search

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// statsFixtures is testdata/stats.json, written by SciPy and NumPy
// (testdata/stats_fixtures.py; the command to regenerate it is at its
// top), not by the code under test.
type statsFixtures struct {
	Generator    string `json:"generator"`
	Correlations []struct {
		Name     string    `json:"name"`
		X        []float64 `json:"x"`
		Y        []float64 `json:"y"`
		TauB     float64   `json:"tau_b"`
		Spearman float64   `json:"spearman"`
	} `json:"correlations"`
	MeanStd []struct {
		Xs   []float64 `json:"xs"`
		Mean float64   `json:"mean"`
		Std  float64   `json:"std"`
	} `json:"mean_std"`
	Pairwise struct {
		Columns      [][]float64 `json:"columns"`
		Tau          float64     `json:"tau"`
		Spearman     float64     `json:"spearman"`
		FirstPairTau float64     `json:"first_pair_tau"`
	} `json:"pairwise"`
	Panel panelFixture `json:"panel"`
}

// panelFixture is a proxy benchmark's results and the report SciPy makes
// of them (see TestPanelReportAgainstSciPy).
type panelFixture struct {
	ValSize  int      `json:"val_size"`
	TestSize int      `json:"test_size"`
	Proxy    [][]*int `json:"proxy"`          // correct answers by architecture and seed; nil: the run failed
	Ref      [][]*int `json:"reference_runs"` // the same at the reference
	Want     struct {
		SeedStd                float64 `json:"seed_std"`
		ReferenceStd           float64 `json:"reference_std"`
		TauSeeds               float64 `json:"tau_seeds"`
		SpearmanSeeds          float64 `json:"spearman_seeds"`
		TauReferenceSeeds      float64 `json:"tau_reference_seeds"`
		SpearmanReferenceSeeds float64 `json:"spearman_reference_seeds"`
		TauReference           float64 `json:"tau_reference"`
		SpearmanReference      float64 `json:"spearman_reference"`
		Noise                  float64 `json:"noise"`
		NoiseMean              float64 `json:"noise_mean"`
		Archs                  []struct {
			ProxyMean    float64 `json:"proxy_mean"`
			ProxyStd     float64 `json:"proxy_std"`
			Reference    float64 `json:"reference"`
			ReferenceStd float64 `json:"reference_std"`
			Failed       int     `json:"failed"`
		} `json:"archs"`
	} `json:"want"`
}

func loadStatsFixtures(t *testing.T) statsFixtures {
	t.Helper()
	raw, err := os.ReadFile("testdata/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var f statsFixtures
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("testdata/stats.json: %v", err)
	}
	if len(f.Correlations) == 0 || len(f.MeanStd) == 0 || len(f.Panel.Proxy) == 0 {
		t.Fatal("testdata/stats.json holds no fixtures")
	}
	return f
}

// statsTol is far below any difference a wrong rule makes (tau-a against
// tau-b differs by 0.15 in the n=3 cases) and far above rounding.
const statsTol = 1e-12

func nearStat(got, want float64) bool { return math.Abs(got-want) <= statsTol }

// TestCorrelationsByHand: small cases worked out on paper, and the cases
// where a side is constant, where SciPy returns NaN and effnas 0.
func TestCorrelationsByHand(t *testing.T) {
	for _, tc := range []struct {
		name      string
		x, y      []float64
		tau, rho  float64
		reasoning string
	}{
		{"n=2 agree", []float64{0.8, 0.9}, []float64{0.95, 0.97}, 1, 1, "one concordant pair"},
		{"n=2 disagree", []float64{0.8, 0.9}, []float64{0.97, 0.95}, -1, -1, "one discordant pair"},
		// Pairs (0,1) tied in x only, (0,2) and (1,2) concordant: C=2, D=0;
		// pairs not tied in x: 2, not tied in y: 3, so tau-b = 2/sqrt(2*3)
		// = 0.8165 (tau-a, 2/3, is 0.67). Mean ranks x = (1.5, 1.5, 3), y =
		// (1, 2, 3): deviations (-.5, -.5, 1) and (-1, 0, 1), sxy = 1.5,
		// sxx = 1.5, syy = 2, rho = 1.5/sqrt(3) = 0.8660 (ordinal ranks
		// 1, 2, 3 would give 1).
		{"n=3 tie in x", []float64{1, 1, 2}, []float64{1, 2, 3}, 2 / math.Sqrt(6), 1.5 / math.Sqrt(3), "above"},
		// (0,1) tied in both, counted in neither denominator: C=2 over
		// sqrt(2*2) = 1 (tau-a: 2/3).
		{"n=3 pair tied in both", []float64{1, 1, 2}, []float64{5, 5, 7}, 1, 1, "above"},
		{"n=2 tie in x", []float64{0.9, 0.9}, []float64{0.8, 0.7}, 0, 0, "x constant: defined as 0"},
		{"constant x", []float64{0.5, 0.5, 0.5}, []float64{1, 2, 3}, 0, 0, "x constant: defined as 0"},
		{"constant y", []float64{1, 2, 3}, []float64{0.5, 0.5, 0.5}, 0, 0, "y constant: defined as 0"},
		{"n=1", []float64{1}, []float64{2}, 0, 0, "no pair"},
		{"n=0", nil, nil, 0, 0, "no pair"},
	} {
		if got := KendallTauB(tc.x, tc.y); !nearStat(got, tc.tau) {
			t.Errorf("%s: KendallTauB(%v, %v) = %.17g, want %.17g (%s)", tc.name, tc.x, tc.y, got, tc.tau, tc.reasoning)
		}
		if got := Spearman(tc.x, tc.y); !nearStat(got, tc.rho) {
			t.Errorf("%s: Spearman(%v, %v) = %.17g, want %.17g (%s)", tc.name, tc.x, tc.y, got, tc.rho, tc.reasoning)
		}
	}
}

// TestCorrelationsAgainstSciPy: Kendall's tau-b and Spearman's rho (mean
// ranks for ties) against scipy.stats.kendalltau and spearmanr, on ties
// in x, in y, in both, the two examples of SciPy's documentation, and a
// panel of 13. Both are symmetric, and reversing one side negates them.
func TestCorrelationsAgainstSciPy(t *testing.T) {
	f := loadStatsFixtures(t)
	for _, c := range f.Correlations {
		neg := make([]float64, len(c.Y))
		for i, v := range c.Y {
			neg[i] = -v
		}
		for _, chk := range []struct {
			what      string
			got, want float64
		}{
			{"KendallTauB(x, y)", KendallTauB(c.X, c.Y), c.TauB},
			{"KendallTauB(y, x)", KendallTauB(c.Y, c.X), c.TauB},
			{"KendallTauB(x, -y)", KendallTauB(c.X, neg), -c.TauB},
			{"Spearman(x, y)", Spearman(c.X, c.Y), c.Spearman},
			{"Spearman(y, x)", Spearman(c.Y, c.X), c.Spearman},
			{"Spearman(x, -y)", Spearman(c.X, neg), -c.Spearman},
		} {
			if !nearStat(chk.got, chk.want) {
				t.Errorf("%s: %s = %.17g, want %.17g (%s)", c.Name, chk.what, chk.got, chk.want, f.Generator)
			}
		}
	}
}

// TestMeanStd: the sample standard deviation (n-1). The classic example
// 2, 4, 4, 4, 5, 5, 7, 9 has mean 5, squares of deviations summing to 32,
// population sd sqrt(32/8) = 2 and sample sd sqrt(32/7) = 2.138; two runs
// 0.9, 0.8 have sd 0.1/sqrt(2) = 0.0707 (population: 0.05).
func TestMeanStd(t *testing.T) {
	f := loadStatsFixtures(t)
	cases := []struct {
		xs        []float64
		mean, std float64
	}{
		{[]float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, math.Sqrt(32.0 / 7)},
		{[]float64{0.9, 0.8}, 0.85, 0.1 / math.Sqrt2},
		{[]float64{0.9}, 0.9, 0},
		{nil, 0, 0},
	}
	for _, c := range f.MeanStd {
		cases = append(cases, struct {
			xs        []float64
			mean, std float64
		}{c.Xs, c.Mean, c.Std})
	}
	for _, c := range cases {
		m, s := MeanStd(c.xs)
		if !nearStat(m, c.mean) || !nearStat(s, c.std) {
			t.Errorf("MeanStd(%v) = %.17g, %.17g; want %.17g, %.17g", c.xs, m, s, c.mean, c.std)
		}
	}
}

// TestPairwise: the mean tau-b and rho over all three pairs of three
// seeds' columns (SciPy), not one pair's; one seed has no pair; two seeds
// have one.
func TestPairwise(t *testing.T) {
	f := loadStatsFixtures(t)
	cols := f.Pairwise.Columns
	col := func(i int) []float64 { return cols[i] }
	tau, rho := pairwise(len(cols), col)
	if !nearStat(tau, f.Pairwise.Tau) || !nearStat(rho, f.Pairwise.Spearman) {
		t.Errorf("pairwise over 3 seeds = %.17g, %.17g; want %.17g, %.17g (seeds 0 and 1 alone: tau %.4f)",
			tau, rho, f.Pairwise.Tau, f.Pairwise.Spearman, f.Pairwise.FirstPairTau)
	}
	if tau, rho := pairwise(1, col); tau != 0 || rho != 0 {
		t.Errorf("pairwise over 1 seed = %v, %v; want 0, 0", tau, rho)
	}
	if tau, _ := pairwise(2, col); !nearStat(tau, f.Pairwise.FirstPairTau) {
		t.Errorf("pairwise over 2 seeds = %.17g; want their one tau-b, %.17g", tau, f.Pairwise.FirstPairTau)
	}
}
