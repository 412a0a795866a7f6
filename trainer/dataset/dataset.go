// Package dataset loads image-classification data for proxy training: the
// built-in MNIST, IDX files (MNIST layout, so Fashion-MNIST works), CIFAR-10/100
// binary batches and image folders, resized and normalised, with a seeded
// train/validation split carved from the training set.
package dataset

// Set is a batch of images in NCHW layout, normalised, with integer labels.
type Set struct {
	X []float32 // N*C*H*W values, image i at X[i*C*H*W:]
	Y []int     // N labels in [0, Classes)
	N int
	C int
	H int
	W int
}

// Data is a loaded dataset split three ways. Validation is carved from the
// training files with a seeded shuffle; Test comes from the test files.
type Data struct {
	Name     string // "mnist", or the path it was loaded from
	Format   string // "mnist", "idx", "cifar10", "cifar100", "folder"
	Classes  int
	Channels int
	Train    Set
	Val      Set
	Test     Set
}

// Options says how much to load and at what size. Zero fields take the
// defaults given in each comment (WithDefaults).
type Options struct {
	TrainSize  int    // training images; default 10000 (0 keeps the default, -1 all that remain after Val)
	ValSize    int    // validation images carved from the training files; default 2000
	TestSize   int    // test images; default 2000
	Resolution int    // resize to Resolution x Resolution; default 32
	Seed       uint64 // seed of the train/validation split and subset choice
}
