//go:build amd64 && !purego

package kern

//go:noescape
func sigmoidAVX(dst, src *float32, n int)

//go:noescape
func mulAddAVX(dst, a, b *float32, n int)

// MulAdd does dst[i] += a[i]*b[i] for i < len(dst).
func MulAdd(dst, a, b []float32) {
	n := len(dst)
	a, b = a[:n], b[:n]
	v := n &^ 7
	if useAsm && v > 0 {
		mulAddAVX(&dst[0], &a[0], &b[0], v)
	} else {
		v = 0
	}
	for i := v; i < n; i++ {
		dst[i] += a[i] * b[i]
	}
}

// Sigmoid sets dst[i] = 1/(1+exp(-src[i])) for i < len(dst), with a
// relative error of about 2e-7.
func Sigmoid(dst, src []float32) {
	n := len(dst)
	src = src[:n]
	v := n &^ 7
	if useAsm && v > 0 {
		sigmoidAVX(&dst[0], &src[0], v)
	} else {
		v = 0
	}
	for i := v; i < n; i++ {
		dst[i] = 1 / (1 + Exp(-src[i]))
	}
}
