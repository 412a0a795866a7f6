package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func ExampleLoad() {
	d, err := Load(context.Background(), "mnist", Options{Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Format, d.Classes, "classes")
	fmt.Printf("train %d, val %d, test %d images of %dx%dx%d\n", d.Train.N, d.Val.N, d.Test.N, d.Train.C, d.Train.H, d.Train.W)
	fmt.Println("mean", d.Mean, "std", d.Std)
	// Output:
	// mnist 10 classes
	// train 10000, val 2000, test 2000 images of 1x32x32
	// mean [0.1307] std [0.3081]
}

func TestOptions(t *testing.T) {
	if got, want := (Options{}).WithDefaults(), (Options{TrainSize: 10000, ValSize: 2000, TestSize: 2000, Resolution: 32}); got != want {
		t.Errorf("defaults %+v; want %+v", got, want)
	}
	if got := (Options{TrainSize: -1, Seed: 5}).WithDefaults(); got.TrainSize != -1 || got.Seed != 5 {
		t.Errorf("WithDefaults changed set fields: %+v", got)
	}
	tests := []struct {
		opts Options
		want string // "" for valid
	}{
		{Options{}, ""},
		{Options{TrainSize: -1, ValSize: 100, TestSize: -1, Resolution: 1024}, ""},
		{Options{ValSize: -1}, ""},
		{Options{TrainSize: -2}, "TrainSize is -2; want a positive number of training images"},
		{Options{ValSize: -3}, "ValSize is -3"},
		{Options{TestSize: -9}, "TestSize is -9; want a positive number of test images, or -1 for all of them"},
		{Options{TrainSize: -1, ValSize: -1}, "both -1"},
		{Options{Resolution: -4}, "Resolution is -4; want a side length in pixels from 1 to 1024"},
		{Options{Resolution: 5000}, "Resolution is 5000"},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v; want valid", tt.opts, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v; want one containing %q", tt.opts, err, tt.want)
		}
		if tt.want == "" {
			continue
		}
		if _, lerr := Load(context.Background(), "mnist", tt.opts); lerr == nil || lerr.Error() != err.Error() {
			t.Errorf("Load with %+v: error %v; want %v", tt.opts, lerr, err)
		}
	}
}

func TestSpecErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	tests := []struct{ spec, want string }{
		{"", "dataset spec is empty"},
		{filepath.Join(dir, "nope"), "nope does not exist; want \"mnist\" or a directory"},
		{"cifar10:", `names no directory after "cifar10:"`},
		{file, "is a file; want"},
		{empty, "cannot tell its format"},
		{"idx:" + empty, "missing train-images-idx3-ubyte"},
		{"folder:" + empty, "has 0 class folder(s)"},
	}
	for _, tt := range tests {
		_, err := Load(context.Background(), tt.spec, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%q): error %v; want one containing %q", tt.spec, err, tt.want)
		}
	}
}

func TestSizeErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		opts Options
		want string
	}{
		{Options{TrainSize: 59000, ValSize: 2000}, "asks for ValSize 2000 + TrainSize 59000 = 61000 training images, but only 60000 exist"},
		{Options{TrainSize: -1, ValSize: 60000}, "none would be left for TrainSize"},
		{Options{TestSize: 10001}, "asks for TestSize 10001 test images, but only 10000 exist"},
		{Options{TrainSize: -1, TestSize: -1, Resolution: 1024}, "70000 images of 1x1024x1024 would take 273.4 GiB"},
	}
	for _, tt := range tests {
		_, err := Load(ctx, "mnist", tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v; want one containing %q", tt.opts, err, tt.want)
		}
	}
}

// The same seed gives identical Data, another seed a different split;
// validation and training never share an image, validation does not
// depend on TrainSize, and a larger TrainSize is a superset.
func TestSeededSplit(t *testing.T) {
	ctx := context.Background()
	opts := Options{TrainSize: 3000, ValSize: 1000, TestSize: 500, Resolution: 28, Seed: 7}
	a, err := Load(ctx, "mnist", opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(ctx, "mnist", opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]Set{{a.Train, b.Train}, {a.Val, b.Val}, {a.Test, b.Test}} {
		if !slices.Equal(p[0].X, p[1].X) || !slices.Equal(p[0].Y, p[1].Y) {
			t.Fatal("two loads with the same seed differ")
		}
	}
	opts.Seed = 8
	c, err := Load(ctx, "mnist", opts)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.Val.Y, c.Val.Y) || slices.Equal(a.Test.Y, c.Test.Y) {
		t.Error("seeds 7 and 8 chose the same validation or test images")
	}

	// Disjointness and nesting, by index, from the same choice Load makes.
	src, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	opts.Seed = 7
	p, err := choose(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	val := map[int]bool{}
	for _, i := range p.val {
		val[i] = true
	}
	for _, i := range p.train {
		if val[i] {
			t.Fatalf("training file image %d is in both train and val", i)
		}
	}
	opts.TrainSize = -1
	q, err := choose(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.val, q.val) {
		t.Error("the validation set changed with TrainSize")
	}
	if len(q.train) != 59000 {
		t.Errorf("TrainSize -1 gave %d images; want 59000", len(q.train))
	}
	for _, i := range p.train {
		if _, ok := slices.BinarySearch(q.train, i); !ok {
			t.Fatalf("image %d of the 3000-image training set is not in the full one", i)
		}
	}
	// Images match their indices: the loaded val set is the chosen images.
	for k, i := range p.val[:20] {
		if a.Val.Y[k] != src.train.labels[i] {
			t.Errorf("val image %d has label %d; want file image %d's label %d", k, a.Val.Y[k], i, src.train.labels[i])
		}
	}
}

func TestBatch(t *testing.T) {
	s := Set{X: []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, Y: []int{5, 6, 7}, N: 3, C: 1, H: 2, W: 2}
	x, y := make([]float32, 8), make([]int, 2)
	s.Batch([]int{2, 0}, x, y)
	if !slices.Equal(x, []float32{8, 9, 10, 11, 0, 1, 2, 3}) || !slices.Equal(y, []int{7, 5}) {
		t.Errorf("Batch gave %v %v", x, y)
	}
	if got := s.Image(1); !slices.Equal(got, []float32{4, 5, 6, 7}) || cap(got) != 4 {
		t.Errorf("Image(1) = %v (cap %d)", got, cap(got))
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("Batch with a short x did not panic")
		}
	}()
	s.Batch([]int{0, 1}, x[:7], y)
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Load(ctx, "mnist", Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context: %v; want context.Canceled", err)
	}
}
