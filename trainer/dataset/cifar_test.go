package dataset

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cifarRecords returns n records; record i has class i%classes, and pixel
// (ch, y, x) = (ch*50 + i + y + x) % 256.
func cifarRecords(n, labelBytes, classes, first int) []byte {
	rec := labelBytes + cifarPixels
	b := make([]byte, n*rec)
	for i := range n {
		r := b[i*rec : (i+1)*rec]
		id := first + i
		r[labelBytes-1] = byte(id % classes)
		if labelBytes == 2 {
			r[0] = byte(id % 20) // coarse label
		}
		for ch := range 3 {
			for y := range cifarSide {
				for x := range cifarSide {
					r[labelBytes+ch*1024+y*32+x] = byte((ch*50 + id + y + x) % 256)
				}
			}
		}
	}
	return b
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func cifar10Files(perBatch int) map[string][]byte {
	m := map[string][]byte{"test_batch.bin": cifarRecords(perBatch, 1, 10, 1000)}
	for k := 1; k <= 5; k++ {
		m[fmt.Sprintf("data_batch_%d.bin", k)] = cifarRecords(perBatch, 1, 10, (k-1)*perBatch)
	}
	return m
}

// unpix recovers the original byte of channel ch, position (y, x), of image i.
func unpix(d *Data, s Set, i, ch, y, x int) int {
	v := s.Image(i)[ch*s.H*s.W+y*s.W+x]*d.Std[ch] + d.Mean[ch]
	return int(math.Round(float64(v) * 255))
}

func TestCIFAR10Synthetic(t *testing.T) {
	dir := writeFiles(t, cifar10Files(4))
	// The tarball's layout: the batches inside cifar-10-batches-bin/.
	top := t.TempDir()
	if err := os.Rename(dir, filepath.Join(top, "cifar-10-batches-bin")); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(top, "cifar-10-batches-bin")
	for _, spec := range []string{top, dir, "cifar10:" + dir} {
		d, err := Load(context.Background(), spec, Options{TrainSize: -1, ValSize: 5, TestSize: -1, Resolution: 32})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if d.Format != "cifar10" || d.Name != dir || d.Classes != 10 || d.Channels != 3 || d.ClassNames[9] != "truck" {
			t.Errorf("%s: got %s %s %d classes %d channels; want cifar10 %s 10 3", spec, d.Format, d.Name, d.Classes, d.Channels, dir)
		}
		if d.Train.N != 15 || d.Val.N != 5 || d.Test.N != 4 {
			t.Errorf("sizes %d/%d/%d; want 15/5/4", d.Train.N, d.Val.N, d.Test.N)
		}
		if d.Mean[0] != cifar10Mean[0] || d.Std[2] != cifar10Std[2] {
			t.Errorf("normalisation %v/%v; want the CIFAR-10 constants", d.Mean, d.Std)
		}
		// Record 2 of test_batch.bin: id 1002, label 2, planes in CHW order.
		if d.Test.Y[2] != 2 {
			t.Errorf("test label 2 is %d; want 2", d.Test.Y[2])
		}
		for _, c := range [][3]int{{0, 0, 0}, {1, 3, 5}, {2, 31, 30}} {
			want := (c[0]*50 + 1002 + c[1] + c[2]) % 256
			if got := unpix(d, d.Test, 2, c[0], c[1], c[2]); got != want {
				t.Errorf("test image 2 channel %d (%d,%d) = %d; want %d", c[0], c[1], c[2], got, want)
			}
		}
	}
}

func TestCIFAR100Synthetic(t *testing.T) {
	dir := writeFiles(t, map[string][]byte{
		"train.bin": cifarRecords(30, 2, 100, 70),
		"test.bin":  cifarRecords(3, 2, 100, 0),
	})
	d, err := Load(context.Background(), dir, Options{TrainSize: 20, ValSize: 10, TestSize: -1, Resolution: 16})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "cifar100" || d.Classes != 100 || d.Channels != 3 || d.Train.H != 16 {
		t.Errorf("got %s %d classes %d channels at %d; want cifar100 100 3 at 16", d.Format, d.Classes, d.Channels, d.Train.H)
	}
	// Fine labels, not coarse: train ids 70..99 have labels 70..99.
	for _, s := range []Set{d.Train, d.Val} {
		for _, y := range s.Y {
			if y < 70 {
				t.Errorf("label %d; want the fine labels 70..99", y)
			}
		}
	}
}

func TestCIFARErrors(t *testing.T) {
	tests := []struct {
		name  string
		spec  string
		files map[string][]byte
		want  []string
	}{
		{"truncated batch", "", func() map[string][]byte {
			m := cifar10Files(2)
			m["data_batch_3.bin"] = m["data_batch_3.bin"][:3073+100]
			return m
		}(), []string{"data_batch_3.bin holds 3173 bytes", "multiple of the 3073-byte record"}},
		{"missing batch", "cifar10:", func() map[string][]byte {
			m := cifar10Files(2)
			delete(m, "data_batch_4.bin")
			return m
		}(), []string{"data_batch_4.bin is missing", "data_batch_1.bin .. data_batch_5.bin"}},
		{"label out of range", "", func() map[string][]byte {
			m := cifar10Files(2)
			m["test_batch.bin"][3073] = 10
			return m
		}(), []string{"test_batch.bin: record 1 has label 10", "want 0..9"}},
		{"cifar100 as cifar10 size", "cifar100:", map[string][]byte{
			"train.bin": cifarRecords(3, 1, 10, 0),
			"test.bin":  cifarRecords(3, 2, 100, 0),
		}, []string{"train.bin holds 9219 bytes", "3074-byte record"}},
		{"empty test", "cifar100:", map[string][]byte{
			"train.bin": cifarRecords(3, 2, 100, 0),
			"test.bin":  nil,
		}, []string{"test.bin holds 0 bytes"}},
		{"cifar100 missing test", "cifar100:", map[string][]byte{
			"train.bin": cifarRecords(3, 2, 100, 0),
		}, []string{"test.bin is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			_, err := Load(context.Background(), tt.spec+dir, Options{TrainSize: 1, ValSize: 1, TestSize: 1})
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

// FuzzParseCIFAR: any input gives an error or one in-range label per record.
func FuzzParseCIFAR(f *testing.F) {
	f.Add(cifarRecords(2, 1, 10, 0), false)
	f.Add(cifarRecords(2, 2, 100, 0), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, b []byte, hundred bool) {
		l := cifar10Layout
		if hundred {
			l = cifar100Layout
		}
		labels, err := parseCIFAR("fuzz", b, l)
		if err != nil {
			return
		}
		if len(labels)*l.record() != len(b) {
			t.Fatalf("%d labels from %d bytes", len(labels), len(b))
		}
		for _, y := range labels {
			if y < 0 || y >= l.classes {
				t.Fatalf("label %d out of range", y)
			}
		}
	})
}
