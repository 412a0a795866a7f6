// Package trainer trains a candidate architecture briefly as a proxy, on real
// data, with gorgonia, and reports its validation and test accuracy.
//
// # API
//
// Train(ctx, arch, data, cfg, progress) trains exactly the space.Arch it is
// given (already scaled; its InChannels, Classes and Resolution must match
// the data) and evaluates it in inference mode. BenchTrain times training
// steps on random data. No gorgonia type appears in the API.
//
// # Graph
//
// Every network is one gorgonia ExprGraph run by one TapeMachine, built for a
// fixed batch size and differentiated symbolically with gorgonia.Grad. Its
// nodes are coarse custom ops (op.go: each implements gorgonia's Op and SDOp;
// the gradient of every input is a node of its own): convolution as im2col +
// GEMM (1x1 convolutions and fully connected layers are a plain GEMM),
// depthwise convolution with TensorFlow's "same" padding (out = ceil(in/s),
// the odd pixel of padding at the end), batch norm fused with swish or ReLU,
// global average pooling, the squeeze-excite channel scale, the residual sum
// with drop-connect, dropout and softmax cross-entropy. Activations are
// (N*H*W, C) matrices in NHWC order; every buffer is allocated once. Each op's
// gradient is checked against central differences (op_test.go), and so is
// the whole network's (model_test.go).
//
// Batch norm uses batch statistics in training and running statistics in
// evaluation (momentum 0.99 in TensorFlow's convention, epsilon 1e-3). The
// running averages are debiased like Adam's moments, and before evaluation
// they are replaced by the average batch statistics of Config.BNCalibration
// training batches under the final (moving-average, Config.EMA) weights: a
// proxy run of a few hundred steps is too short for a 0.99 moving average to
// forget the statistics of its early weights.
//
// # Speed
//
// The kernels (internal/kern) are float32: a blocked GEMM with AVX2/FMA
// micro-kernels in Go assembly (pure Go elsewhere, or with -tags purego),
// vectorised sigmoid and multiply-add, and a fork-join over Config.Threads
// goroutines. On the canonical proxy (B0 at width 0.5, 32x32x1, 10 classes,
// batch 64, 2.52M multiply-adds per image) a training step takes about 0.17 to
// 0.25 s on 2 AMD EPYC cores (300 to 385 images/s, 4.5 to 5.8 GFLOP/s,
// 200 MB peak resident), against 0.35 s (182 images/s) for PyTorch 1.13 with
// 2 threads on the same machine; see effnas bench train and
// BenchmarkTrainStep. The step is memory-bound rather than GEMM-bound: the
// GEMM alone runs at 20 to 34 GFLOP/s per core.
//
// # Sharing the cores
//
// Trainings are independent (one graph, one VM, their own buffers and seeded
// random sources) and safe to run at once in goroutines. A training's
// kernels use Config.Threads goroutines, default 1: a search runs one trial
// per core, which wastes nothing on synchronisation, while a single training
// (effnas train, effnas bench train) uses all the cores. ctx is checked
// between minibatches. With the same seed and the same Threads a training
// gives the same result; different Threads may differ in the last bits of
// the sums and so diverge slowly.
package trainer
