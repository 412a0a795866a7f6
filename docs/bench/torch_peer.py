#!/usr/bin/python3
"""Speed peer of `effnas bench train`: the same network, trained the same way, with PyTorch.

It builds the network effnas builds (space/ and trainer/): TF block strings scaled by --width
(filters rounded to multiples of 8 as space.RoundFilters does) and --depth (repeats rounded up),
a 3x3 stride-2 stem, MBConv blocks (1x1 expansion, k x k depthwise convolution, squeeze-excite
reduced to max(1, int(input filters x ratio)) channels, 1x1 projection, identity skip with
drop-connect whose rate rises linearly to 0.2 at the last block), a 1x1 head, global average
pooling, dropout 0.2 and the classifier; swish; batch norm with epsilon 1e-3 and momentum 0.99 in
TensorFlow's convention (0.01 in PyTorch's); PyTorch's default initialisation of the weights
(uniform within 1/sqrt(fan in), as trainer/model.go draws them), zero biases, and a zero gamma on
the last batch norm of every residual block. Then it times training steps as trainer/bench.go
does: random normal images and random labels, the network in training mode (dropout and
drop-connect on), cross-entropy, backward, and a step of SGD with Nesterov momentum 0.9 at
learning rate 0.01, --steps timed steps after --warmup untimed ones, on --threads threads.
The flags are those of `effnas bench train`; one line (or, with --json, one JSON object with
effnas's field names) reports images per second, parameters, multiply-adds and peak resident
memory. Parameters and multiply-adds equal effnas's (space/count.go counts the same convolutions).

Convolutions pad as PyTorch does, symmetrically (k // 2 on every side), where effnas uses
TensorFlow's "same" padding (the odd pixel at the end); the output sizes and the work are the
same, only a stride-2 layer's sampling grid moves by a pixel. The README's figures were measured
this way; torch_fashion.py, whose accuracy should match effnas's, pads as effnas does.

Needs Debian's PyTorch 1.13 (apt-get install python3-torch) and nothing from the network; run it
with /usr/bin/python3 from the repository's root. The README's speed table ("Speed": 2 threads,
batch 64, 10 classes, 30 timed steps) pairs one row's two commands, run alternately 5 times
(the ratio of a pair is effnas's images/second over PyTorch's; the table gives the median and
range of the 5 ratios, and the median peak resident memory):

  go build -o /tmp/effnas ./cmd/effnas
  # width 0.5, 32x32x1 (canonical)
  /tmp/effnas bench train --json
  /usr/bin/python3 docs/bench/torch_peer.py --json
  # width 1.0, 32x32x3 (CIFAR-shaped)
  /tmp/effnas bench train --width 1 --in-ch 3 --json
  /usr/bin/python3 docs/bench/torch_peer.py --width 1 --in-ch 3 --json
  # width 1.0, 64x64x1
  /tmp/effnas bench train --width 1 --res 64 --json
  /usr/bin/python3 docs/bench/torch_peer.py --width 1 --res 64 --json
  # width 0.5, 64x64x1
  /tmp/effnas bench train --res 64 --json
  /usr/bin/python3 docs/bench/torch_peer.py --res 64 --json
  # width 0.5, 32x32x1, batch 128
  /tmp/effnas bench train --batch 128 --json
  /usr/bin/python3 docs/bench/torch_peer.py --batch 128 --json

Both report peak_rss_bytes (the README's column came from `/usr/bin/time -f %M`, the same
maximum resident set size). effnas warms up for 2 steps, this peer for 3 (as the README's figures
were measured): PyTorch's first steps allocate and pick kernels.
"""
import argparse
import decimal
import json
import math
import re
import resource
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

# EfficientNet-B0's stages as space/scale.go holds them.
B0_BLOCKS = ("r1_k3_s11_e1_i32_o16_se0.25 r2_k3_s22_e6_i16_o24_se0.25 r2_k5_s22_e6_i24_o40_se0.25 "
             "r3_k3_s22_e6_i40_o80_se0.25 r3_k5_s11_e6_i80_o112_se0.25 r4_k5_s22_e6_i112_o192_se0.25 "
             "r1_k3_s11_e6_i192_o320_se0.25")

# space.Presets: width, depth, resolution, dropout of the released models.
PRESETS = {
    'efficientnet-b0': (1.0, 1.0, 224, 0.2), 'efficientnet-b1': (1.0, 1.1, 240, 0.2),
    'efficientnet-b2': (1.1, 1.2, 260, 0.3), 'efficientnet-b3': (1.2, 1.4, 300, 0.3),
    'efficientnet-b4': (1.4, 1.8, 380, 0.4), 'efficientnet-b5': (1.6, 2.2, 456, 0.4),
    'efficientnet-b6': (1.8, 2.6, 528, 0.5), 'efficientnet-b7': (2.0, 3.1, 600, 0.5),
}

BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TensorFlow's 0.99 in PyTorch's convention


def parse_block(s):
    """One TF block string (space/blockstring.go's dialect, noskip and conv included) as a dict."""
    b = {'se': 0.0, 'skip': True, 'conv': False}
    for tok in s.split('_'):
        val = tok.lstrip('abcdefghijklmnopqrstuvwxyz')
        key = tok[:len(tok) - len(val)]
        if tok == 'noskip':
            b['skip'] = False
        elif tok == 'conv':
            b['conv'] = True
        elif key == 's' and val in ('11', '22'):
            b['s'] = int(val[0])
        elif key == 'se' and re.fullmatch(r'\d+(\.\d*)?', val):
            b['se'] = float(val)
        elif key in ('r', 'k', 'e', 'i', 'o') and val.isdigit():
            b[key] = int(val)
        else:
            raise ValueError(f'block {s!r}: unknown token {tok!r}; want r, k, s11/s22, e, i, o, se, noskip or conv')
    if b['conv']:
        b.setdefault('e', 1)
    missing = [k for k in ('r', 'k', 's', 'e', 'i', 'o') if k not in b]
    if missing:
        raise ValueError(f'block {s!r}: missing token {", ".join(missing)}')
    return b


def format_block(b):
    """space.Block.String: the TF block string of b."""
    s = f"r{b['r']}_k{b['k']}_s{b['s']}{b['s']}_e{b['e']}_i{b['i']}_o{b['o']}"
    if b['se'] > 0:
        s += '_se' + format(decimal.Decimal(repr(b['se'])), 'f')
    return s + ('' if b['skip'] else '_noskip') + ('_conv' if b['conv'] else '')


def round_filters(f, width):
    """space.RoundFilters: scale by width, round to a multiple of 8, never more than 10% down."""
    x = f * width
    n = max(8, int(x + 4) // 8 * 8)
    return n + 8 if n < 0.9 * x else n


def scale(arch, width, depth):
    """space.Arch.Scale: filters scaled by width (rounded), repeats by depth (rounded up)."""
    blocks = [dict(b, i=round_filters(b['i'], width), o=round_filters(b['o'], width),
                   r=int(math.ceil(depth * b['r']))) for b in arch['blocks']]
    return dict(arch, stem=round_filters(arch['stem'], width), head=round_filters(arch['head'], width), blocks=blocks)


def b0(blocks=B0_BLOCKS):
    """space.B0 with the given stages: stem 32, head 1280, dropout 0.2, drop-connect 0.2."""
    return dict(stem=32, head=1280, dropout=0.2, drop_connect=0.2,
                blocks=[parse_block(s) for s in blocks.replace(',', ' ').split()])


def same_out(size, stride):
    return (size + stride - 1) // stride


def conv(cin, cout, k, stride, size, same, groups=1):
    """A k x k convolution without bias; same pads as TensorFlow (trainer/conv.go's samePad)."""
    if not same:
        return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
    total = max((same_out(size, stride) - 1) * stride + k - size, 0)
    lead, trail = total // 2, total - total // 2
    c = nn.Conv2d(cin, cout, k, stride, lead if lead == trail else 0, groups=groups, bias=False)
    return c if lead == trail else nn.Sequential(nn.ZeroPad2d((lead, trail, lead, trail)), c)


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class SqueezeExcite(nn.Module):
    def __init__(self, c, reduced):
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(c, reduced, 1), nn.Conv2d(reduced, c, 1)
        for m in (self.reduce, self.expand):
            nn.init.zeros_(m.bias)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.expand(F.silu(self.reduce(s))))


class Block(nn.Module):
    """One repeat of a stage (trainer/block.go): MBConv, depthwise-separable, or a regular conv."""

    def __init__(self, b, cin, stride, size, survival, same):
        super().__init__()
        cout, k = b['o'], b['k']
        layers = []
        if b['conv']:
            mid = cout
            layers += [conv(cin, cout, k, stride, size, same), bn(cout), nn.SiLU()]
        else:
            mid = cin * b['e']
            if b['e'] != 1:
                layers += [conv(cin, mid, 1, 1, size, same), bn(mid), nn.SiLU()]
            layers += [conv(mid, mid, k, stride, size, same, groups=mid), bn(mid), nn.SiLU()]
        if b['se'] > 0:
            layers.append(SqueezeExcite(mid, max(1, int(cin * b['se']))))
        self.residual = b['skip'] and stride == 1 and cin == cout
        if not b['conv']:
            layers += [conv(mid, cout, 1, 1, size, same), bn(cout)]
            if self.residual:
                nn.init.zeros_(layers[-1].weight)  # starts as the identity (builder.residualGamma)
        self.body = nn.Sequential(*layers)
        self.survival = survival

    def forward(self, x):
        y = self.body(x)
        if not self.residual:
            return y
        if self.training and self.survival < 1:
            keep = torch.floor(self.survival + torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype))
            y = y * (keep / self.survival)
        return x + y


def build(arch, res, in_ch, classes, same=False):
    """The network of a scaled arch (b0, scale), as trainer/model.go's buildNetwork builds it."""
    bs = arch['blocks']
    layers = [conv(in_ch, arch['stem'], 3, 2, res, same), bn(arch['stem']), nn.SiLU()]
    size = same_out(res, 2)
    total, idx = sum(b['r'] for b in bs), 0
    for b in bs:
        for j in range(b['r']):
            cin, stride = (b['i'], b['s']) if j == 0 else (b['o'], 1)
            layers.append(Block(b, cin, stride, size, 1 - arch['drop_connect'] * idx / total, same))
            size, idx = same_out(size, stride), idx + 1
    fc = nn.Linear(arch['head'], classes)
    nn.init.zeros_(fc.bias)
    layers += [conv(bs[-1]['o'], arch['head'], 1, 1, size, same), bn(arch['head']), nn.SiLU(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(arch['dropout']), fc]
    return nn.Sequential(*layers)


def network_flags(p):
    """The network flags of `effnas bench train` and `effnas train`."""
    p.add_argument('--blocks', help="stages as TF block strings separated by spaces or commas (default: EfficientNet-B0's)")
    p.add_argument('--model', choices=sorted(PRESETS), help='a named model instead of --blocks')
    p.add_argument('--width', type=float, default=0.5, help='width multiplier applied to the filters')
    p.add_argument('--depth', type=float, default=1.0, help='depth multiplier applied to the repeats')
    p.add_argument('--res', type=int, default=32, help='input resolution')


def arch_of(p, a):
    """The scaled arch the network flags describe (cmd/effnas's proxyArchFromFlags): --blocks, or
    --model (the released model's width, depth and dropout), then scaled by --width and --depth."""
    if a.blocks is not None and a.model is not None:
        p.error('--blocks and --model are alternatives: give only one')
    if not 0 < a.width <= 10 or not 0 < a.depth <= 10 or not 8 <= a.res <= 1024:
        p.error('--width and --depth must be in (0, 10], --res 8 to 1024 pixels')
    try:
        arch = b0(a.blocks or B0_BLOCKS)
    except ValueError as e:
        p.error(f'--blocks: {e}')
    if a.model is not None:
        width, depth, _, dropout = PRESETS[a.model]
        arch = dict(scale(arch, width, depth), dropout=dropout)
    return scale(arch, a.width, a.depth)


def counts(model, in_ch, res):
    """Parameters and multiply-adds per image, with space/count.go's convention."""
    macs = [0]

    def hook(m, _, out):
        if isinstance(m, nn.Conv2d):
            macs[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            macs[0] += m.in_features * m.out_features
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was = model.training
    with torch.no_grad():
        model.eval()(torch.zeros(1, in_ch, res, res))
    model.train(was)
    for h in hs:
        h.remove()
    return sum(x.numel() for x in model.parameters()), macs[0]


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def main():
    p = argparse.ArgumentParser(description='Time training steps of a network with PyTorch, as effnas bench train does.')
    network_flags(p)
    p.add_argument('--in-ch', type=int, default=1, help='input channels')
    p.add_argument('--classes', type=int, default=10, help='classifier outputs')
    p.add_argument('--batch', type=int, default=64, help='images per step')
    p.add_argument('--steps', type=int, default=30, help='timed steps (after --warmup untimed ones)')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    p.add_argument('--threads', type=int, default=2, help='threads PyTorch may use')
    p.add_argument('--seed', type=int, default=1, help='seed of the weights and the random data')
    p.add_argument('--json', action='store_true', help='print the result as JSON')
    a = p.parse_args()
    if a.batch < 1 or a.steps < 1 or a.warmup < 0 or a.threads < 1:
        p.error('--batch, --steps and --threads must be at least 1, --warmup at least 0')
    arch, res = arch_of(p, a), a.res
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = build(arch, res, a.in_ch, a.classes)
    build_seconds = time.perf_counter() - t0
    params, flops = counts(model, a.in_ch, res)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    # Two batches of random data, taken in turn, as trainer/bench.go does.
    xs = torch.randn(2, a.batch, a.in_ch, res, res)
    ys = torch.randint(0, a.classes, (2, a.batch))
    model.train()
    elapsed = 0.0
    for i in range(a.warmup + a.steps):
        t = time.perf_counter()
        loss = F.cross_entropy(model(xs[i % 2]), ys[i % 2])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= a.warmup:
            elapsed += time.perf_counter() - t
    step = elapsed / a.steps
    rep = dict(framework='pytorch-' + torch.__version__, batch=a.batch, steps=a.steps, warmup=a.warmup,
               threads=a.threads, step_seconds=round(step, 5), train_images_per_second=round(a.batch / step, 2),
               params=params, flops=flops, gflops=round(flops * 6 * a.batch / step / 1e9, 3),
               build_seconds=round(build_seconds, 3), blocks=[format_block(b) for b in arch['blocks']],
               width=a.width, depth=a.depth,
               resolution=res, in_channels=a.in_ch, classes=a.classes, peak_rss_bytes=peak_rss_bytes())
    if a.json:
        print(json.dumps(rep))
        return
    print(f"training: {a.batch / step:.1f} images/s ({step:.4f} s per step of {a.batch} images, {a.threads} threads)")
    print(f"network:  {params:,} parameters, {flops:,} multiply-adds per image at {a.in_ch}x{res}x{res}")
    print(f"compute:  {rep['gflops']:.2f} GFLOP/s (multiply-adds x 2 x 3 per image)")
    print(f"memory:   {rep['peak_rss_bytes'] / (1 << 20):.1f} MiB peak resident ({rep['framework']})")


if __name__ == '__main__':
    sys.exit(main())
