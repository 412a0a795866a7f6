package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/effnas/effnas/controller/nb201"
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
