package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// idxFile is the content of an IDX file of unsigned bytes.
type idxFile struct {
	dims []int
	data []byte
}

// maxIDXBytes bounds the payload an IDX header may declare (16 GiB).
const maxIDXBytes = 1 << 34

// readIDX reads an IDX file of unsigned bytes with wantDims dimensions
// (1 for labels, 3 for images) from r, gzip-compressed or not. name is used in
// errors. hint is how many payload bytes r can plausibly hold (the file size);
// memory grows with the bytes actually read, never with what the header claims.
func readIDX(r io.Reader, name string, wantDims int, hint int64) (idxFile, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return idxFile{}, fmt.Errorf("%s: gzip header: %w", name, err)
		}
		defer zr.Close()
		hint *= 8
		br = bufio.NewReader(zr)
	}
	var head [4]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return idxFile{}, fmt.Errorf("%s: truncated: the file ends inside the 4-byte IDX magic number: %w", name, readErr(err))
	}
	want := "0x00000801 (labels) or 0x00000803 (images)"
	if wantDims == 1 {
		want = "0x00000801 (an IDX file of unsigned-byte labels)"
	} else if wantDims == 3 {
		want = "0x00000803 (an IDX file of unsigned-byte images)"
	}
	if head[0] != 0 || head[1] != 0 {
		return idxFile{}, fmt.Errorf("%s: wrong magic number 0x%08x; want %s", name, binary.BigEndian.Uint32(head[:]), want)
	}
	if head[2] != 0x08 {
		return idxFile{}, fmt.Errorf("%s: magic number 0x%08x says element type 0x%02x; only unsigned bytes (0x08) are supported, want %s",
			name, binary.BigEndian.Uint32(head[:]), head[2], want)
	}
	if int(head[3]) != wantDims {
		return idxFile{}, fmt.Errorf("%s: has %d dimensions (magic number 0x%08x); want %d, magic %s",
			name, head[3], binary.BigEndian.Uint32(head[:]), wantDims, want)
	}
	dimBytes := make([]byte, 4*wantDims)
	if _, err := io.ReadFull(br, dimBytes); err != nil {
		return idxFile{}, fmt.Errorf("%s: truncated: the file ends inside the header of %d dimension sizes: %w", name, wantDims, readErr(err))
	}
	f := idxFile{dims: make([]int, wantDims)}
	for i := range f.dims {
		f.dims[i] = int(binary.BigEndian.Uint32(dimBytes[4*i:]))
	}
	size := int64(1)
	for i, d := range f.dims {
		if d == 0 {
			return idxFile{}, fmt.Errorf("%s: dimension %d of the header (dimensions %v) is 0; want a positive size", name, i, f.dims)
		}
		if size > maxIDXBytes/int64(d) { // checked before multiplying, which could overflow

			return idxFile{}, fmt.Errorf("%s: header declares dimensions %v, more than %d bytes of data; the header is corrupt", name, f.dims, int64(maxIDXBytes))
		}
		size *= int64(d)
	}
	data := make([]byte, min(size, max(hint, 0)))
	n, err := io.ReadFull(br, data)
	if err == nil && int64(n) < size {
		var rest []byte
		rest, err = io.ReadAll(io.LimitReader(br, size-int64(n)))
		data = append(data[:n], rest...)
		n = len(data)
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return idxFile{}, fmt.Errorf("%s: read: %w", name, err)
	}
	if int64(n) < size {
		return idxFile{}, fmt.Errorf("%s: truncated: the header declares dimensions %v, %d bytes of data, but the file holds %d",
			name, f.dims, size, n)
	}
	extra, err := io.CopyN(io.Discard, br, 1)
	if extra > 0 {
		return idxFile{}, fmt.Errorf("%s: the file holds more than the %d bytes of data its header declares (dimensions %v); it is corrupt or not an IDX file",
			name, size, f.dims)
	}
	if err != io.EOF {
		// A gzip stream must end cleanly, checksum included.
		return idxFile{}, fmt.Errorf("%s: after the data: %w; the file is truncated or corrupt", name, readErr(err))
	}
	f.data = data[:n]
	return f, nil
}

// readErr makes a premature end of input read as such.
func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// idxNames lists the file names tried for base, in order.
func idxNames(base string) []string {
	// train-images-idx3-ubyte and the dotted train-images.idx3-ubyte.
	dotted := base
	for i := len(base) - 1; i >= 0; i-- {
		if base[i] == '-' && i+4 < len(base) && base[i+1:i+4] == "idx" {
			dotted = base[:i] + "." + base[i+1:]
			break
		}
	}
	return []string{base, base + ".gz", dotted, dotted + ".gz"}
}

// findIDX returns the path of the IDX file base in dir, plain or gzipped.
func findIDX(dir, base string) (string, error) {
	for _, n := range idxNames(base) {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("idx directory %s: missing %s (or %s.gz); want the four MNIST-layout files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte", dir, base, base)
}

// readIDXFile reads the IDX file base in dir.
func readIDXFile(dir, base string, wantDims int) (idxFile, error) {
	p, err := findIDX(dir, base)
	if err != nil {
		return idxFile{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return idxFile{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return idxFile{}, err
	}
	return readIDX(f, p, wantDims, fi.Size())
}

// idxPair joins an image file and a label file into a raw split.
func idxPair(images, labels idxFile, imagesName, labelsName string) (raw, int, error) {
	n := images.dims[0]
	if labels.dims[0] != n {
		return raw{}, 0, fmt.Errorf("%s holds %d labels but %s holds %d images; want one label per image",
			labelsName, labels.dims[0], imagesName, n)
	}
	r := raw{labels: make([]int, n), pix: images.data, h: images.dims[1], w: images.dims[2]}
	r.stride = r.h * r.w
	classes := 0
	for i, l := range labels.data {
		r.labels[i] = int(l)
		classes = max(classes, int(l)+1)
	}
	return r, classes, nil
}

// openIDXDir opens the four MNIST-layout IDX files in dir.
func openIDXDir(dir string) (*source, error) {
	read := func(base string, dims int) (idxFile, string, error) {
		f, err := readIDXFile(dir, base, dims)
		p, _ := findIDX(dir, base)
		return f, p, err
	}
	var files [4]idxFile
	var names [4]string
	for i, spec := range []struct {
		base string
		dims int
	}{
		{"train-images-idx3-ubyte", 3}, {"train-labels-idx1-ubyte", 1},
		{"t10k-images-idx3-ubyte", 3}, {"t10k-labels-idx1-ubyte", 1},
	} {
		var err error
		if files[i], names[i], err = read(spec.base, spec.dims); err != nil {
			return nil, err
		}
	}
	return idxSource("idx", files, names)
}

// idxSource makes a source of the four IDX files train images, train
// labels, test images, test labels.
func idxSource(format string, files [4]idxFile, names [4]string) (*source, error) {
	train, c1, err := idxPair(files[0], files[1], names[0], names[1])
	if err != nil {
		return nil, err
	}
	test, c2, err := idxPair(files[2], files[3], names[2], names[3])
	if err != nil {
		return nil, err
	}
	if test.h != train.h || test.w != train.w {
		return nil, fmt.Errorf("%s holds %dx%d images but %s holds %dx%d; want the same size in both",
			names[2], test.h, test.w, names[0], train.h, train.w)
	}
	classes := max(c1, c2)
	if classes < 2 {
		return nil, fmt.Errorf("%s and %s hold only label 0; want at least 2 classes", names[1], names[3])
	}
	return &source{format: format, classes: classes, channels: 1, train: train, test: test}, nil
}
