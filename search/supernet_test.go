package search

import (
	"slices"
	"testing"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
)

// TestWarmupPaths: at the first step every stage takes its most filters
// and layers and averages one block of each kind; past the warm-up a step
// trains its one sampled member; the draws depend only on the seed and
// the step.
func TestWarmupPaths(t *testing.T) {
	sp := space.DefaultSpace()
	dims := sp.Dims()
	first := WarmupPaths(sp, 7, 0, 100, 0.25)
	if len(first) != 3 {
		t.Fatalf("step 0: %d members, want 3 (conv, sepconv, mbconv)", len(first))
	}
	for st := 0; st < len(dims)/space.DimsPerStage; st++ {
		base := st * space.DimsPerStage
		var kinds []string
		for _, c := range first {
			if c[base+space.DimFilters] != len(dims[base+space.DimFilters].Options)-1 || c[base+space.DimLayers] != len(dims[base+space.DimLayers].Options)-1 {
				t.Errorf("step 0 stage %d: filters %d and layers %d are not the most", st, c[base+space.DimFilters], c[base+space.DimLayers])
			}
			a, err := sp.Decode(c)
			if err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, trainer.BlockKind(a.Blocks[st]))
			for d := range space.DimsPerStage {
				if d != space.DimOp && c[base+d] != first[0][base+d] {
					t.Errorf("step 0 stage %d: members differ in dimension %d", st, d)
				}
			}
		}
		slices.Sort(kinds)
		if !slices.Equal(kinds, []string{"conv", "mbconv", "sepconv"}) {
			t.Errorf("step 0 stage %d: kinds %v, want one of each", st, kinds)
		}
	}
	for i := 25; i < 100; i += 13 {
		got := WarmupPaths(sp, 7, i, 100, 0.25)
		if len(got) != 1 || !slices.Equal(got[0], SupernetSample(sp, 7, i)) {
			t.Errorf("step %d (past the warm-up): %v, want the sample %v", i, got, SupernetSample(sp, 7, i))
		}
	}
	if off := WarmupPaths(sp, 7, 0, 100, -1); len(off) != 1 || !slices.Equal(off[0], SupernetSample(sp, 7, 0)) {
		t.Errorf("warm-up off: %v, want the sample", off)
	}
	mixed := 0
	for i := range 25 {
		a, b := WarmupPaths(sp, 7, i, 100, 0.25), WarmupPaths(sp, 7, i, 100, 0.25)
		if len(a) != len(b) || !slices.EqualFunc(a, b, func(x, y space.Candidate) bool { return slices.Equal(x, y) }) {
			t.Fatalf("step %d: two draws differ", i)
		}
		if len(a) > 1 {
			mixed++
		}
	}
	if mixed < 5 || mixed == 25 {
		t.Errorf("%d of the 25 warm-up steps average kinds; want the share to fall off", mixed)
	}
}
