// Package dataset loads image-classification data for proxy training: the
// built-in MNIST, IDX files (MNIST layout, so Fashion-MNIST works), CIFAR-10/100
// binary batches and image folders, resized and normalised, with a seeded
// train/validation split carved from the training set.
//
// # Specs
//
// Load takes a spec:
//
//   - "mnist": the MNIST digits embedded in the binary (no file access).
//   - a directory path, whose format is detected from its content:
//     IDX files in MNIST layout (train-images-idx3-ubyte[.gz],
//     train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz],
//     t10k-labels-idx1-ubyte[.gz]; the dotted names train-images.idx3-ubyte
//     are accepted too), CIFAR-10 binary batches (data_batch_1.bin ..
//     data_batch_5.bin, test_batch.bin), CIFAR-100 binary (train.bin,
//     test.bin; fine labels), or an image folder. A directory holding only
//     cifar-10-batches-bin/ or cifar-100-binary/ (the tarballs' layout) is
//     entered.
//   - "idx:PATH", "cifar10:PATH", "cifar100:PATH", "folder:PATH" force the
//     format. To load a directory called "mnist", write "./mnist".
//
// # Image folders
//
// Either PATH/train/<class>/* and PATH/test/<class>/* (the test classes must
// be among the training classes), or PATH/<class>/* alone, in which case the
// test set is carved from the same images with the seeded shuffle (test first,
// then validation, then training, all disjoint). Classes are the class folder
// names sorted by name; files ending in .png, .jpg or .jpeg (any case) are
// images, other files, hidden folders and nested folders are ignored. The
// first training image decides the channel count: grayscale PNG/JPEG gives 1
// channel, anything else 3; images of the other mode are converted (luma
// 0.299R+0.587G+0.114B, or gray replicated), transparency is dropped as if
// composited over black. Images are stretched to Resolution x Resolution.
//
// # Processing
//
// Images are resized to Options.Resolution with an area filter when shrinking
// and bilinear interpolation (pixel centres aligned, edges clamped) when
// enlarging, each axis on its own, then scaled to [0,1] and normalised per
// channel as (x-Mean)/Std. MNIST and CIFAR-10/100 use the customary constants
// computed over their full training sets (MNIST 0.1307/0.3081); IDX files and
// image folders use the mean and standard deviation of the loaded training
// subset after resizing (a constant channel gets Std 1). Data.Mean and
// Data.Std record what was used, so inference can apply the same.
//
// # Splits
//
// Validation and training subsets are taken from one seeded permutation of
// the training files (rand.NewPCG(Seed, 1)): the first ValSize images are
// validation, the next TrainSize training, so validation does not change with
// TrainSize and a larger TrainSize is a superset. The test subset is drawn
// from the test files with rand.NewPCG(Seed, 2) (all of them with TestSize
// -1). Each set lists its images in file order. The same spec, Options and
// Seed give identical Data.
//
// # Memory and speed
//
// The built-in MNIST is decompressed on first use, once per process (0.4 s
// to 1.2 s on 2 busy cores), and its 55 MB of pixels stay in memory, shared
// read-only by every Load; a Load with the defaults then takes 0.06 s to
// 0.3 s and allocates its 57 MB of float32. IDX and CIFAR files are read whole for each
// Load and released after (CIFAR-10: 180 MB); image folders decode only the
// images chosen. Images whose header claims more than 64 megapixels and IDX
// headers that declare more than 16 GiB are refused before allocation, and a
// Load that would produce more than 8 GiB of float32 is refused.
package dataset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

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
	Name       string    // "mnist", or the path it was loaded from
	Format     string    // "mnist", "idx", "cifar10", "cifar100", "folder"
	Classes    int       // labels are in [0, Classes)
	Channels   int       // 1 (grayscale) or 3 (RGB)
	ClassNames []string  // class folder names (folder), the CIFAR-10 names, or nil
	Mean       []float32 // per-channel mean subtracted from the [0,1] pixels
	Std        []float32 // per-channel standard deviation divided out after that
	Train      Set
	Val        Set
	Test       Set
}

// Defaults of Options.
const (
	DefaultTrainSize  = 10000
	DefaultValSize    = 2000
	DefaultTestSize   = 2000
	DefaultResolution = 32
	// MaxResolution bounds Options.Resolution.
	MaxResolution = 1024
)

// maxFloats bounds the total size of a loaded Data (8 GiB of float32).
const maxFloats = 1 << 31

// Options says how much to load and at what size. Zero fields take the
// defaults given in each comment (WithDefaults).
type Options struct {
	TrainSize  int    // training images; default 10000 (0 keeps the default, -1 all that remain after Val)
	ValSize    int    // validation images carved from the training files; default 2000 (-1 all that remain after Train)
	TestSize   int    // test images; default 2000 (-1 all test images)
	Resolution int    // resize to Resolution x Resolution; default 32, at most 1024
	Seed       uint64 // seed of the train/validation split and subset choice
}

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	o.TrainSize = cmp.Or(o.TrainSize, DefaultTrainSize)
	o.ValSize = cmp.Or(o.ValSize, DefaultValSize)
	o.TestSize = cmp.Or(o.TestSize, DefaultTestSize)
	o.Resolution = cmp.Or(o.Resolution, DefaultResolution)
	return o
}

// Validate reports the first problem with o, in a sentence a user
// understands. Zero fields are valid (they take defaults).
func (o Options) Validate() error {
	sizes := []struct {
		name, what string
		v          int
	}{
		{"TrainSize", "training images, or -1 for all that remain after the validation set", o.TrainSize},
		{"ValSize", "validation images, or -1 for all that remain after the training set", o.ValSize},
		{"TestSize", "test images, or -1 for all of them", o.TestSize},
	}
	for _, s := range sizes {
		if s.v < -1 {
			return fmt.Errorf("dataset option %s is %d; want a positive number of %s", s.name, s.v, s.what)
		}
	}
	if o.TrainSize == -1 && o.ValSize == -1 {
		return errors.New("dataset options TrainSize and ValSize are both -1; at most one of them can take all the remaining training images")
	}
	if o.Resolution < 0 || o.Resolution > MaxResolution {
		return fmt.Errorf("dataset option Resolution is %d; want a side length in pixels from 1 to %d (0 for the default %d)",
			o.Resolution, MaxResolution, DefaultResolution)
	}
	return nil
}

// Formats that Load accepts as a "format:" prefix of a spec.
var formats = []string{"idx", "cifar10", "cifar100", "folder"}

// Load loads the dataset that spec names (see the package comment), takes the
// subsets that opts asks for, resizes and normalises them.
func Load(ctx context.Context, spec string, opts Options) (*Data, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	src, err := open(ctx, spec)
	if err != nil {
		return nil, err
	}
	d, err := build(ctx, src, opts)
	if err != nil {
		return nil, fmt.Errorf("load dataset %s: %w", src.name, err)
	}
	return d, nil
}

// open resolves spec to a source of raw images.
func open(ctx context.Context, spec string) (*source, error) {
	if spec == "" {
		return nil, errors.New(`dataset spec is empty; want "mnist", a directory, or idx:, cifar10:, cifar100:, folder: followed by a directory`)
	}
	if spec == "mnist" {
		return mnist()
	}
	format, path := "", spec
	for _, f := range formats {
		if p, ok := strings.CutPrefix(spec, f+":"); ok {
			format, path = f, p
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("dataset spec %q names no directory after %q; want %s:PATH", spec, format+":", format)
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf(`dataset %s does not exist; want "mnist" or a directory holding IDX files, CIFAR binaries or class folders`, path)
		}
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf(`dataset %s is a file; want "mnist" or a directory holding IDX files, CIFAR binaries or class folders`, path)
	}
	if format == "" {
		format, path, err = detect(path)
		if err != nil {
			return nil, err
		}
	}
	var src *source
	switch format {
	case "idx":
		src, err = openIDXDir(path)
	case "cifar10":
		src, err = openCIFAR10(path)
	case "cifar100":
		src, err = openCIFAR100(path)
	case "folder":
		src, err = openFolder(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	src.name = path
	return src, nil
}

// detect finds the format of the dataset in dir, descending into the CIFAR
// tarballs' top folder if that is all dir holds.
func detect(dir string) (format, path string, err error) {
	has := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	if _, err := findIDX(dir, "train-images-idx3-ubyte"); err == nil {
		return "idx", dir, nil
	}
	switch {
	case has("data_batch_1.bin"):
		return "cifar10", dir, nil
	case has("train.bin") && has("test.bin"):
		return "cifar100", dir, nil
	case has("cifar-10-batches-bin"):
		return detect(filepath.Join(dir, "cifar-10-batches-bin"))
	case has("cifar-100-binary"):
		return detect(filepath.Join(dir, "cifar-100-binary"))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", "", fmt.Errorf("dataset %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			return "folder", dir, nil
		}
	}
	return "", "", fmt.Errorf("dataset %s: cannot tell its format; want IDX files (train-images-idx3-ubyte[.gz] and friends), "+
		"CIFAR-10 batches (data_batch_1.bin..data_batch_5.bin, test_batch.bin), CIFAR-100 (train.bin, test.bin) "+
		"or class folders of .png/.jpg images", dir)
}

// Image returns image i of s as a slice of s.X (C*H*W values, not a copy).
func (s Set) Image(i int) []float32 {
	n := s.C * s.H * s.W
	return s.X[i*n : (i+1)*n : (i+1)*n]
}

// Batch copies the images idx of s into x and their labels into y, in order.
// x must hold at least len(idx)*C*H*W values and y len(idx) labels; shorter
// slices or an index out of range are programming errors and panic.
func (s Set) Batch(idx []int, x []float32, y []int) {
	n := s.C * s.H * s.W
	if len(x) < len(idx)*n || len(y) < len(idx) {
		panic(fmt.Sprintf("dataset: Batch of %d images needs x of %d values and y of %d labels, got %d and %d",
			len(idx), len(idx)*n, len(idx), len(x), len(y)))
	}
	for k, i := range idx {
		copy(x[k*n:(k+1)*n], s.X[i*n:(i+1)*n])
		y[k] = s.Y[i]
	}
}
