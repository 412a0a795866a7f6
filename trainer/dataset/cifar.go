package dataset

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CIFAR binary records: label byte(s), then 3x32x32 pixels, red plane, green
// plane, blue plane, rows top to bottom.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
)

// CIFAR normalisation: per-channel mean and standard deviation of the 50000
// training images' pixels in [0,1].
var (
	cifar10Mean  = []float32{0.4914, 0.4822, 0.4465}
	cifar10Std   = []float32{0.2470, 0.2435, 0.2616}
	cifar100Mean = []float32{0.5071, 0.4865, 0.4409}
	cifar100Std  = []float32{0.2673, 0.2564, 0.2762}
)

var cifar10Names = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarLayout describes one CIFAR variant's records.
type cifarLayout struct {
	labelBytes int // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
	label      int // which label byte is the class: 0, or 1 (fine)
	classes    int
}

func (l cifarLayout) record() int { return l.labelBytes + cifarPixels }

var (
	cifar10Layout  = cifarLayout{labelBytes: 1, label: 0, classes: 10}
	cifar100Layout = cifarLayout{labelBytes: 2, label: 1, classes: 100}
)

// parseCIFAR checks the records in b (the content of the file name) and
// returns their class labels.
func parseCIFAR(name string, b []byte, l cifarLayout) ([]int, error) {
	rec := l.record()
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty; want records of %d bytes (%d label byte(s), then 3x32x32 pixels)", name, rec, l.labelBytes)
	}
	if len(b)%rec != 0 {
		return nil, fmt.Errorf("%s holds %d bytes, not a multiple of the %d-byte record (%d label byte(s), then 3x32x32 pixels); the file is truncated or not a CIFAR binary of this kind",
			name, len(b), rec, l.labelBytes)
	}
	n := len(b) / rec
	labels := make([]int, n)
	for i := range labels {
		y := int(b[i*rec+l.label])
		if y >= l.classes {
			return nil, fmt.Errorf("%s: record %d has label %d; want 0..%d", name, i, y, l.classes-1)
		}
		labels[i] = y
	}
	return labels, nil
}

// readCIFAR reads and checks the CIFAR files in dir, in order, as one split.
// Each file's size is checked before anything is read, and the pixels of all
// files go into one buffer allocated once.
func readCIFAR(dir string, files []string, l cifarLayout) (raw, error) {
	rec := int64(l.record())
	sizes := make([]int64, len(files))
	var total int64
	for i, f := range files {
		p := filepath.Join(dir, f)
		fi, err := os.Stat(p)
		if err != nil {
			return raw{}, fmt.Errorf("cifar file %s: %w", p, err)
		}
		if fi.Size()%rec != 0 || fi.Size() == 0 {
			return raw{}, fmt.Errorf("%s holds %d bytes, not a positive multiple of the %d-byte record (%d label byte(s), then 3x32x32 pixels); the file is truncated or not a CIFAR binary of this kind",
				p, fi.Size(), rec, l.labelBytes)
		}
		sizes[i] = fi.Size()
		total += fi.Size()
	}
	r := raw{pix: make([]byte, total), stride: int(rec), offset: l.labelBytes, h: cifarSide, w: cifarSide}
	var at int64
	for i, f := range files {
		p := filepath.Join(dir, f)
		b := r.pix[at : at+sizes[i]]
		at += sizes[i]
		if err := readInto(p, b); err != nil {
			return raw{}, err
		}
		labels, err := parseCIFAR(p, b, l)
		if err != nil {
			return raw{}, err
		}
		r.labels = append(r.labels, labels...)
	}
	return r, nil
}

// readInto fills b from the file p, which must hold exactly len(b) bytes.
func readInto(p string, b []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("cifar file %s: %w", p, err)
	}
	defer f.Close()
	if n, err := io.ReadFull(f, b); err != nil {
		return fmt.Errorf("%s: read %d of its %d bytes: %w", p, n, len(b), err)
	}
	if n, _ := io.CopyN(io.Discard, f, 1); n > 0 {
		return fmt.Errorf("%s grew while it was read; want a file that does not change", p)
	}
	return nil
}

// openCIFAR10 opens the CIFAR-10 binary batches in dir.
func openCIFAR10(dir string) (*source, error) {
	var batches []string
	for i := 1; i <= 5; i++ {
		batches = append(batches, fmt.Sprintf("data_batch_%d.bin", i))
	}
	for _, f := range append(batches, "test_batch.bin") {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("cifar10 directory %s: %s is missing; want data_batch_1.bin .. data_batch_5.bin and test_batch.bin", dir, f)
		}
	}
	train, err := readCIFAR(dir, batches, cifar10Layout)
	if err != nil {
		return nil, err
	}
	test, err := readCIFAR(dir, []string{"test_batch.bin"}, cifar10Layout)
	if err != nil {
		return nil, err
	}
	return &source{format: "cifar10", classes: 10, channels: 3, names: cifar10Names,
		mean: cifar10Mean, std: cifar10Std, train: train, test: test}, nil
}

// openCIFAR100 opens the CIFAR-100 binary files in dir, with fine labels.
func openCIFAR100(dir string) (*source, error) {
	for _, f := range []string{"train.bin", "test.bin"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("cifar100 directory %s: %s is missing; want train.bin and test.bin", dir, f)
		}
	}
	train, err := readCIFAR(dir, []string{"train.bin"}, cifar100Layout)
	if err != nil {
		return nil, err
	}
	test, err := readCIFAR(dir, []string{"test.bin"}, cifar100Layout)
	if err != nil {
		return nil, err
	}
	return &source{format: "cifar100", classes: 100, channels: 3,
		mean: cifar100Mean, std: cifar100Std, train: train, test: test}, nil
}
