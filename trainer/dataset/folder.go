package dataset

import (
	"context"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decode .jpg/.jpeg
	_ "image/png"  // decode .png
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxImagePixels bounds the size of one image in a folder (64 megapixels),
// so that a hostile header cannot make the decoder allocate gigabytes.
const maxImagePixels = 1 << 26

// isImageFile reports whether name is a file the folder loader reads.
func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return !strings.HasPrefix(name, ".")
	}
	return false
}

// classDirs lists the class folders of dir, sorted by name.
func classDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// listImages lists the image files of each class folder of dir, labelled by
// the class's index in classes; every class must be in classes.
func listImages(ctx context.Context, dir string, classes []string, needEvery bool) (raw, error) {
	present, err := classDirs(dir)
	if err != nil {
		return raw{}, err
	}
	var r raw
	for _, name := range present {
		label, ok := slices.BinarySearch(classes, name)
		if !ok {
			return raw{}, fmt.Errorf("image folder %s: class folder %q is not among the training classes %v; want the same class folders in train/ and test/",
				dir, name, classes)
		}
		if err := ctx.Err(); err != nil {
			return raw{}, err
		}
		entries, err := os.ReadDir(filepath.Join(dir, name))
		if err != nil {
			return raw{}, fmt.Errorf("image folder %s: %w", dir, err)
		}
		count := 0
		for _, e := range entries {
			if e.Type().IsRegular() && isImageFile(e.Name()) {
				r.files = append(r.files, filepath.Join(dir, name, e.Name()))
				r.labels = append(r.labels, label)
				count++
			}
		}
		if count == 0 && needEvery {
			return raw{}, fmt.Errorf("class folder %s holds no .png, .jpg or .jpeg images; want at least one per class",
				filepath.Join(dir, name))
		}
	}
	return r, nil
}

// openFolder opens an image folder: dir/train/<class>/* with
// dir/test/<class>/*, or dir/<class>/* with the test set carved out.
func openFolder(ctx context.Context, dir string) (*source, error) {
	trainDir, testDir := filepath.Join(dir, "train"), filepath.Join(dir, "test")
	_, errTrain := os.Stat(trainDir)
	_, errTest := os.Stat(testDir)
	split := errTrain == nil && errTest == nil
	if errTrain == nil && errTest != nil {
		return nil, fmt.Errorf("image folder %s has train/ but no test/; want both train/<class>/ and test/<class>/, or class folders directly in %s", dir, dir)
	}
	if !split {
		trainDir = dir
	}
	classes, err := classDirs(trainDir)
	if err != nil {
		return nil, err
	}
	if len(classes) < 2 {
		return nil, fmt.Errorf("image folder %s has %d class folder(s) %v; want at least 2 (one folder of images per class)",
			trainDir, len(classes), classes)
	}
	src := &source{format: "folder", classes: len(classes), names: classes, carveTest: !split}
	if src.train, err = listImages(ctx, trainDir, classes, true); err != nil {
		return nil, err
	}
	if split {
		if src.test, err = listImages(ctx, testDir, classes, false); err != nil {
			return nil, err
		}
		if src.test.len() == 0 {
			return nil, fmt.Errorf("image folder %s holds no .png, .jpg or .jpeg images; want test images in class folders", testDir)
		}
	}
	first := src.train.files[0]
	img, err := decodeFile(first)
	if err != nil {
		return nil, err
	}
	src.channels = 3
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		src.channels = 1
	}
	return src, nil
}

// decodeFile decodes the image file p, refusing absurd sizes.
func decodeFile(p string) (image.Image, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("decode image %s: %w; want a PNG or JPEG file", p, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return nil, fmt.Errorf("image %s is %dx%d pixels; want a positive size of at most %d pixels", p, cfg.Width, cfg.Height, maxImagePixels)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("decode image %s: %w", p, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode image %s (%s): %w", p, format, err)
	}
	return img, nil
}

// decodeImage decodes the image file p into c channels (1 or 3) of 8-bit
// pixels in CHW order.
func decodeImage(p string, c int) (pix []byte, h, w int, err error) {
	img, err := decodeFile(p)
	if err != nil {
		return nil, 0, 0, err
	}
	b := img.Bounds()
	h, w = b.Dy(), b.Dx()
	pix = make([]byte, c*h*w)
	switch m := img.(type) {
	case *image.Gray:
		if c == 1 {
			for y := range h {
				copy(pix[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
			}
			return pix, h, w, nil
		}
	}
	for y := range h {
		for x := range w {
			col := img.At(b.Min.X+x, b.Min.Y+y)
			if c == 1 {
				pix[y*w+x] = color.GrayModel.Convert(col).(color.Gray).Y
				continue
			}
			r, g, bl, _ := col.RGBA()
			pix[y*w+x] = byte(r >> 8)
			pix[h*w+y*w+x] = byte(g >> 8)
			pix[2*h*w+y*w+x] = byte(bl >> 8)
		}
	}
	return pix, h, w, nil
}
