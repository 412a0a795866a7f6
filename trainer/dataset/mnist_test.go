package dataset

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

func TestMNISTBuiltin(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	d, err := Load(ctx, "mnist", Options{TrainSize: -1, ValSize: 5000, TestSize: -1, Resolution: 28, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first load (decompress + all 70000 images at 28x28): %v", time.Since(start))
	if d.Format != "mnist" || d.Name != "mnist" || d.Classes != 10 || d.Channels != 1 {
		t.Errorf("got format %q name %q classes %d channels %d; want mnist mnist 10 1", d.Format, d.Name, d.Classes, d.Channels)
	}
	if got := d.Train.N + d.Val.N; got != 60000 {
		t.Errorf("train+val = %d images; want 60000", got)
	}
	if d.Val.N != 5000 || d.Test.N != 10000 {
		t.Errorf("val %d test %d; want 5000 10000", d.Val.N, d.Test.N)
	}
	// Test set with TestSize -1 is in file order: the first t10k labels are 7 2 1 0 4 1 4 9 5 9.
	if got, want := d.Test.Y[:10], []int{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}; !slices.Equal(got, want) {
		t.Errorf("first test labels %v; want %v", got, want)
	}
	// Class counts of the training file: 0 appears 5923 times, 1 6742 times.
	var counts [10]int
	for _, s := range []Set{d.Train, d.Val} {
		for _, y := range s.Y {
			counts[y]++
		}
	}
	if counts[0] != 5923 || counts[1] != 6742 {
		t.Errorf("training counts of 0 and 1: %d, %d; want 5923, 6742", counts[0], counts[1])
	}
	// Normalised with the MNIST constants at native size, all 60000 training
	// images have mean 0 and standard deviation 1 to the constants' precision.
	all := Set{X: append(slices.Clone(d.Train.X), d.Val.X...), N: 60000, C: 1, H: 28, W: 28}
	mean, std := stats(&all)
	if math.Abs(float64(mean[0])) > 2e-3 || math.Abs(float64(std[0])-1) > 2e-3 {
		t.Errorf("normalised training pixels have mean %v std %v; want 0 and 1 within 2e-3", mean[0], std[0])
	}
	// The background pixel (0) maps to -0.1307/0.3081.
	if got, want := d.Test.X[0], float32(-0.1307/0.3081); math.Abs(float64(got-want)) > 1e-6 {
		t.Errorf("corner pixel %v; want %v", got, want)
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
