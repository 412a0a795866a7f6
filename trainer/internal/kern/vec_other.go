//go:build !amd64 || purego

package kern

// MulAdd does dst[i] += a[i]*b[i] for i < len(dst).
func MulAdd(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] += a[i] * b[i]
	}
}

// Sigmoid sets dst[i] = 1/(1+exp(-src[i])) for i < len(dst).
func Sigmoid(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = 1 / (1 + Exp(-v))
	}
}
