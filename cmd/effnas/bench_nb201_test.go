package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/effnas/effnas/controller/nb201"
	"github.com/effnas/effnas/search"
)

// TestBenchNB201JSON runs the built-in table from a directory far from the
// repository: no --table and no file are needed.
func TestBenchNB201JSON(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	args := []string{"--dataset", "cifar100", "--controller", "reinforce", "--samples", "50", "--runs", "10", "--seed", "4", "--json"}
	if err := Run(t.Context(), env, append([]string{"bench", "nb201"}, args...)); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"mean_test", "std_test", "mean_valid", "controller", "dataset", "samples", "runs", "best_possible"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON output has no %q: %s", k, out.String())
		}
	}
	if got["controller"] != "reinforce" || got["dataset"] != "cifar100" || got["samples"] != 50.0 || got["runs"] != 10.0 || got["best_possible"] != 73.5133 {
		t.Errorf("JSON output = %s", out.String())
	}
	if m := got["mean_test"].(float64); m < 65 || m > 73.5133 {
		t.Errorf("mean_test = %g, want a CIFAR-100 accuracy between 65 and the best cell's 73.51", m)
	}

	// The same command is reproducible, and the text output says the same.
	var again bytes.Buffer
	if err := runBenchNB201(t.Context(), &Env{Stdout: &again, Stderr: &errb}, args); err != nil {
		t.Fatal(err)
	}
	if again.String() != out.String() {
		t.Errorf("second run printed\n%s\nfirst\n%s", again.String(), out.String())
	}
	var text bytes.Buffer
	if err := runBenchNB201(t.Context(), &Env{Stdout: &text, Stderr: &errb}, args[:len(args)-1]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "reinforce on NAS-Bench-201 cifar100, 50 proposals x 10 runs (seeds 4..13)") {
		t.Errorf("text output = %q", text.String())
	}
}

func TestBenchNB201BadFlags(t *testing.T) {
	table := "/nonexistent/nb201.csv"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--table", table, "--dataset", "mnist"}, `--dataset: unknown dataset "mnist": valid datasets are cifar10, cifar100, imagenet16`},
		{[]string{"--table", table, "--controller", "bohb"}, `--controller "bohb" is unknown: valid controllers are random, evolution, reinforce`},
		{[]string{"--table", table, "--samples", "0"}, "--samples 0 is out of range: give 1 to 15625"},
		{[]string{"--table", table, "--samples", "20000"}, "--samples 20000 is out of range"},
		{[]string{"--table", table, "--runs", "-1"}, "--runs -1 is out of range"},
		{[]string{"--table", table, "--workers", "-1"}, "--workers -1 is negative"},
		{[]string{"--table", table, "--population", "4", "--tournament", "5"}, "--tournament 5 is out of range: give 1 to the population (4)"},
		{[]string{"--table", table, "--lr", "0"}, "--lr 0 is out of range"},
		{[]string{"--table", table, "--baseline-decay", "1"}, "--baseline-decay 1 is out of range"},
		{[]string{"--table", table, "--entropy", "-1"}, "--entropy -1 is out of range"},
		{[]string{"--table", table, "--seed", "-3"}, `invalid value "-3" for flag -seed`},
		{[]string{"--table", table, "extra"}, `unexpected argument "extra"`},
		{[]string{"--table", table, "--agreement", "--controller", "random"}, "--controller is for a controller's search: --agreement runs none, so leave --controller out"},
		{[]string{"--table", table, "--agreement", "--runs", "10"}, "--runs is for a controller's search"},
		{[]string{"--table", table, "--agreement", "--dataset", "mnist"}, `--dataset: unknown dataset "mnist"`},
		{[]string{"--table", table, "--agreement", "--panel-size", "1"}, "--panel-size 1 is out of range: give 2 to 1000 cells"},
		{[]string{"--table", table, "--agreement", "--panels", "1"}, "--panels 1 is out of range: give at least 2"},
		{[]string{"--table", table, "--agreement", "--top", "12"}, "--top 12 is out of range: give from the panel size (13) to 15625"},
		{[]string{"--table", table, "--agreement", "--top", "15626"}, "--top 15626 is out of range"},
		{[]string{"--table", table, "--panel-size", "13"}, "--panel-size is for --agreement: give --agreement too, or leave --panel-size out"},
		{[]string{"--table", table, "--top", "100"}, "--top is for --agreement"},
	}
	for _, tt := range tests {
		var errb bytes.Buffer
		err := runBenchNB201(t.Context(), &Env{Stdout: &errb, Stderr: &errb}, tt.args)
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("bench nb201 %q: error = %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
	// Through the dispatcher, a bad flag exits with a usage error too.
	err := Run(t.Context(), &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}, []string{"bench", "nb201", "--runs", "0", "--table", table})
	var u *usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--runs 0 is out of range") {
		t.Errorf("effnas bench nb201 --runs 0: error = %v, want a usage error", err)
	}
	// A missing table is not a usage error but names the file.
	err = runBenchNB201(t.Context(), &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}, []string{"--table", table})
	if err == nil || errors.As(err, &u) || !strings.Contains(err.Error(), table) {
		t.Errorf("missing table: error = %v, want one naming %s", err, table)
	}
}

// TestBenchNB201Table: --table reads another table instead of the built-in
// one: here a made-up one where every cell scores 50 but the cell 444444,
// which scores 60.
func TestBenchNB201Table(t *testing.T) {
	var b strings.Builder
	b.WriteString("index,arch_str,ops_idx,c10_valid12,c10_test200,c100_valid12,c100_test200,in16_valid12,in16_test200,flops_c10_M,params_c10_M\n")
	for i := range nb201.Cells {
		ops := fmt.Sprintf("%06s", strconv.FormatInt(int64(i), nb201.Ops))
		score := 50
		if ops == "444444" {
			score = 60
		}
		fmt.Fprintf(&b, "%d,cell%d,%s,%d,%d,1,1,1,1,1,1\n", i, i, ops, score, score)
	}
	table := filepath.Join(t.TempDir(), "made-up.csv")
	if err := os.WriteFile(table, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	args := []string{"--table", table, "--controller", "random", "--samples", "10", "--runs", "2", "--json"}
	if err := runBenchNB201(t.Context(), &Env{Stdout: &out, Stderr: &bytes.Buffer{}}, args); err != nil {
		t.Fatal(err)
	}
	var got struct {
		MeanTest     float64 `json:"mean_test"`
		MeanValid    float64 `json:"mean_valid"`
		BestPossible float64 `json:"best_possible"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if got.BestPossible != 60 || got.MeanTest < 50 || got.MeanTest > 60 || got.MeanValid != got.MeanTest {
		t.Errorf("on the made-up table: %s; want best possible 60, test and valid the same, 50 to 60", out.String())
	}
}

// writeAgreementTable writes a made-up table whose agreements are known by
// hand, and returns its path. Cell i's rank on each dataset comes from
// i*prime mod 15625 (a permutation), so that neither the file's order nor the
// benchmark index gives the ranking away.
//
//   - cifar10: the 15,284 connected cells agree perfectly (valid and test
//     rise together); the 341 disconnected ones agree among themselves but
//     have the best valid and the worst test of all.
//   - cifar100: reversed everywhere: the best valid is the worst test.
//   - imagenet16: r is the rank by test (0 best). The top 1,000 agree but
//     for 500 swapped neighbours (r and r^1); the other 14,625 are reversed
//     and all have a better valid than the top 1,000.
func writeAgreementTable(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("index,arch_str,ops_idx,c10_valid12,c10_test200,c100_valid12,c100_test200,in16_valid12,in16_test200,flops_c10_M,params_c10_M\n")
	disconnected := 0
	for i := range nb201.Cells {
		ops := fmt.Sprintf("%06s", strconv.FormatInt(int64(i), nb201.Ops))
		var c nb201.Cell
		for e := range nb201.Edges {
			c.Ops[e] = int(ops[e] - '0')
		}
		var v, s [3]float64
		if q := float64(i * 7919 % nb201.Cells); c.Connected() {
			v[0], s[0] = 30+q*0.003, 40+q*0.003
		} else {
			j := float64(disconnected)
			v[0], s[0] = 80+j*0.01, 20+j*0.01
			disconnected++
		}
		q := float64(i * 4099 % nb201.Cells)
		v[1], s[1] = 10+q*0.004, 90-q*0.004
		r := i * 3001 % nb201.Cells
		s[2] = 90 - float64(r)*0.004
		if r < 1000 {
			v[2] = 20 - float64(r^1)*0.001
		} else {
			v[2] = 21 + float64(r-1000)*0.001
		}
		fmt.Fprintf(&b, "%d,cell%d,%s,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,1,1\n", nb201.Cells-1-i, i, ops, v[0], s[0], v[1], s[1], v[2], s[2])
	}
	path := filepath.Join(t.TempDir(), "agreement.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBenchNB201Agreement runs --agreement on writeAgreementTable's table,
// whose figures are known by hand. Pairs of n cells: C(n,2) = n(n-1)/2, with
// C(15625,2) = 122,062,500; no two cells tie, so tau-b is (concordant -
// discordant) / C(n,2), and a random panel's mean tau is the whole set's.
// Panels of 2 keep it exact: each panel's tau is +1 or -1, so the sd (n-1)
// of n panels is sqrt(n/(n-1) (1-mean^2)), whichever panels are drawn, and
// a panel that repeated a cell would have tau 0 and break that. The top is
// 3 cells, which imagenet16 makes a hand calculation.
func TestBenchNB201Agreement(t *testing.T) {
	table := writeAgreementTable(t)
	var out bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &bytes.Buffer{}}
	args := []string{"bench", "nb201", "--agreement", "--table", table, "--panel-size", "2", "--panels", "4000", "--top", "3", "--seed", "7", "--json"}
	if err := Run(t.Context(), env, args); err != nil {
		t.Fatal(err)
	}
	var got []agreement
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(got) != 3 {
		t.Fatalf("%d datasets, want 3:\n%s", len(got), out.String())
	}
	// cifar10, whole space: the connected pairs, C(15284,2) = 116,792,686, and
	// the disconnected ones, C(341,2) = 57,970, are concordant; the 15284 x 341
	// = 5,211,844 pairs across are discordant.
	c10Whole := (116792686.0 + 57970 - 5211844) / 122062500 // 0.914604
	// imagenet16, whole space: within the top 1,000, 500 discordant pairs
	// of C(1000,2) = 499,500; 1000 x 14625 = 14,625,000 discordant across and
	// C(14625,2) = 106,938,000 discordant within the others.
	in16Whole := (499500.0 - 2*500 - 14625000 - 106938000) / 122062500 // -0.991824
	// imagenet16, top 3: ranks 0 and 1 are swapped, (0,2) and (1,2) agree.
	in16Top := (2.0 - 1) / 3
	// A mean of 4000 panels of 2 is within 0.025 of the whole set's tau:
	// 4 sd for cifar10 (a pair is discordant with odds 0.043, sd 0.006), and
	// more for the others.
	const exact, sampled = 1e-9, 0.025
	tests := []struct {
		name      string
		got       float64
		want, tol float64
	}{
		{"cifar10 whole", got[0].WholeTau, c10Whole, exact},
		{"cifar10 whole panels", got[0].WholePanelTauMean, c10Whole, sampled},
		{"cifar10 connected", got[0].ConnectedTau, 1, exact},
		{"cifar10 connected panels", got[0].ConnectedPanelTauMean, 1, exact},
		{"cifar10 top", got[0].TopTau, 1, exact},
		{"cifar10 top panels", got[0].TopPanelTauMean, 1, exact},
		{"cifar100 whole", got[1].WholeTau, -1, exact},
		{"cifar100 whole panels", got[1].WholePanelTauMean, -1, exact},
		{"cifar100 connected", got[1].ConnectedTau, -1, exact},
		{"cifar100 connected panels", got[1].ConnectedPanelTauMean, -1, exact},
		{"cifar100 top", got[1].TopTau, -1, exact},
		{"cifar100 top panels", got[1].TopPanelTauMean, -1, exact},
		{"imagenet16 whole", got[2].WholeTau, in16Whole, exact},
		{"imagenet16 whole panels", got[2].WholePanelTauMean, in16Whole, sampled},
		{"imagenet16 connected panels", got[2].ConnectedPanelTauMean, got[2].ConnectedTau, sampled},
		{"imagenet16 top", got[2].TopTau, in16Top, exact},
		{"imagenet16 top panels", got[2].TopPanelTauMean, in16Top, sampled},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > tt.tol {
			t.Errorf("%s = %.6f, want %.6f ± %g", tt.name, tt.got, tt.want, tt.tol)
		}
	}
	sdOfSigns := func(mean float64) float64 { return math.Sqrt(4000.0 / 3999 * max(0, 1-mean*mean)) }
	for i, a := range got {
		d := nb201.Dataset(i)
		if a.Dataset != d.String() || a.Short != d.ValidColumn() || a.Long != d.TestColumn() || a.Cells != nb201.Cells || a.Disconnected != 341 ||
			a.PanelSize != 2 || a.Panels != 4000 || a.Seed != 7 || a.Top != 3 || a.TopTiesOut != 0 {
			t.Errorf("dataset %d: %+v", i, a)
		}
		for _, p := range []struct {
			name     string
			mean, sd float64
		}{
			{"whole", a.WholePanelTauMean, a.WholePanelTauSD},
			{"connected", a.ConnectedPanelTauMean, a.ConnectedPanelTauSD},
			{"top", a.TopPanelTauMean, a.TopPanelTauSD},
		} {
			if math.Abs(p.sd-sdOfSigns(p.mean)) > exact {
				t.Errorf("%s, %s panels of 2: mean %g, sd %g; want sd %g (n-1, of +1s and -1s)", a.Dataset, p.name, p.mean, p.sd, sdOfSigns(p.mean))
			}
		}
	}
	if got[0].WholePanelTauSD < 0.1 || got[2].TopPanelTauSD < 0.5 {
		t.Errorf("panel sds %g (cifar10, whole) and %g (imagenet16, top): want spread panels, about 0.4 and 0.94", got[0].WholePanelTauSD, got[2].TopPanelTauSD)
	}
	if got[2].TopMinTest != 90-2*0.004 {
		t.Errorf("imagenet16: top 3 down to test %g, want %g", got[2].TopMinTest, 90-2*0.004)
	}

	// --seed 7 seeds the panels.
	tab, err := nb201.Load(table)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := bestByTest(tab.All(), nb201.ImageNet16, 3)
	mean := func(seed uint64) float64 {
		m, _ := search.MeanStd(panelTaus(top, nb201.ImageNet16, 2, 4000, rand.New(rand.NewPCG(seed, streamTop))))
		return m
	}
	if got[2].TopPanelTauMean != mean(7) || mean(7) == mean(0) {
		t.Errorf("imagenet16 top panels: %g; seed 7 gives %g, seed 0 %g", got[2].TopPanelTauMean, mean(7), mean(0))
	}

	// The text says the same, with the notes on what was counted.
	var text bytes.Buffer
	if err := printAgreements(&text, got, false); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(text.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = strings.Join(f, " ")
		}
	}
	for _, want := range []string{
		fmt.Sprintf("cifar10 c10_valid12 vs c10_test200 %.3f %.3f ± %.3f 1.000 1.000 ± 0.000 1.000 1.000 ± 0.000", c10Whole, got[0].WholePanelTauMean, got[0].WholePanelTauSD),
		"cifar100 c100_valid12 vs c100_test200 -1.000 -1.000 ± 0.000 -1.000 -1.000 ± 0.000 -1.000 -1.000 ± 0.000",
		fmt.Sprintf("imagenet16 in16_valid12 vs in16_test200 %.3f %.3f ± %.3f %.3f %.3f ± %.3f %.3f %.3f ± %.3f", in16Whole, got[2].WholePanelTauMean, got[2].WholePanelTauSD,
			got[2].ConnectedTau, got[2].ConnectedPanelTauMean, got[2].ConnectedPanelTauSD, in16Top, got[2].TopPanelTauMean, got[2].TopPanelTauSD),
		"panels: 4000 per figure, 2 distinct cells each, seed 7; mean ± sd (n-1) over the panels",
		"dataset columns whole space panels of 2 connected panels of 2 top 3 panels of 2",
		"whole space: all 15625 cells, with the 341 that have no path from input to output (the benchmark scores them at chance);",
		"imagenet16: top 3 down to test 89.9920",
	} {
		if rows[strings.Fields(want)[0]] != want {
			t.Errorf("text output has no line %q:\n%s", want, text.String())
		}
	}

	// The defaults are bench proxy's panel, 1,000 panels, the top 1,000.
	var help bytes.Buffer
	if err := runBenchNB201(t.Context(), &Env{Stdout: &help, Stderr: &help}, []string{"-h"}); !errors.Is(err, errSilent) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"-panel-size int\n", "(default 13)", "-panels int\n", "-top n\n"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h has no %q:\n%s", want, help.String())
		}
	}
	if defaultAgreementPanel != 13 || defaultAgreementPanels != 1000 || defaultAgreementTop != 1000 {
		t.Errorf("defaults: panels of %d, %d panels, top %d; want 13, 1000, 1000", defaultAgreementPanel, defaultAgreementPanels, defaultAgreementTop)
	}
}

// TestBestByTest: the best cells by test accuracy on the dataset asked
// for, ties at the boundary going to the lower benchmark index.
func TestBestByTest(t *testing.T) {
	var cells []*nb201.Cell
	for i, test := range []float64{5, 7, 9, 7, 3, 7} { // indices 10, 9, ..., 5
		c := &nb201.Cell{Index: 10 - i}
		c.Test[nb201.CIFAR100] = test
		c.Valid[nb201.CIFAR100] = 10 - test // a ranking by valid would pick others
		c.Test[nb201.CIFAR10] = float64(i)  // and one on CIFAR-10 others again
		cells = append(cells, c)
	}
	best, tiesOut := bestByTest(cells, nb201.CIFAR100, 3)
	var idx []int
	for _, c := range best {
		idx = append(idx, c.Index)
	}
	if !slices.Equal(idx, []int{8, 5, 7}) || tiesOut != 1 {
		t.Errorf("best 3 = indices %v, %d ties left out; want [8 5 7] (test 9, 7, 7), 1 tie (index 9) left out", idx, tiesOut)
	}
}

// TestDrawPanel: panels hold distinct cells, every cell is as likely to be
// drawn, a panel of the whole pool is all of it, and the seed decides.
func TestDrawPanel(t *testing.T) {
	pool := make([]*nb201.Cell, 20)
	for i := range pool {
		pool[i] = &nb201.Cell{Index: i}
	}
	r := rand.New(rand.NewPCG(1, 2))
	count := make([]int, len(pool))
	const draws = 4000
	for range draws {
		seen := map[int]bool{}
		for _, c := range drawPanel(pool, 13, r) {
			if seen[c.Index] {
				t.Fatalf("cell %d twice in a panel", c.Index)
			}
			seen[c.Index] = true
			count[c.Index]++
		}
	}
	// Each cell is in a panel with odds 13/20: 2600 of 4000, sd 30.
	for i, n := range count {
		if n < 2600-150 || n > 2600+150 {
			t.Errorf("cell %d in %d of %d panels, want 2600 ± 150", i, n, draws)
		}
	}
	// From a fresh pool of three, each of the three pairs has odds 1/3:
	// 3000 of 9000, sd 45. (Swapping with any position, not only a later one,
	// gives 4000, 2000 and 3000.)
	pairs := map[[2]int]int{}
	for range 9000 {
		p := drawPanel([]*nb201.Cell{{Index: 0}, {Index: 1}, {Index: 2}}, 2, r)
		pairs[[2]int{min(p[0].Index, p[1].Index), max(p[0].Index, p[1].Index)}]++
	}
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		if n := pairs[pair]; n < 3000-250 || n > 3000+250 {
			t.Errorf("cells %v drawn together %d times of 9000, want 3000 ± 250", pair, n)
		}
	}
	if p := drawPanel(pool, 20, r); len(p) != 20 || len(slices.CompactFunc(slices.SortedFunc(slices.Values(p), func(a, b *nb201.Cell) int { return a.Index - b.Index }), func(a, b *nb201.Cell) bool { return a == b })) != 20 {
		t.Error("a panel of the whole pool misses a cell")
	}
	taus := func(seed uint64) []float64 {
		cells := make([]*nb201.Cell, 40)
		for i := range cells {
			cells[i] = &nb201.Cell{Index: i}
			cells[i].Valid[0], cells[i].Test[0] = float64(i%7), float64(i%5)
		}
		return panelTaus(cells, nb201.CIFAR10, 13, 20, rand.New(rand.NewPCG(seed, streamWhole)))
	}
	if !slices.Equal(taus(3), taus(3)) || slices.Equal(taus(3), taus(4)) {
		t.Error("panels are not decided by the seed alone")
	}
}
