// Package trainer trains a candidate architecture briefly as a proxy, on real
// data, with gorgonia, and reports its validation and test accuracy.
//
// # API
//
// Train(ctx, arch, data, cfg, progress) trains exactly the space.Arch it is
// given (already scaled; its InChannels, Classes and Resolution must match
// the data) and evaluates it in inference mode. Bench (and BenchTrain) times
// training steps on random data and, on request, where their time goes. No
// gorgonia type appears in the API.
//
// # Graph
//
// Every network is one gorgonia ExprGraph run by one TapeMachine, built for a
// fixed batch size and differentiated symbolically with gorgonia.Grad. Its
// nodes are coarse custom ops (op.go: each implements gorgonia's Op and
// SDOp; one gradient node computes all of an op's input gradients, and a
// light node per parameter hands out its share): the stem (3x3 stride-2
// convolution, batch norm, activation), one op per block (block.go), the
// head (1x1 convolution, batch norm, activation, global average pooling),
// dropout, the classifier and softmax cross-entropy. A block op is the
// whole MBConv (1x1 expansion, batch norm and activation, k x k depthwise
// convolution with TensorFlow's "same" padding -- out = ceil(in/s), the odd
// pixel of padding at the end --, batch norm and activation,
// squeeze-excite, 1x1 projection, batch norm, identity skip with
// drop-connect), or the depthwise-separable or regular-convolution block.
// Activations are (N*H*W, C) matrices in NHWC order; the ops' buffers are
// allocated when the graph is built and reused on every step (gorgonia's
// own bookkeeping still allocates a little per step).
//
// A block keeps only the inputs of its batch norms and recomputes the
// activations from them where it needs them (for inputs of up to 32
// channels it recomputes the expansion itself, a multiply-add per input
// channel, instead of keeping the block's largest tensor; the expansion's
// batch statistics then come from x^T x). Between batch norms, whose batch
// statistics are the only points where every image must be done before any
// can go on, it works through chunks of images small enough to stay in
// cache, so that an activation is written and read back without going
// through main memory, and scratch that lives only while an op runs is
// shared by all ops.
//
// Each op's gradient is checked against central differences (op_test.go),
// and so is the whole network's (model_test.go); the forward pass of the
// stem, every kind of block, the head and batch norm is checked against a
// naive float64 definition of its convolutions, batch norm, activations,
// pooling and squeeze-excite (ref_test.go), and every kernel against a
// float64 reference on every path it has (internal/kern).
//
// Batch norm uses batch statistics in training and running statistics in
// evaluation (momentum 0.99 in TensorFlow's convention, epsilon 1e-3). The
// running averages are debiased like Adam's moments, and before evaluation
// they are replaced by the average batch statistics of Config.BNCalibration
// training batches under the final weights (their moving average when
// Config.EMA is set): a proxy run of a few hundred steps is too short for a
// 0.99 moving average to forget the statistics of its early weights.
//
// # Speed
//
// The kernels (internal/kern) are float32 Go assembly, chosen when the
// program starts: a GEMM with strided A that serves A*B and A^T*B (weight
// gradients without transposes), with generated register-blocked
// micro-kernels (AVX-512 12x32 with masked edges, AVX2/FMA 6x16), packed B
// panels where B's rows are far apart, and an epilogue hook that takes
// batch-norm statistics while the rows are in cache; fused passes of batch
// norm with its activation and of their gradients (AVX-512 and AVX2; the
// sigmoids of a recomputation are kept for the gradient pass); and a
// depthwise convolution planned once into runs of pixels that share their
// taps. Everything has a pure-Go fallback, used elsewhere and with -tags
// purego. Threads split the images of a batch, or the rows of a GEMM.
//
// Measured on this project's 2-core machine (AMD EPYC with AVX-512, a
// 233 GFLOP/s FMA peak on 2 threads) with effnas bench train (30 timed
// steps after 2 warm-up steps, 2 threads) alternating with
// docs/bench/torch_peer.py (PyTorch 1.13, 2 threads, 30 steps after 3),
// 5 pairs, B0 with 10 classes; the ratio is the median of the pairs' and
// its range; peak resident memory from /usr/bin/time -f %M (median):
//
//	proxy                       effnas img/s       PyTorch img/s   ratio                peak RSS MiB (PyTorch)
//	w0.5 32x32x1 batch 64       2452 (1936-2581)   268 (248-423)   9.08x (4.57-9.84)    108 (341)
//	w1.0 32x32x3 batch 64       838 (774-858)      161 (114-194)   4.87x (4.32-7.50)    202 (431)
//	w1.0 64x64x1 batch 64       396 (346-435)      116 (113-135)   3.44x (2.74-3.75)    441 (799)
//	w0.5 64x64x1 batch 64       916 (827-933)      231 (198-246)   3.97x (3.66-4.62)    217 (586)
//	w0.5 32x32x1 batch 128      2850 (2616-3059)   404 (385-444)   6.67x (6.41-7.95)    167 (419)
//
// (The lowest canonical pair, 4.57x, overlapped another process.) On the
// Intel Xeon (AVX-512) this was first measured on, the same protocol gave
// 7.80x, 5.59x, 3.58x, 4.92x and 8.15x.
//
// Before this design (one op per layer, kernels in Go but the GEMM) the
// first three were 435-498, 241-268 and 82-117 images/s. Where a step's
// time goes, from effnas bench train --profile (2 threads; the profile
// itself costs a few percent; GFLOP/s counts the work actually done,
// recomputations included; the whole step's fraction of the machine's
// peak is against an AVX-512 multiply-add loop measured on the spot), on
// the Intel Xeon (about 255 GFLOP/s peak on 2 cores), before and after; on
// the AMD EPYC the same profiles take 27.1 ms/step (15.4% of its peak,
// expand 23%, BN and activation 22%, project 14%) and 156.7 ms/step (33.1%
// of peak; expand 27%, BN and activation 24%, project 21%):
//
//	B0 w0.5 32x32x1            before: 133.4 ms/step          after: 45.2 ms/step
//	                           2.8% of peak, 213 MiB          8.5% of peak, 106 MiB
//	kind                       ms/step  share  GFLOP/s GB/s   ms/step  share  GFLOP/s GB/s
//	stem                         3.83    2.9%     3.7    -      1.22    2.7%     7.7   0.9
//	expand 1x1                  13.52   10.1%    27.5    -      7.66   17.0%    62.0   2.1
//	depthwise                   13.02    9.8%    11.4   3.5     4.27    9.5%    34.7  10.8
//	SE                          23.59   17.7%     2.6   2.0     4.78   10.6%      -     -
//	project 1x1                 19.87   14.9%    16.8    -      5.05   11.2%    65.9   2.0
//	BN and activation           48.44   36.3%      -    2.0    13.07   28.9%      -    7.9
//	residual                     0.53    0.4%      -    7.1     0.32    0.7%      -     -
//	head 1x1                     1.77    1.3%    22.2    -      0.88    2.0%    44.6   0.5
//	pooling                      0.14    0.1%      -    2.4     0.13    0.3%      -    1.3
//	classifier and loss          1.83    1.4%     1.3    -      0.97    2.2%     2.5    -
//	optimizer update             2.29    1.7%     4.7   9.4     2.30    5.1%     4.7   9.4
//	gorgonia overhead            4.53    3.4%      -     -      4.50   10.0%      -     -
//
//	B0 w1.0 64x64x1            before: 836.2 ms/step          after: 302.4 ms/step
//	                           5.7% of peak, 1050 MiB         15.1% of peak, 441 MiB
//	kind                       ms/step  share  GFLOP/s GB/s   ms/step  share  GFLOP/s GB/s
//	stem                        21.31    2.5%     5.3    -      5.08    1.7%    14.9   1.7
//	expand 1x1                 122.18   14.6%    42.6    -     70.79   23.4%    85.7   1.8
//	depthwise                   82.22    9.8%    13.2   4.1    28.41    9.4%    38.1  11.8
//	SE                          78.91    9.4%     3.1   4.3    15.71    5.2%      -     -
//	project 1x1                169.60   20.3%    28.1    -     55.80   18.5%    85.5   1.3
//	BN and activation          309.68   37.0%      -    2.3    89.15   29.5%      -    8.4
//	residual                     3.05    0.4%      -    8.6     1.32    0.4%      -     -
//	head 1x1                    15.96    1.9%    39.4    -      9.48    3.1%    66.4   0.4
//	pooling                      0.55    0.1%      -    4.8     0.29    0.1%      -    4.5
//	classifier and loss          3.67    0.4%     1.3    -      1.86    0.6%     2.6    -
//	optimizer update             9.65    1.2%     4.2   8.3    13.14    4.3%     3.1   6.1
//	gorgonia overhead           19.41    2.3%      -     -     11.32    3.7%      -     -
//
// (After the change the residual sum is fused into the projection's batch
// norm pass and counted there, except for regular-convolution blocks.)
// Batch norm with swish stays the largest share: its passes are bound by
// the vector units evaluating sigmoids and by memory, not by arithmetic
// that GFLOP/s would count.
//
// # Sharing the cores
//
// Trainings are independent (one graph, one VM, their own buffers and seeded
// random sources) and safe to run at once in goroutines. A training's
// kernels use Config.Threads goroutines, default 1: a search runs one trial
// per core, which wastes nothing on synchronisation, while a single training
// (effnas train, effnas bench train) uses all the cores. Two trainings at
// one thread each, at once, train 1.2 to 1.7 times as many images per
// second as one at two threads (median of 3, images/s summed over the two,
// on the AMD EPYC: 3833 against 2165 at the canonical proxy, 1515 against
// 994 at w1.0 32x32x3, 497 against 408 at w1.0 64x64x1), so one trial per
// core stays the search's default. ctx is checked between minibatches. With the same
// seed and the same Threads a training gives the same result; different
// Threads may differ in the last bits of the sums and so diverge slowly.
package trainer
