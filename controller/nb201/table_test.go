package nb201

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// table returns the built-in table.
func table(t testing.TB) *Table {
	t.Helper()
	tab, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// TestEmbedded: the built-in table is nb201.csv beside this file,
// unchanged (the published table, see README.md); Load reads the same
// file into the same table; every call of Embedded gets a table of its own.
func TestEmbedded(t *testing.T) {
	const want = "ca3b64a1c20f9805600e5497e1438fc4d74c80d77d6d5c2e3388d72e68d655e9"
	if got := fmt.Sprintf("%x", sha256.Sum256([]byte(embeddedCSV))); got != want {
		t.Errorf("the built-in table has SHA-256 %s, want %s (the copy in README.md)", got, want)
	}
	a, b := table(t), table(t)
	fromFile, err := Load("nb201.csv")
	if err != nil {
		t.Fatal(err)
	}
	if *a != *fromFile {
		t.Error("Embedded and Load(\"nb201.csv\") give different tables")
	}
	c, _ := a.Lookup([]int{0, 0, 0, 0, 0, 0})
	c.Test[CIFAR10] = 100
	if d, _ := b.Lookup([]int{0, 0, 0, 0, 0, 0}); d.Test[CIFAR10] == 100 {
		t.Error("a change to one Embedded table shows in another")
	}
}

func TestLoad(t *testing.T) {
	tab := table(t)
	// Row 1 of the file: index 1, ops_idx 334131.
	c, err := tab.Lookup([]int{3, 3, 4, 1, 3, 1})
	if err != nil {
		t.Fatal(err)
	}
	if c.Index != 1 || c.Valid[CIFAR10] != 82.834 || c.Test[CIFAR10] != 93.66 || c.Valid[CIFAR100] != 57.8 || c.Test[ImageNet16] != 44.0333 || c.MFLOPs != 116.692672 {
		t.Errorf("cell 334131 = %+v, want index 1, c10 valid 82.834 test 93.66, c100 valid 57.8, in16 test 44.0333, 116.692672 MFLOPs", c)
	}
	if !strings.HasPrefix(c.Arch, "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|") {
		t.Errorf("cell 334131 arch = %q", c.Arch)
	}
	for d, want := range map[Dataset]float64{CIFAR10: 94.3733, CIFAR100: 73.5133, ImageNet16: 47.3111} {
		if got := tab.Best(d); got != want {
			t.Errorf("Best(%s) = %g, want %g", d, got, want)
		}
	}
	indices := map[int]bool{}
	for i := range tab.cells {
		indices[tab.cells[i].Index] = true
	}
	if len(indices) != Cells {
		t.Errorf("%d distinct benchmark indices, want %d", len(indices), Cells)
	}
	if _, err := tab.Lookup([]int{0, 0, 0, 0, 0, 5}); err == nil {
		t.Error("Lookup accepted operation 5")
	}
	if _, err := tab.Lookup([]int{0}); err == nil {
		t.Error("Lookup accepted one edge")
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.csv"))
	if err == nil || !strings.Contains(err.Error(), "open NAS-Bench-201 table") {
		t.Errorf("Load(missing) = %v, want an open error", err)
	}
}

const header = "index,arch_str,ops_idx,c10_valid12,c10_test200,c100_valid12,c100_test200,in16_valid12,in16_test200,flops_c10_M,params_c10_M\n"

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name, csv, want string
	}{
		{"empty", "", "empty file"},
		{"missing column", "index,arch_str\n", `no column "ops_idx"`},
		{"short ops", header + "0,x,12345,1,1,1,1,1,1,1,1\n", `ops_idx "12345" has 5 digits`},
		{"bad digit", header + "0,x,123456,1,1,1,1,1,1,1,1\n", `digit '5'`},
		{"bad index", header + "a,x,000000,1,1,1,1,1,1,1,1\n", `index "a"`},
		{"bad number", header + "0,x,000000,1,x,1,1,1,1,1,1\n", `c10_test200 "x" is not a non-negative number`},
		{"not a percentage", header + "0,x,000000,101,1,1,1,1,1,1,1\n", `c10_valid12 "101" is not a percentage`},
		{"duplicate", header + "0,x,000000,1,1,1,1,1,1,1,1\n1,x,000000,1,1,1,1,1,1,1,1\n", "ops_idx 000000 appears twice"},
		{"too few", header + "0,x,000000,1,1,1,1,1,1,1,1\n", "table has 1 cells; NAS-Bench-201 has 15625"},
		{"ragged", header + "0,x\n", "wrong number of fields"},
	}
	for _, tt := range tests {
		_, err := Read(strings.NewReader(tt.csv))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Read error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestParseDataset(t *testing.T) {
	for i, n := range DatasetNames {
		if d, err := ParseDataset(n); err != nil || d != Dataset(i) || d.String() != n {
			t.Errorf("ParseDataset(%q) = %v, %v", n, d, err)
		}
	}
	if _, err := ParseDataset("mnist"); err == nil || !strings.Contains(err.Error(), "valid datasets are cifar10, cifar100, imagenet16") {
		t.Errorf("ParseDataset(mnist) error = %v", err)
	}
}

// TestConnected: hand-made cells, then the whole table, where the rule must
// pick exactly the cells the benchmark scores at chance on every dataset
// (CIFAR-10 10%, CIFAR-100 1%, ImageNet16-120 1/120) and none other.
func TestConnected(t *testing.T) {
	tests := []struct {
		ops  [Edges]int // 0->1, 0->2, 1->2, 0->3, 1->3, 2->3
		want bool
	}{
		{[Edges]int{0, 0, 0, 0, 0, 0}, false},
		{[Edges]int{0, 0, 0, 1, 0, 0}, true},  // 0->3
		{[Edges]int{3, 0, 0, 0, 2, 0}, true},  // 0->1->3
		{[Edges]int{0, 0, 0, 0, 2, 4}, false}, // 1->3 and 2->3, but nothing reaches 1 or 2
		{[Edges]int{0, 4, 0, 0, 0, 1}, true},  // 0->2->3
		{[Edges]int{1, 0, 3, 0, 0, 1}, true},  // 0->1->2->3
		{[Edges]int{1, 0, 3, 0, 0, 0}, false}, // 0->1->2, nothing into 3
		{[Edges]int{0, 0, 3, 0, 0, 1}, false}, // 1->2->3, nothing out of 0
	}
	for _, tt := range tests {
		c := Cell{Ops: tt.ops}
		if got := c.Connected(); got != tt.want {
			t.Errorf("cell %v: Connected() = %v, want %v", tt.ops, got, tt.want)
		}
	}

	tab := table(t)
	all := tab.All()
	if len(all) != Cells {
		t.Fatalf("All() has %d cells, want %d", len(all), Cells)
	}
	disconnected := 0
	for i, c := range all {
		if want, _ := tab.Lookup(c.Ops[:]); want.Index != c.Index {
			t.Fatalf("All()[%d] is cell %v of index %d, but that cell has index %d", i, c.Ops, c.Index, want.Index)
		}
		chance := c.Test[CIFAR10] == 10 && c.Test[CIFAR100] == 1 && c.Test[ImageNet16] == 0.8333 &&
			c.Valid[CIFAR10] == 9.712 && c.Valid[CIFAR100] == 1 && c.Valid[ImageNet16] == 0.8333
		if c.Connected() == chance {
			t.Errorf("cell %s: Connected() = %v, but its accuracies are %v (valid) and %v (test)", c.Arch, c.Connected(), c.Valid, c.Test)
		}
		if !c.Connected() {
			disconnected++
		}
	}
	if disconnected != 341 {
		t.Errorf("%d cells are not connected, want 341", disconnected)
	}
	if CIFAR100.ValidColumn() != "c100_valid12" || ImageNet16.TestColumn() != "in16_test200" || CIFAR10.TestColumn() != "c10_test200" {
		t.Errorf("columns: %s %s %s", CIFAR100.ValidColumn(), ImageNet16.TestColumn(), CIFAR10.TestColumn())
	}
}

func FuzzRead(f *testing.F) {
	f.Add(header + "0,x,000000,1,1,1,1,1,1,1,1\n")
	f.Add(header + "0,x,444444,100,0,1e3,1,1,1,1,1\n")
	f.Add("ops_idx\n000000\n")
	f.Fuzz(func(t *testing.T, s string) {
		tab, err := Read(strings.NewReader(s))
		if err == nil && tab == nil {
			t.Fatal("Read returned neither a table nor an error")
		}
	})
}
