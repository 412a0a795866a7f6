package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(t.Context(), &Env{Stdout: &out, Stderr: &errb}, args)
	return out.String(), err
}

// sweepDB writes a database with a search study (trials in every state)
// and a newer grid study, and returns its path and the studies.
func sweepDB(t *testing.T) (string, store.Study, store.Study) {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sweep.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	search, err := s.CreateStudy(ctx, store.Study{Name: "b0", Kind: store.KindSearch, Seed: 42, Config: json.RawMessage(`{"workers":2}`), SpaceHash: "abc123"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ps []store.Plan
	for i, k := range []string{"c0", "c1", "c2", "c3", "c4"} {
		ps = append(ps, store.Plan{Key: k, Blocks: []string{"r1_k3_s11_e1_i32_o16_se0.25"}, Params: int64(1_000_000 + i), FLOPs: int64(300_000_000 + i)})
	}
	if _, err := s.PlanTrials(ctx, search.ID, ps, nil); err != nil {
		t.Fatal(err)
	}
	tr, err := s.ClaimTrials(ctx, search.ID, store.Claim{Worker: "w", Limit: 4, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.FinishTrial(ctx, tr[0].Lease(), store.Result{Accuracy: 0.91, Reward: 0.85, Seconds: 30}))
	must(s.FinishTrial(ctx, tr[1].Lease(), store.Result{Accuracy: 0.95, Reward: 0.88, Seconds: 31}))
	must(s.FailTrial(ctx, tr[2].Lease(), "out of memory", 2))
	// tr[3] stays running; trial 4 stays pending.
	grid, err := s.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PlanTrials(ctx, grid.ID, []store.Plan{{Key: "a1.2_b1.1_g1.15", Grid: &store.GridPoint{Alpha: 1.2, Beta: 1.1, Gamma: 1.15}}}, nil); err != nil {
		t.Fatal(err)
	}
	return path, search, grid
}

func TestShowJSON(t *testing.T) {
	path, search, grid := sweepDB(t)
	before := fileSum(t, path)
	out, err := runCmd(t, "show", "--db", path, "--study", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Study struct {
			ID     int64          `json:"id"`
			Kind   string         `json:"kind"`
			Status string         `json:"status"`
			Seed   uint64         `json:"seed"`
			Config map[string]any `json:"config"`
			Counts map[string]int `json:"counts"`
			Extra  map[string]any `json:"-"`
		} `json:"study"`
		Trials []map[string]any `json:"trials"`
		Best   map[string]any   `json:"best"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("show --json printed invalid JSON: %v\n%s", err, out)
	}
	if got.Study.ID != search.ID || got.Study.Kind != "search" || got.Study.Status != "running" || got.Study.Seed != 42 || got.Study.Config["workers"] != 2.0 {
		t.Fatalf("study = %+v, want study %d, search, running, seed 42, its config", got.Study, search.ID)
	}
	if c := got.Study.Counts; c["complete"] != 2 || c["failed"] != 1 || c["running"] != 1 || c["pending"] != 1 || c["interrupted"] != 0 {
		t.Fatalf("counts %v", c)
	}
	wantStates := []string{"complete", "complete", "failed", "running", "pending"}
	if len(got.Trials) != len(wantStates) {
		t.Fatalf("%d trials, want %d", len(got.Trials), len(wantStates))
	}
	for i, tr := range got.Trials {
		for _, field := range []string{"number", "state", "key", "accuracy", "reward", "params", "flops", "blocks", "seconds", "error", "attempt"} {
			if _, ok := tr[field]; !ok {
				t.Fatalf("trial %d has no %q: %v", i, field, tr)
			}
		}
		if tr["number"] != float64(i) || tr["state"] != wantStates[i] {
			t.Fatalf("trial %d = %v, want number %d state %s", i, tr, i, wantStates[i])
		}
		if (tr["accuracy"] == nil) != (wantStates[i] != "complete") {
			t.Fatalf("trial %d accuracy %v: want a number exactly when complete", i, tr["accuracy"])
		}
	}
	if got.Trials[1]["accuracy"] != 0.95 || got.Trials[1]["params"] != 1_000_001.0 || got.Trials[1]["flops"] != 300_000_001.0 || got.Trials[2]["error"] != "out of memory" {
		t.Fatalf("trial values wrong: %v / %v", got.Trials[1], got.Trials[2])
	}
	if got.Best["number"] != 1.0 {
		t.Fatalf("best = %v, want trial 1 (reward 0.88)", got.Best)
	}

	// Default: the newest study, here the grid.
	out, err = runCmd(t, "show", "--db", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var g showJSON
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatal(err)
	}
	if g.Study.ID != grid.ID || g.Study.Kind != store.KindGrid || len(g.Trials) != 1 || *g.Trials[0].Alpha != 1.2 || g.Trials[0].State != store.TrialPending || g.Best != nil {
		t.Fatalf("default show = %+v, want the newest (grid) study with its pending point", g)
	}
	if fileSum(t, path) != before {
		t.Fatal("show changed the database file")
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestShowText(t *testing.T) {
	path, _, _ := sweepDB(t)
	out, err := runCmd(t, "show", "--db", path, "--study", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`study 1 "b0": search, running`,
		"5 trials: 2 complete, 1 running, 1 pending, 0 interrupted, 1 failed",
		"accuracy", "0.9500", "1.00M", "300.00M",
		"trial 2 failed: out of memory",
		"best: trial 1, reward 0.8800, accuracy 0.9500",
		"r1_k3_s11_e1_i32_o16_se0.25",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCmd(t, "show", "--db", path)
	if err != nil || !strings.Contains(out, "alpha") || !strings.Contains(out, "1.20") || !strings.Contains(out, "best: none yet") {
		t.Fatalf("grid show: %v\n%s", err, out)
	}
}

func TestListJSONAndText(t *testing.T) {
	path, search, grid := sweepDB(t)
	out, err := runCmd(t, "list", "--db", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got listJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(got.Studies) != 2 || got.Studies[0].ID != search.ID || got.Studies[1].ID != grid.ID ||
		got.Studies[0].Trials != 5 || got.Studies[0].Counts.Complete != 2 || *got.Studies[0].BestReward != 0.88 || got.Studies[1].BestReward != nil {
		t.Fatalf("list = %+v", got)
	}
	out, err = runCmd(t, "list", "--db", path)
	if err != nil || !strings.Contains(out, "search") || !strings.Contains(out, "grid") || !strings.Contains(out, "0.8800") {
		t.Fatalf("list text: %v\n%s", err, out)
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	s, err := sqlite.Open(t.Context(), empty, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if out, err := runCmd(t, "list", "--db", empty); err != nil || !strings.Contains(out, "no studies") {
		t.Fatalf("list of an empty database: %v %q", err, out)
	}
	if out, err := runCmd(t, "list", "--db", empty, "--json"); err != nil || !strings.Contains(out, `"studies": []`) {
		t.Fatalf("list --json of an empty database: %v %q", err, out)
	}
}

func TestShowListErrors(t *testing.T) {
	path, _, _ := sweepDB(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	notDB := filepath.Join(dir, "notes.txt")
	os.WriteFile(notDB, []byte("hello, not a database"), 0o644)
	emptyDB := filepath.Join(dir, "nostudies.db")
	s, err := sqlite.Open(t.Context(), emptyDB, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	tests := []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"show"}, false, "no database at effnas.db"}, // the default, in the test's directory: absent
		{[]string{"list"}, false, "no database at effnas.db"},
		{[]string{"show", "--db", missing}, false, "no database at " + missing},
		{[]string{"list", "--db", missing}, false, "no database at " + missing},
		{[]string{"show", "--db", notDB}, false, "does not start with the SQLite header"},
		{[]string{"show", "--db", path, "--study", "7"}, false, "--study 7: no such study in " + path + "; its studies are 1, 2"},
		{[]string{"show", "--db", path, "--study", "abc"}, true, `--study "abc": want a study id`},
		{[]string{"show", "--db", path, "--study", "0"}, true, `--study "0"`},
		{[]string{"show", "--db", path, "--bogus"}, true, "bogus"},
		{[]string{"show", "--db", emptyDB}, false, "no studies in " + emptyDB},
		{[]string{"show", "--db", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, false, "connect to PostgreSQL database \"x\" at 127.0.0.1:1"},
	}
	for _, tc := range tests {
		_, err := runCmd(t, tc.args...)
		var u *usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &u) != tc.usage {
			t.Errorf("effnas %s: error %v (usage %v), want %q (usage %v)", strings.Join(tc.args, " "), err, errors.As(err, &u), tc.want, tc.usage)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("show/list created %s", missing)
	}
	if b, _ := os.ReadFile(notDB); string(b) != "hello, not a database" {
		t.Fatal("show changed a file that is not a database")
	}
}
