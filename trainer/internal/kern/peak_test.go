package kern

import "testing"

func TestPeakGFLOPs(t *testing.T) {
	p := PeakGFLOPs(1)
	t.Logf("%s: %.1f GFLOP/s on one core", PeakISA(), p)
	// Any machine this runs on does at least a multiply-add per
	// nanosecond, and none does 10,000.
	if p < 1 || p > 2e4 {
		t.Errorf("PeakGFLOPs(1) = %g, want a plausible machine peak", p)
	}
}
