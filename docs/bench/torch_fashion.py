#!/usr/bin/python3
"""Accuracy peer of `effnas train`: the same network, data and recipe, trained with PyTorch.

Does effnas's trainer learn as well as PyTorch does? This trains what `effnas train` trains with
the same flags and prints its report (the same JSON fields): test and validation accuracy, losses,
time. It mirrors:

- the network: torch_peer.build (the network of effnas's space/ and trainer/), here with
  TensorFlow's "same" padding as effnas pads;
- the data (trainer/dataset): the built-in MNIST (the repository's trainer/dataset/mnist, normalised
  with 0.1307/0.3081) or a directory of IDX files such as Debian's Fashion-MNIST (normalised with
  the mean and standard deviation of the training images); 28x28 images enlarged to --res
  bilinearly (pixel centres aligned) or shrunk with an area filter; the validation, training and
  test images chosen, and the training batches ordered, by a port of Go's math/rand/v2 PCG, so
  that they are the very images, in the very order, of `effnas train` with the same --seed and
  --data-seed;
- the recipe (trainer.Config's defaults): AdamW (beta1 0.9, beta2 0.999, epsilon 1e-8) at a peak
  learning rate of 0.004, or --optimizer sgd (Nesterov momentum 0.9, L2 decay) at 0.1; weight
  decay 5e-5 on convolution and dense weights only; a linear warm-up over a tenth of an epoch, then
  cosine decay to zero; batch 64; mean cross-entropy; batch norm with momentum 0.99 (TensorFlow's
  convention), epsilon 1e-3; dropout and drop-connect 0.2; the batch-norm statistics then replaced
  by the average batch statistics of the first 20 batches of the last epoch's order, under the
  final weights, before evaluation. A loss that is not finite or exceeds 10 times the first
  step's is reported as diverged (exit status 1).

What differs: the random draws of the initial weights, dropout and drop-connect (PyTorch's
generator, seeded with --seed), and effnas's debiased moving averages of batch norm, which the
calibration replaces anyway. effnas's third optimizer, rmsprop (TensorFlow's), is not mirrored.

Needs Debian's PyTorch 1.13 (apt-get install python3-torch) and, for Fashion-MNIST, Debian's
dataset-fashion-mnist; nothing is downloaded. Run it with /usr/bin/python3 from the repository's
root, beside effnas with the same flags, e.g. on Fashion-MNIST (10,000 training images, 2 epochs,
2,000 validation and 2,000 test images, width 0.5 at 32x32, seed 1):

  go run ./cmd/effnas train --dataset /usr/share/datasets/fashion-mnist --seed 1 --json
  /usr/bin/python3 docs/bench/torch_fashion.py --dataset /usr/share/datasets/fashion-mnist --seed 1

and the reference recipe of the README's retraining ("The default search on Fashion-MNIST,
retrained"), for EfficientNet-B0's blocks:

  /usr/bin/python3 docs/bench/torch_fashion.py --dataset /usr/share/datasets/fashion-mnist \\
      --train-size 30000 --epochs 3 --val-size 1000 --test-size 1000 --data-seed 1 --seed 1
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import arch_of, build, counts, format_block, network_flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
M64, M128 = (1 << 64) - 1, (1 << 128) - 1


class GoRand:
    """Go's rand.New(rand.NewPCG(seed1, seed2)) (math/rand/v2): PCG with a 128-bit LCG and the DXSM
    output, and Rand's Shuffle and Perm, so that choices match effnas's draw for draw."""
    MUL = (2549297995355413924 << 64) | 4865540595714422341
    INC = (6364136223846793005 << 64) | 1442695040888963407

    def __init__(self, seed1, seed2):
        self.state = (seed1 << 64) | seed2

    def uint64(self):
        self.state = (self.state * self.MUL + self.INC) & M128
        hi, lo = self.state >> 64, self.state & M64
        hi ^= hi >> 32
        hi = (hi * 0xda942042e4dd58b5) & M64
        hi ^= hi >> 48
        return (hi * (lo | 1)) & M64

    def uint64n(self, n):
        if n & (n - 1) == 0:
            return self.uint64() & (n - 1)
        prod = self.uint64() * n
        if prod & M64 < n:
            thresh = (-n & M64) % n
            while prod & M64 < thresh:
                prod = self.uint64() * n
        return prod >> 64

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = self.uint64n(i + 1)
            a[i], a[j] = a[j], a[i]

    def perm(self, n):
        p = list(range(n))
        self.shuffle(p)
        return p


def read_idx(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:2] == b'\x1f\x8b':
        data = gzip.decompress(data)
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def idx_file(d, base):
    """trainer/dataset's names: base, base.gz and the dotted train-images.idx3-ubyte[.gz]."""
    dotted = base.replace('-idx', '.idx')
    for name in (base, base + '.gz', dotted, dotted + '.gz'):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit(f'idx directory {d}: missing {base} (or {base}.gz)')


def load_raw(spec):
    """(train images, train labels, test images, test labels, fixed mean and std or None)."""
    d, fixed = spec, None
    if spec == 'mnist':
        d, fixed = os.path.join(REPO, 'trainer', 'dataset', 'mnist'), (0.1307, 0.3081)
    elif spec.startswith('idx:'):
        d = spec[4:]
    names = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
    return [read_idx(idx_file(d, n)) for n in names] + [fixed]


def taps(n_in, n_out):
    """trainer/dataset/resize.go's taps as an (n_out, n_in) matrix: area filter when shrinking,
    bilinear with pixel centres aligned and clamped edges when enlarging."""
    r = np.zeros((n_out, n_in))
    s = n_in / n_out
    for j in range(n_out):
        if n_in == n_out:
            r[j, j] = 1
        elif n_in > n_out:
            lo, hi = j * s, (j + 1) * s
            i = math.floor(lo)
            while i < n_in and i < hi:
                ov = min(i + 1, hi) - max(i, lo)
                if ov > 1e-9:
                    r[j, i] = ov / s
                i += 1
        else:
            x = min(max((j + 0.5) * s - 0.5, 0), n_in - 1)
            i0 = math.floor(x)
            f = x - i0
            if f < 1e-9 or i0 + 1 >= n_in:
                r[j, i0] = 1
            else:
                r[j, i0], r[j, i0 + 1] = 1 - f, f
    return r


def resize(pix, res):
    """Images (n, h, w) of bytes as (n, 1, res, res) float32 in [0, 1]."""
    ry, rx = taps(pix.shape[1], res), taps(pix.shape[2], res)
    x = np.einsum('yh,nhw,xw->nyx', ry, pix.astype(np.float64) / 255, rx, optimize=True)
    return x.astype(np.float32)[:, None]


def split(n_train, n_test, a, seed):
    """trainer/dataset's choose: validation then training from one permutation of the training
    files, the test subset from the test files; each set in file order."""
    val_size = a.val_size if a.val_size != -1 else n_train - a.train_size
    train_size = a.train_size if a.train_size != -1 else n_train - val_size
    if val_size + train_size > n_train:
        sys.exit(f'asks for {val_size} validation + {train_size} training images, but only {n_train} exist; ask for fewer')
    perm = GoRand(seed, 1).perm(n_train)
    val, train = perm[:val_size], perm[val_size:val_size + train_size]
    if a.test_size == -1:
        test = list(range(n_test))
    elif a.test_size > n_test:
        sys.exit(f'asks for {a.test_size} test images, but only {n_test} exist; ask for fewer or -1 for all')
    else:
        test = GoRand(seed, 2).perm(n_test)[:a.test_size]
    return sorted(train), sorted(val), sorted(test)


def load(a, seed):
    xtr, ytr, xte, yte, fixed = load_raw(a.dataset)
    tr, va, te = split(len(xtr), len(xte), a, seed)
    sets = [(resize(x[i], a.res), y[i].astype(np.int64)) for x, y, i in ((xtr, ytr, tr), (xtr, ytr, va), (xte, yte, te))]
    if fixed is None:
        x = sets[0][0].astype(np.float64)
        mean = x.mean()
        std = math.sqrt(max((x * x).mean() - mean * mean, 0))
        fixed = (mean, std if std > 1e-6 else 1)
    mean, std = np.float32(fixed[0]), np.float32(fixed[1])
    classes = int(max(ytr.max(), yte.max())) + 1
    return [(torch.from_numpy((x - mean) * (1 / std)), torch.from_numpy(y)) for x, y in sets], classes


def schedule(base, step, warmup, total):
    """trainer's schedule: linear warm-up, then cosine decay to zero."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(total - warmup, 1)
    return base * 0.5 * (1 + math.cos(math.pi * min(p, 1)))


def optimizer(model, a):
    decay = [q for q in model.parameters() if q.dim() > 1]  # convolution and dense weights
    rest = [q for q in model.parameters() if q.dim() <= 1]  # biases, batch norm's gamma and beta
    groups = [{'params': decay, 'weight_decay': 5e-5}, {'params': rest, 'weight_decay': 0}]
    if a.optimizer == 'adam':
        return torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    return torch.optim.SGD(groups, lr=a.lr, momentum=0.9, nesterov=True)


def calibrate(model, x, order, batch, batches=20):
    """Batch-norm statistics: the mean of the batch statistics of the first batches of order."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: mean of batch means and of unbiased variances
        m.train()
    with torch.no_grad():
        for i in range(min(batches, len(order) // batch)):
            model(x[order[i * batch:(i + 1) * batch]])
    model.eval()


def evaluate(model, x, y, batch):
    if len(y) == 0:
        return 0.0, 0.0
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = model(x[i:i + batch])
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
            loss += F.cross_entropy(out, y[i:i + batch], reduction='sum').item()
    return correct / len(y), loss / len(y)


def train(model, data, a, report):
    """trainer.Train's loop; returns an error sentence when the loss diverges."""
    (xtr, ytr), (xva, yva), (xte, yte) = data
    per_epoch = len(ytr) // a.batch
    total = per_epoch * a.epochs
    warmup = math.floor(0.1 * per_epoch + 0.5)
    opt = optimizer(model, a)
    shuffle = GoRand(a.seed, 2)
    order = list(range(len(ytr)))
    step, first, t_train = 0, None, 0.0
    for epoch in range(a.epochs):
        shuffle.shuffle(order)
        model.train()
        loss_sum = 0.0
        for bi in range(per_epoch):
            t0 = time.perf_counter()
            idx = order[bi * a.batch:(bi + 1) * a.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            v = loss.item()
            if not math.isfinite(v) or (first is not None and v > 10 * first):
                return f'loss {v:.3g} at step {step + 1} of {total} (epoch {epoch + 1}): training diverged'
            first = v if first is None else first
            for g in opt.param_groups:
                g['lr'] = schedule(a.lr, step, warmup, total)
            opt.zero_grad()
            loss.backward()
            opt.step()
            t_train += time.perf_counter() - t0
            step += 1
            loss_sum += v
        report.update(loss=loss_sum / per_epoch, epochs=epoch + 1)
    report.update(steps=step, images_per_second=step * a.batch / t_train if t_train else 0)
    calibrate(model, xtr, order, a.batch)
    report['accuracy'], report['test_loss'] = evaluate(model, xte, yte, a.batch)
    report['val_accuracy'], report['val_loss'] = evaluate(model, xva, yva, a.batch)
    return None


def main():
    p = argparse.ArgumentParser(description='Train a network with PyTorch as effnas train does and report its accuracy.')
    network_flags(p)
    p.add_argument('--dataset', default='mnist', help='mnist (the repository\'s copy) or a directory of IDX files')
    p.add_argument('--train-size', type=int, default=10000, help='training images (-1: all that remain after validation)')
    p.add_argument('--val-size', type=int, default=2000, help='validation images carved from the training files')
    p.add_argument('--test-size', type=int, default=2000, help='test images (-1: all)')
    p.add_argument('--epochs', type=int, default=2, help='passes over the training images')
    p.add_argument('--batch', type=int, default=64, help='images per step')
    p.add_argument('--lr', type=float, default=0, help="peak learning rate (0: the optimizer's default, 0.004 adam, 0.1 sgd)")
    p.add_argument('--optimizer', default='adam', choices=['adam', 'sgd'], help='adam (AdamW) or sgd (Nesterov)')
    p.add_argument('--threads', type=int, default=os.cpu_count(), help='threads PyTorch may use')
    p.add_argument('--seed', type=int, default=1, help='seed of the weights, the shuffling and (unless --data-seed) the data split')
    p.add_argument('--data-seed', type=int, help='seed of the train/validation/test split (default --seed)')
    a = p.parse_args()
    arch = arch_of(p, a)
    if a.epochs < 1 or a.batch < 1 or a.lr < 0 or a.threads < 1:
        p.error('--epochs, --batch and --threads must be at least 1, --lr positive (or 0)')
    a.lr = a.lr or (0.004 if a.optimizer == 'adam' else 0.1)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    data, classes = load(a, a.seed if a.data_seed is None else a.data_seed)
    load_seconds = time.perf_counter() - t0
    if len(data[0][1]) < a.batch:
        sys.exit(f'training set has {len(data[0][1])} images, fewer than one batch of {a.batch}')
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    model = build(arch, a.res, 1, classes, same=True)
    params, flops = counts(model, 1, a.res)
    report = dict(framework='pytorch-' + torch.__version__, params=params, flops=flops,
                  blocks=[format_block(b) for b in arch['blocks']], width=a.width, depth=a.depth, resolution=a.res,
                  in_channels=1, classes=classes, dataset=a.dataset, train_images=len(data[0][1]),
                  val_images=len(data[1][1]), test_images=len(data[2][1]), optimizer=a.optimizer, lr=a.lr,
                  batch=a.batch, seed=a.seed, data_seed=a.data_seed, threads=a.threads)
    err = train(model, data, a, report)
    report.update(seconds=round(time.perf_counter() - t0, 1), load_seconds=round(load_seconds, 1))
    if err:
        report['error'] = err
    print(json.dumps(report))
    return 1 if err else 0


if __name__ == '__main__':
    sys.exit(main())
