package kern

// Act is an activation fused into a kernel.
type Act int

const (
	ActNone  Act = iota // the identity
	ActSwish            // x * sigmoid(x)
	ActReLU             // max(x, 0)
)

// The kernels below work on row-major rows x c matrices with per-column
// (per-channel) coefficients: the passes of batch norm and its activation,
// of squeeze-excite and of pooling. Each runs on the calling goroutine;
// callers split rows over threads. Column sums are accumulated in float32
// and added to what the sum slices hold: keep rows to a few hundred and
// fold the sums into float64.

// Affine sets dst = act(x*scale + shift), times mul when mul is not nil.
// With swish and a sig that is not nil, it also sets sig to the sigmoid of
// x*scale + shift, for ActGrad. dst may be x.
func Affine(dst, x []float32, rows, c int, scale, shift []float32, act Act, mul, sig []float32) {
	n := rows * c
	dst, x, scale, shift = dst[:n], x[:n], scale[:c], shift[:c]
	if mul != nil {
		mul = mul[:c]
	}
	if act != ActSwish {
		sig = nil
	}
	if sig != nil {
		sig = sig[:n]
	}
	if useAsm && c%8 == 0 && n > 0 {
		affineAsm(dst, x, rows, c, scale, shift, act, mul, sig)
		return
	}
	affineGo(dst, x, rows, c, scale, shift, act, mul, sig)
}

func affineGo(dst, x []float32, rows, c int, scale, shift []float32, act Act, mul, sig []float32) {
	for r := 0; r < rows; r++ {
		xr, yr := x[r*c:][:c], dst[r*c:][:c]
		for j, v := range xr {
			u := v*scale[j] + shift[j]
			switch act {
			case ActSwish:
				s := Sigmoid1(u)
				if sig != nil {
					sig[r*c+j] = s
				}
				u *= s
			case ActReLU:
				u = max(u, 0)
			}
			if mul != nil {
				u *= mul[j]
			}
			yr[j] = u
		}
	}
}

// AffineAdd sets dst = x*scale + shift + add. dst may be x or add.
func AffineAdd(dst, x, add []float32, rows, c int, scale, shift []float32) {
	n := rows * c
	dst, x, add, scale, shift = dst[:n], x[:n], add[:n], scale[:c], shift[:c]
	if useAsm && c%8 == 0 && n > 0 {
		affineAddAsm(dst, x, add, rows, c, scale, shift)
		return
	}
	affineAddGo(dst, x, add, rows, c, scale, shift)
}

func affineAddGo(dst, x, add []float32, rows, c int, scale, shift []float32) {
	for r := 0; r < rows; r++ {
		xr, ar, yr := x[r*c:][:c], add[r*c:][:c], dst[r*c:][:c]
		for j, v := range xr {
			yr[j] = v*scale[j] + shift[j] + ar[j]
		}
	}
}

// Affine2 sets dst = ka*a + kb*b + k0. dst may be a or b.
func Affine2(dst, a, b []float32, rows, c int, ka, kb, k0 []float32) {
	n := rows * c
	dst, a, b, ka, kb, k0 = dst[:n], a[:n], b[:n], ka[:c], kb[:c], k0[:c]
	if useAsm && c%8 == 0 && n > 0 {
		affine2Asm(dst, a, b, rows, c, ka, kb, k0)
		return
	}
	affine2Go(dst, a, b, rows, c, ka, kb, k0)
}

func affine2Go(dst, a, b []float32, rows, c int, ka, kb, k0 []float32) {
	for r := 0; r < rows; r++ {
		ar, br, yr := a[r*c:][:c], b[r*c:][:c], dst[r*c:][:c]
		for j, v := range ar {
			yr[j] = ka[j]*v + kb[j]*br[j] + k0[j]
		}
	}
}

// ActGrad is the first backward pass of batch norm fused with act. With
// the upstream gradient g = dy*gmul + gadd (a nil dy counts as 0, a nil
// gmul as 1, a nil gadd as 0) and u = x*scale + shift, it sets
// dz = g * act'(u) and adds the column sums of dz to sdz and of dz*x to
// sdzx. With swish, a sig that is not nil holds the sigmoid of u (as
// Affine writes it). dz may be dy.
func ActGrad(dz, dy, x []float32, rows, c int, scale, shift, gmul, gadd []float32, act Act, sig, sdz, sdzx []float32) {
	n := rows * c
	dz, x, scale, shift, sdz, sdzx = dz[:n], x[:n], scale[:c], shift[:c], sdz[:c], sdzx[:c]
	if act != ActSwish {
		sig = nil
	}
	if sig != nil {
		sig = sig[:n]
	}
	if dy != nil {
		dy = dy[:n]
	}
	if gmul != nil {
		gmul = gmul[:c]
	}
	if gadd != nil {
		gadd = gadd[:c]
	}
	if useAsm && c%8 == 0 && n > 0 {
		actGradAsm(dz, dy, x, rows, c, scale, shift, gmul, gadd, act, sig, sdz, sdzx)
		return
	}
	actGradGo(dz, dy, x, rows, c, scale, shift, gmul, gadd, act, sig, sdz, sdzx)
}

func actGradGo(dz, dy, x []float32, rows, c int, scale, shift, gmul, gadd []float32, act Act, sig, sdz, sdzx []float32) {
	for r := 0; r < rows; r++ {
		xr, dr := x[r*c:][:c], dz[r*c:][:c]
		var gr []float32
		if dy != nil {
			gr = dy[r*c:][:c]
		}
		for j, v := range xr {
			var g float32
			if gr != nil {
				g = gr[j]
				if gmul != nil {
					g *= gmul[j]
				}
			}
			if gadd != nil {
				g += gadd[j]
			}
			u := v*scale[j] + shift[j]
			switch act {
			case ActSwish:
				var s float32
				if sig != nil {
					s = sig[r*c+j]
				} else {
					s = Sigmoid1(u)
				}
				g *= s * (1 + u*(1-s))
			case ActReLU:
				if !(u > 0) {
					g = 0
				}
			}
			dr[j] = g
			sdz[j] += g
			sdzx[j] += g * v
		}
	}
}

// ColStats adds the column sums of x to sum and of x*x to sq.
func ColStats(x []float32, rows, c int, sum, sq []float32) {
	n := rows * c
	x, sum, sq = x[:n], sum[:c], sq[:c]
	if useAsm && c%8 == 0 && n > 0 {
		colStatsAsm(x, rows, c, sum, sq)
		return
	}
	colStatsGo(x, rows, c, sum, sq)
}

func colStatsGo(x []float32, rows, c int, sum, sq []float32) {
	for r := 0; r < rows; r++ {
		for j, v := range x[r*c:][:c] {
			sum[j] += v
			sq[j] += v * v
		}
	}
}

// ColSum adds the column sums of x to sum.
func ColSum(x []float32, rows, c int, sum []float32) {
	n := rows * c
	x, sum = x[:n], sum[:c]
	if useAsm && c%8 == 0 && n > 0 {
		colSumAsm(x, rows, c, sum)
		return
	}
	colSumGo(x, rows, c, sum)
}

func colSumGo(x []float32, rows, c int, sum []float32) {
	for r := 0; r < rows; r++ {
		for j, v := range x[r*c:][:c] {
			sum[j] += v
		}
	}
}

// ColDot adds the column sums of a*b to sum.
func ColDot(a, b []float32, rows, c int, sum []float32) {
	n := rows * c
	a, b, sum = a[:n], b[:n], sum[:c]
	if useAsm && c%8 == 0 && n > 0 {
		colDotAsm(a, b, rows, c, sum)
		return
	}
	colDotGo(a, b, rows, c, sum)
}

func colDotGo(a, b []float32, rows, c int, sum []float32) {
	for r := 0; r < rows; r++ {
		br := b[r*c:][:c]
		for j, v := range a[r*c:][:c] {
			sum[j] += v * br[j]
		}
	}
}
