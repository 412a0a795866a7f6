package dataset

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestMNISTBuiltin(t *testing.T) {
	start := time.Now()
	src, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first use, decompression: %v", time.Since(start))
	if src.train.len() != 60000 || src.test.len() != 10000 || src.train.h != 28 || src.train.w != 28 || src.classes != 10 {
		t.Errorf("built-in mnist has %d training and %d test images of %dx%d, %d classes; want 60000 and 10000 of 28x28, 10",
			src.train.len(), src.test.len(), src.train.h, src.train.w, src.classes)
	}
	// The first t10k labels are 7 2 1 0 4 1 4 9 5 9; the training file has
	// 5923 zeros and 6742 ones.
	if got, want := src.test.labels[:10], []int{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}; !slices.Equal(got, want) {
		t.Errorf("first test labels %v; want %v", got, want)
	}
	var counts [10]int
	for _, y := range src.train.labels {
		counts[y]++
	}
	if counts[0] != 5923 || counts[1] != 6742 {
		t.Errorf("training counts of 0 and 1: %d, %d; want 5923, 6742", counts[0], counts[1])
	}
	// The fixed normalisation constants are the training pixels' statistics.
	var sum, sq float64
	for _, p := range src.train.pix {
		v := float64(p) / 255
		sum += v
		sq += v * v
	}
	n := float64(len(src.train.pix))
	mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	if math.Abs(mean-float64(mnistMean[0])) > 1e-4 || math.Abs(std-float64(mnistStd[0])) > 1e-4 {
		t.Errorf("training pixels have mean %.5f std %.5f; the constants say %v %v", mean, std, mnistMean[0], mnistStd[0])
	}

	// Loaded at the native size, the test set in file order, normalised by
	// the constants: the blank corner maps to -0.1307/0.3081.
	d, err := Load(context.Background(), "mnist", Options{TrainSize: 100, ValSize: 100, TestSize: -1, Resolution: 28, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "mnist" || d.Name != "mnist" || d.Classes != 10 || d.Channels != 1 || d.Test.N != 10000 {
		t.Errorf("got format %q name %q classes %d channels %d, %d test images; want mnist mnist 10 1 10000",
			d.Format, d.Name, d.Classes, d.Channels, d.Test.N)
	}
	if !slices.Equal(d.Test.Y, src.test.labels) {
		t.Error("with TestSize -1 the test labels are not the file's, in order")
	}
	for _, j := range []int{0, 28*14 + 14} { // corner and centre of test image 0
		want := (float32(src.test.pix[j])/255 - 0.1307) / 0.3081
		if got := d.Test.X[j]; math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("test image 0 pixel %d is %v; want %v", j, got, want)
		}
	}
}

func TestMNISTDefaults(t *testing.T) {
	ctx := context.Background()
	if _, err := mnist(); err != nil { // decompress outside the timing
		t.Fatal(err)
	}
	start := time.Now()
	d, err := Load(ctx, "mnist", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Load(mnist, defaults) after decompression: %v", time.Since(start))
	if d.Train.N != DefaultTrainSize || d.Val.N != DefaultValSize || d.Test.N != DefaultTestSize {
		t.Errorf("sizes %d/%d/%d; want %d/%d/%d", d.Train.N, d.Val.N, d.Test.N, DefaultTrainSize, DefaultValSize, DefaultTestSize)
	}
	for _, s := range []Set{d.Train, d.Val, d.Test} {
		if s.C != 1 || s.H != 32 || s.W != 32 || len(s.X) != s.N*32*32 || len(s.Y) != s.N {
			t.Errorf("set shape %dx%dx%dx%d with %d values, %d labels; want Nx1x32x32", s.N, s.C, s.H, s.W, len(s.X), len(s.Y))
		}
	}
	// 28 -> 32 keeps the mean of an image (MNIST's borders are blank, so the
	// edge clamp does not matter) and bilinear interpolation smooths, so the
	// normalised training pixels keep mean 0 and their spread drops a little
	// below 1 (0.94 measured).
	mean, std := stats(&d.Train)
	if math.Abs(float64(mean[0])) > 0.02 || std[0] < 0.9 || std[0] > 1 {
		t.Errorf("normalised training pixels at 32x32 have mean %v std %v; want 0 within 0.02 and std in [0.9, 1]", mean[0], std[0])
	}
}

func BenchmarkLoadMNIST(b *testing.B) {
	ctx := context.Background()
	if _, err := mnist(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(ctx, "mnist", Options{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecompressMNIST(b *testing.B) {
	for b.Loop() {
		if _, err := decompressMNIST(); err != nil {
			b.Fatal(err)
		}
	}
}

// Loads in several goroutines share the one decompressed MNIST safely and
// agree with each other.
func TestConcurrentLoads(t *testing.T) {
	ctx := context.Background()
	opts := Options{TrainSize: 300, ValSize: 100, TestSize: 100, Seed: 2}
	var got [3]*Data
	var errs [3]error
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i], errs[i] = Load(ctx, "mnist", opts) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !slices.Equal(got[i].Train.X, got[0].Train.X) || !slices.Equal(got[i].Test.Y, got[0].Test.Y) {
			t.Errorf("load %d differs from load 0", i)
		}
	}
}
