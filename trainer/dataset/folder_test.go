package dataset

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writePNG writes a w x h image whose every pixel is v (gray) or (v, v/2, 255-v) (colour).
func writePNG(t *testing.T, p string, w, h int, v uint8, gray bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	var img image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = v
		}
		img = g
	} else {
		c := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				c.SetNRGBA(x, y, color.NRGBA{v, v / 2, 255 - v, 255})
			}
		}
		img = c
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(p, ".jpg") {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 100})
	} else {
		err = png.Encode(f, img)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestFolderTrainTest(t *testing.T) {
	dir := t.TempDir()
	// Classes "b" and "a" (sorted: a=0, b=1); a non-image file and a hidden
	// folder that are ignored; images of several sizes.
	for i := range 6 {
		writePNG(t, filepath.Join(dir, "train", "b", string(rune('0'+i))+".png"), 8+i, 6, 200, false)
		writePNG(t, filepath.Join(dir, "train", "a", string(rune('0'+i))+".PNG"), 5, 5, 10, false)
	}
	writePNG(t, filepath.Join(dir, "test", "b", "x.png"), 3, 3, 200, false)
	writePNG(t, filepath.Join(dir, "test", "b", "gray.png"), 4, 4, 90, true) // converted to RGB
	os.WriteFile(filepath.Join(dir, "train", "a", "notes.txt"), []byte("not an image"), 0o644)
	os.MkdirAll(filepath.Join(dir, "train", ".cache"), 0o755)

	d, err := Load(context.Background(), dir, Options{TrainSize: -1, ValSize: 2, TestSize: -1, Resolution: 4, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "folder" || d.Classes != 2 || d.Channels != 3 || !slices.Equal(d.ClassNames, []string{"a", "b"}) {
		t.Errorf("got %s %d classes %v, %d channels; want folder, 2 classes [a b], 3 channels", d.Format, d.Classes, d.ClassNames, d.Channels)
	}
	if d.Train.N != 10 || d.Val.N != 2 || d.Test.N != 2 {
		t.Fatalf("sizes %d/%d/%d; want 10/2/2", d.Train.N, d.Val.N, d.Test.N)
	}
	// Test files in order: b/gray.png, b/x.png.
	if !slices.Equal(d.Test.Y, []int{1, 1}) {
		t.Errorf("test labels %v; want [1 1]", d.Test.Y)
	}
	wantRGB := [][3]int{{90, 90, 90}, {200, 100, 55}}
	for i, want := range wantRGB {
		for ch := range 3 {
			if got := unpix(d, d.Test, i, ch, 1, 2); got != want[ch] {
				t.Errorf("test image %d channel %d = %d; want %d", i, ch, got, want[ch])
			}
		}
	}
	// Class a is red 10, class b red 200, whatever the image size.
	for _, s := range []Set{d.Train, d.Val} {
		for i := range s.N {
			if got, want := unpix(d, s, i, 0, 3, 3), []int{10, 200}[s.Y[i]]; got != want {
				t.Errorf("image of class %d has red %d; want %d", s.Y[i], got, want)
			}
		}
	}
}

func TestFolderCarved(t *testing.T) {
	dir := t.TempDir()
	classes := []string{"zebra", "ant", "moth"}
	for c, name := range classes {
		for i := range 10 {
			writePNG(t, filepath.Join(dir, name, string(rune('a'+i))+".jpg"), 6, 6, uint8(50*c+i), true)
		}
	}
	// A colour image among grayscale ones is converted by luma.
	writePNG(t, filepath.Join(dir, "moth", "zz.png"), 6, 6, 100, false)
	opts := Options{TrainSize: -1, ValSize: 5, TestSize: 6, Resolution: 6, Seed: 4}
	d, err := Load(context.Background(), "folder:"+dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d.Channels != 1 || !slices.Equal(d.ClassNames, []string{"ant", "moth", "zebra"}) {
		t.Errorf("channels %d classes %v; want 1, [ant moth zebra]", d.Channels, d.ClassNames)
	}
	if d.Train.N != 20 || d.Val.N != 5 || d.Test.N != 6 {
		t.Fatalf("sizes %d/%d/%d; want 20/5/6", d.Train.N, d.Val.N, d.Test.N)
	}
	// Every image is in exactly one set: the pixel value identifies it
	// (JPEG at quality 100 keeps a flat gray exact to within 1).
	seen := map[int]int{}
	for _, s := range []Set{d.Train, d.Val, d.Test} {
		for i := range s.N {
			v := unpix(d, s, i, 0, 2, 2)
			seen[v]++
			class := []int{1, 2, 0}[s.Y[i]] // index in classes of label s.Y[i]
			if v != 77 /* luma of (100, 50, 155) */ && (v < 50*class-1 || v > 50*class+10) {
				t.Errorf("image of class %s has gray %d; want %d..%d", classes[class], v, 50*class, 50*class+9)
			}
		}
	}
	for v, n := range seen {
		if n > 1 {
			t.Errorf("gray %d appears in %d images; want each image once", v, n)
		}
	}
	d2, err := Load(context.Background(), "folder:"+dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Test.X, d2.Test.X) || !slices.Equal(d.Train.Y, d2.Train.Y) {
		t.Error("the same seed gave different sets")
	}
}

func TestFolderErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string
	}{
		{"one class", func(t *testing.T, dir string) {
			writePNG(t, filepath.Join(dir, "only", "a.png"), 2, 2, 1, true)
		}, []string{"has 1 class folder(s) [only]", "want at least 2"}},
		{"undecodable", func(t *testing.T, dir string) {
			writePNG(t, filepath.Join(dir, "a", "a.png"), 2, 2, 1, true)
			writePNG(t, filepath.Join(dir, "b", "a.png"), 2, 2, 1, true)
			os.WriteFile(filepath.Join(dir, "b", "broken.png"), []byte("\x89PNG not really"), 0o644)
		}, []string{"decode image", filepath.Join("b", "broken.png")}},
		{"empty class", func(t *testing.T, dir string) {
			writePNG(t, filepath.Join(dir, "a", "a.png"), 2, 2, 1, true)
			os.MkdirAll(filepath.Join(dir, "b"), 0o755)
		}, []string{"class folder", "holds no .png"}},
		{"train without test", func(t *testing.T, dir string) {
			writePNG(t, filepath.Join(dir, "train", "a", "a.png"), 2, 2, 1, true)
			writePNG(t, filepath.Join(dir, "train", "b", "a.png"), 2, 2, 1, true)
		}, []string{"has train/ but no test/"}},
		{"unknown test class", func(t *testing.T, dir string) {
			writePNG(t, filepath.Join(dir, "train", "a", "a.png"), 2, 2, 1, true)
			writePNG(t, filepath.Join(dir, "train", "b", "a.png"), 2, 2, 1, true)
			writePNG(t, filepath.Join(dir, "test", "c", "a.png"), 2, 2, 1, true)
		}, []string{`class folder "c" is not among the training classes [a b]`}},
		{"too few images", func(t *testing.T, dir string) {
			writePNG(t, filepath.Join(dir, "a", "a.png"), 2, 2, 1, true)
			writePNG(t, filepath.Join(dir, "b", "a.png"), 2, 2, 1, true)
		}, []string{"asks for TestSize 1 + ValSize 1 + TrainSize 1 = 3 images, but only 2 exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, err := Load(context.Background(), "folder:"+dir, Options{TrainSize: 1, ValSize: 1, TestSize: 1, Resolution: 2})
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

// A PNG whose header claims 100000 x 100000 pixels is refused before its
// pixels are allocated, naming the file.
func TestFolderHostileImage(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a", "a.png"), 2, 2, 1, true)
	writePNG(t, filepath.Join(dir, "b", "b.png"), 2, 2, 1, true)
	p := filepath.Join(dir, "b", "huge.png")
	writePNG(t, p, 2, 2, 1, true)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// IHDR: 8-byte signature, length, "IHDR", width, height, ..., CRC of type+data.
	binary.BigEndian.PutUint32(b[16:], 100000)
	binary.BigEndian.PutUint32(b[20:], 100000)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(context.Background(), dir, Options{TrainSize: 1, ValSize: 1, TestSize: 1, Resolution: 2})
	if err == nil || !strings.Contains(err.Error(), "huge.png is 100000x100000 pixels") {
		t.Errorf("error %v; want one saying huge.png is 100000x100000 pixels", err)
	}
}
