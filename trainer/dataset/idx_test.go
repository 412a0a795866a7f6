package dataset

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/effnas/effnas/internal/testenv"
)

// idxBytes encodes an IDX file of unsigned bytes.
func idxBytes(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// synthImages returns n h x w images; image i has pixel 0 = i%256, pixel 1 =
// i/256 and the rest a fixed pattern, so an image can be recognised after loading.
func synthImages(n, h, w int) []byte {
	b := make([]byte, n*h*w)
	for i := range n {
		img := b[i*h*w : (i+1)*h*w]
		for j := range img {
			img[j] = byte((j*7 + i) % 256)
		}
		img[0], img[1] = byte(i%256), byte(i/256)
	}
	return b
}

func synthLabels(n, classes int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % classes)
	}
	return b
}

// writeIDXDir writes an MNIST-layout dataset of nTrain and nTest h x w images
// to a new directory, gzipped or not.
func writeIDXDir(t *testing.T, nTrain, nTest, h, w int, gzipped bool) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"train-images-idx3-ubyte": idxBytes([]int{nTrain, h, w}, synthImages(nTrain, h, w)),
		"train-labels-idx1-ubyte": idxBytes([]int{nTrain}, synthLabels(nTrain, 3)),
		"t10k-images-idx3-ubyte":  idxBytes([]int{nTest, h, w}, synthImages(nTest, h, w)),
		"t10k-labels-idx1-ubyte":  idxBytes([]int{nTest}, synthLabels(nTest, 3)),
	}
	for name, b := range files {
		if gzipped {
			name, b = name+".gz", gz(b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pixel0 recovers the original byte of pixel (0,0) of image i of s,
// loaded at native size.
func pixel(d *Data, s Set, i, j int) int {
	v := s.Image(i)[j]*d.Std[0] + d.Mean[0]
	return int(math.Round(float64(v) * 255))
}

func TestIDXSynthetic(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := writeIDXDir(t, 50, 20, 5, 5, gzipped)
		for _, spec := range []string{dir, "idx:" + dir} {
			d, err := Load(context.Background(), spec, Options{TrainSize: -1, ValSize: 10, TestSize: -1, Resolution: 5, Seed: 3})
			if err != nil {
				t.Fatalf("gzipped %v, spec %s: %v", gzipped, spec, err)
			}
			if d.Format != "idx" || d.Name != dir || d.Classes != 3 || d.Channels != 1 {
				t.Errorf("got format %q name %q classes %d channels %d; want idx %s 3 1", d.Format, d.Name, d.Classes, d.Channels, dir)
			}
			if d.Train.N != 40 || d.Val.N != 10 || d.Test.N != 20 {
				t.Errorf("sizes %d/%d/%d; want 40/10/20", d.Train.N, d.Val.N, d.Test.N)
			}
			// Every loaded image is the file's image of the same index, with its label.
			seen := map[int]bool{}
			for _, s := range []Set{d.Train, d.Val} {
				for i := range s.N {
					id := pixel(d, s, i, 0)
					if seen[id] {
						t.Fatalf("image %d appears twice in train+val", id)
					}
					seen[id] = true
					if s.Y[i] != id%3 {
						t.Errorf("image %d has label %d; want %d", id, s.Y[i], id%3)
					}
					if got := pixel(d, s, i, 7); got != (7*7+id)%256 {
						t.Errorf("image %d pixel 7 is %d; want %d", id, got, (7*7+id)%256)
					}
				}
			}
			if len(seen) != 50 {
				t.Errorf("train+val hold %d distinct images; want 50", len(seen))
			}
			for i := range d.Test.N {
				if id := pixel(d, d.Test, i, 0); id != i {
					t.Errorf("test image %d is file image %d; want file order", i, id)
				}
			}
			// Normalised with the training subset's own statistics.
			m, s := stats(&d.Train)
			if math.Abs(float64(m[0])) > 1e-5 || math.Abs(float64(s[0])-1) > 1e-4 {
				t.Errorf("normalised training set has mean %v std %v; want 0 and 1", m[0], s[0])
			}
		}
	}
}

func TestIDXDottedNames(t *testing.T) {
	dir := writeIDXDir(t, 10, 4, 3, 3, false)
	for _, n := range []string{"train-images", "train-labels", "t10k-images", "t10k-labels"} {
		kind := "-idx3-ubyte"
		if strings.HasSuffix(n, "labels") {
			kind = "-idx1-ubyte"
		}
		if err := os.Rename(filepath.Join(dir, n+kind), filepath.Join(dir, n+"."+kind[1:])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(context.Background(), dir, Options{TrainSize: 5, ValSize: 5, TestSize: 4, Resolution: 3}); err != nil {
		t.Fatal(err)
	}
}

func TestIDXErrors(t *testing.T) {
	good := func() map[string][]byte {
		return map[string][]byte{
			"train-images-idx3-ubyte": idxBytes([]int{6, 4, 4}, synthImages(6, 4, 4)),
			"train-labels-idx1-ubyte": idxBytes([]int{6}, synthLabels(6, 2)),
			"t10k-images-idx3-ubyte":  idxBytes([]int{2, 4, 4}, synthImages(2, 4, 4)),
			"t10k-labels-idx1-ubyte":  idxBytes([]int{2}, synthLabels(2, 2)),
		}
	}
	tests := []struct {
		name   string
		change func(map[string][]byte)
		want   []string // substrings of the error
	}{
		{"missing labels", func(m map[string][]byte) { delete(m, "t10k-labels-idx1-ubyte") },
			[]string{"missing t10k-labels-idx1-ubyte", "want the four"}},
		{"truncated images", func(m map[string][]byte) {
			b := m["train-images-idx3-ubyte"]
			m["train-images-idx3-ubyte"] = b[:len(b)-5]
		}, []string{"train-images-idx3-ubyte: truncated", "96 bytes of data", "holds 91"}},
		{"truncated header", func(m map[string][]byte) {
			m["t10k-images-idx3-ubyte"] = m["t10k-images-idx3-ubyte"][:9]
		}, []string{"t10k-images-idx3-ubyte: truncated", "header"}},
		{"truncated gzip", func(m map[string][]byte) {
			b := gz(m["train-images-idx3-ubyte"])
			delete(m, "train-images-idx3-ubyte")
			m["train-images-idx3-ubyte.gz"] = b[:len(b)-12]
		}, []string{"train-images-idx3-ubyte.gz"}},
		{"wrong magic", func(m map[string][]byte) { m["train-labels-idx1-ubyte"][1] = 7 },
			[]string{"train-labels-idx1-ubyte: wrong magic number 0x00070801", "want 0x00000801"}},
		{"float elements", func(m map[string][]byte) { m["train-labels-idx1-ubyte"][2] = 0x0d },
			[]string{"element type 0x0d", "unsigned bytes"}},
		{"labels swapped for images", func(m map[string][]byte) {
			m["train-images-idx3-ubyte"] = m["train-labels-idx1-ubyte"]
		}, []string{"train-images-idx3-ubyte: has 1 dimensions", "want 3"}},
		{"count mismatch", func(m map[string][]byte) {
			m["train-labels-idx1-ubyte"] = idxBytes([]int{5}, synthLabels(5, 2))
		}, []string{"train-labels-idx1-ubyte holds 5 labels", "train-images-idx3-ubyte holds 6 images", "one label per image"}},
		{"extra bytes", func(m map[string][]byte) {
			m["t10k-labels-idx1-ubyte"] = append(m["t10k-labels-idx1-ubyte"], 1, 2, 3)
		}, []string{"t10k-labels-idx1-ubyte: the file holds more than the 2 bytes"}},
		{"size mismatch", func(m map[string][]byte) {
			m["t10k-images-idx3-ubyte"] = idxBytes([]int{2, 4, 5}, synthImages(2, 4, 5))
		}, []string{"holds 4x5 images", "4x4", "same size"}},
		{"zero dimension", func(m map[string][]byte) {
			m["t10k-images-idx3-ubyte"] = idxBytes([]int{2, 0, 4}, nil)
		}, []string{"dimension 1", "is 0"}},
		{"hostile header", func(m map[string][]byte) {
			m["train-images-idx3-ubyte"] = idxBytes([]int{1 << 30, 1 << 20, 1 << 20}, nil)
		}, []string{"header is corrupt"}},
		{"one class", func(m map[string][]byte) {
			m["train-labels-idx1-ubyte"] = idxBytes([]int{6}, make([]byte, 6))
			m["t10k-labels-idx1-ubyte"] = idxBytes([]int{2}, make([]byte, 2))
		}, []string{"only label 0", "at least 2 classes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := good()
			tt.change(m)
			for name, b := range m {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(context.Background(), "idx:"+dir, Options{TrainSize: 2, ValSize: 2, TestSize: 1, Resolution: 4})
			if err == nil {
				t.Fatal("Load succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// FuzzReadIDX: any input, plain or gzipped, gives an error or a file whose
// payload matches its dimensions; never a panic, and memory stays in
// proportion to the input (the hint is the input's length).
func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]int{3}, []byte{1, 2, 3}), 1)
	f.Add(idxBytes([]int{2, 2, 3}, synthImages(2, 2, 3)), 3)
	f.Add(gz(idxBytes([]int{2, 2, 3}, synthImages(2, 2, 3))), 3)
	f.Add(idxBytes([]int{1 << 30, 1 << 30, 1 << 30}, nil), 3)
	f.Add(gz(idxBytes([]int{1 << 10, 1 << 10, 1 << 10}, nil)), 3)
	f.Add([]byte{0, 0, 8}, 1)
	f.Fuzz(func(t *testing.T, b []byte, dims int) {
		dims = 1 + (dims&1)*2 // 1 or 3
		got, err := readIDX(bytes.NewReader(b), "fuzz", dims, int64(len(b)))
		if err != nil {
			return
		}
		size := 1
		for _, d := range got.dims {
			size *= d
		}
		if len(got.dims) != dims || len(got.data) != size {
			t.Fatalf("dims %v with %d bytes of data", got.dims, len(got.data))
		}
	})
}

// Fashion-MNIST from Debian's dataset-fashion-mnist. The README's test
// command runs it without the race detector; in CI a missing package
// fails it (internal/testenv).
func TestFashionMNIST(t *testing.T) {
	if raceEnabled {
		t.Skip("decompressing Fashion-MNIST under the race detector takes 20 s; the README's test command runs it without -race")
	}
	dir := testenv.FashionMNISTDir(t)
	d, err := Load(context.Background(), dir, Options{TrainSize: 1000, ValSize: 500, TestSize: -1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "idx" || d.Classes != 10 || d.Channels != 1 || d.Test.N != 10000 || d.Train.H != 32 {
		t.Errorf("got %s, %d classes, %d channels, %d test images at %d; want idx, 10, 1, 10000 at 32",
			d.Format, d.Classes, d.Channels, d.Test.N, d.Train.H)
	}
	// The first Fashion-MNIST test image is an ankle boot (9), the second a pullover (2).
	if d.Test.Y[0] != 9 || d.Test.Y[1] != 2 {
		t.Errorf("first test labels %v; want 9 2", d.Test.Y[:2])
	}
}
