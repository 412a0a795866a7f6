package search

import (
	"cmp"
	"math"
	"slices"
)

// MeanStd returns the mean and the sample standard deviation (n-1; 0 for
// fewer than two values).
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

func finite(xs []float64) []float64 {
	out := []float64{}
	for _, x := range xs {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}

// pairwise returns the mean Kendall tau-b and Spearman rho over every pair
// of k seeds' columns (0 with fewer than two seeds).
func pairwise(k int, col func(int) []float64) (tau, rho float64) {
	n := 0
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			a, b := col(i), col(j)
			tau += KendallTauB(a, b)
			rho += Spearman(a, b)
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return tau / float64(n), rho / float64(n)
}

// KendallTauB is Kendall's rank correlation with the tau-b correction for
// ties; 0 when either side is constant or there are fewer than 2 values.
func KendallTauB(x, y []float64) float64 {
	var concordant, discordant, tx, ty float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			a, b := x[i]-x[j], y[i]-y[j]
			switch {
			case a == 0 && b == 0:
			case a == 0:
				tx++
			case b == 0:
				ty++
			case (a > 0) == (b > 0):
				concordant++
			default:
				discordant++
			}
		}
	}
	den := math.Sqrt((concordant + discordant + tx) * (concordant + discordant + ty))
	if den == 0 {
		return 0
	}
	return (concordant - discordant) / den
}

// Spearman is Spearman's rank correlation: Pearson's over ranks, ties
// given their mean rank.
func Spearman(x, y []float64) float64 {
	return pearson(ranks(x), ranks(y))
}

func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(x[a], x[b]) })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

func pearson(x, y []float64) float64 {
	mx, _ := MeanStd(x)
	my, _ := MeanStd(y)
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}
