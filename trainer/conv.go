package trainer

import "fmt"

// samePad returns the output size and the leading padding of TensorFlow's
// "same" padding: out = ceil(in/stride), the total padding split with the
// extra pixel (if any) at the end.
func samePad(in, k, s int) (out, lead int) {
	out = (in + s - 1) / s
	total := max((out-1)*s+k-in, 0)
	return out, total / 2
}

// im2col lays out the k x k patches of a regular convolution with "same"
// padding as the rows of a matrix, so that the convolution is a GEMM with
// the (k*k*cin, cout) weights: row (n, oh, ow) holds the patch of output
// pixel (oh, ow) of image n, tap-major ((kh, kw, ci)), zero outside the
// image.
type im2col struct {
	h, w, cin, k, s int
	ho, wo, pt, pl  int
}

func newIm2col(h, w, cin, k, s int) *im2col {
	c := &im2col{h: h, w: w, cin: cin, k: k, s: s}
	c.ho, c.pt = samePad(h, k, s)
	c.wo, c.pl = samePad(w, k, s)
	return c
}

func (c *im2col) String() string {
	return fmt.Sprintf("conv%dx%d/%d %dx%dx%d", c.k, c.k, c.s, c.h, c.w, c.cin)
}

// width is the length of a patch row.
func (c *im2col) width() int { return c.k * c.k * c.cin }

// fill writes the patch rows of images [n0, n1) of x into cols.
func (c *im2col) fill(cols, x []float32, n0, n1 int) {
	kk := c.width()
	if c.cin == 1 {
		c.fill1(cols, x, n0, n1)
		return
	}
	for n := n0; n < n1; n++ {
		img := x[n*c.h*c.w*c.cin:]
		for oh := 0; oh < c.ho; oh++ {
			for ow := 0; ow < c.wo; ow++ {
				row := cols[(((n-n0)*c.ho+oh)*c.wo+ow)*kk:][:kk]
				for kh := 0; kh < c.k; kh++ {
					ih := oh*c.s - c.pt + kh
					for kw := 0; kw < c.k; kw++ {
						iw := ow*c.s - c.pl + kw
						dst := row[(kh*c.k+kw)*c.cin:][:c.cin]
						if ih < 0 || ih >= c.h || iw < 0 || iw >= c.w {
							clear(dst)
							continue
						}
						copy(dst, img[(ih*c.w+iw)*c.cin:][:c.cin])
					}
				}
			}
		}
	}
}

// fill1 is fill for one input channel (the stem of grey images), one
// value per tap.
func (c *im2col) fill1(cols, x []float32, n0, n1 int) {
	kk := c.width()
	for n := n0; n < n1; n++ {
		img := x[n*c.h*c.w:][:c.h*c.w]
		for oh := 0; oh < c.ho; oh++ {
			for ow := 0; ow < c.wo; ow++ {
				row := cols[(((n-n0)*c.ho+oh)*c.wo+ow)*kk:][:kk]
				ih0, iw0 := oh*c.s-c.pt, ow*c.s-c.pl
				inside := ih0 >= 0 && iw0 >= 0 && ih0+c.k <= c.h && iw0+c.k <= c.w
				for kh := 0; kh < c.k; kh++ {
					ih := ih0 + kh
					r := row[kh*c.k:][:c.k]
					if inside {
						copy(r, img[ih*c.w+iw0:][:c.k])
						continue
					}
					for kw := range r {
						iw := iw0 + kw
						if ih < 0 || ih >= c.h || iw < 0 || iw >= c.w {
							r[kw] = 0
						} else {
							r[kw] = img[ih*c.w+iw]
						}
					}
				}
			}
		}
	}
}

// scatter adds the patch rows dcols of images [n0, n1) back to the image
// pixels they came from: the input gradient of the convolution, added to
// dx.
func (c *im2col) scatter(dx, dcols []float32, n0, n1 int) {
	kk := c.width()
	for n := n0; n < n1; n++ {
		img := dx[n*c.h*c.w*c.cin:]
		for oh := 0; oh < c.ho; oh++ {
			for ow := 0; ow < c.wo; ow++ {
				row := dcols[(((n-n0)*c.ho+oh)*c.wo+ow)*kk:][:kk]
				for kh := 0; kh < c.k; kh++ {
					ih := oh*c.s - c.pt + kh
					if ih < 0 || ih >= c.h {
						continue
					}
					for kw := 0; kw < c.k; kw++ {
						iw := ow*c.s - c.pl + kw
						if iw < 0 || iw >= c.w {
							continue
						}
						src := row[(kh*c.k+kw)*c.cin:][:c.cin]
						d := img[(ih*c.w+iw)*c.cin:][:c.cin]
						for i, v := range src {
							d[i] += v
						}
					}
				}
			}
		}
	}
}
