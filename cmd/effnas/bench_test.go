package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func runTrainCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, args)
	return out.String(), errb.String(), err
}

func TestBenchTrainJSON(t *testing.T) {
	out, _, err := runTrainCmd(t, "bench", "train", "--blocks", "r1_k3_s11_e1_i32_o16_se0.25 r1_k5_s22_e6_i16_o24", "--res", "16",
		"--batch", "8", "--steps", "2", "--threads", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	for _, k := range []string{"train_images_per_second", "step_seconds", "gflops", "params", "flops", "peak_rss_bytes"} {
		v, ok := r[k].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, r[k])
		}
	}
	if r["batch"].(float64) != 8 || r["resolution"].(float64) != 16 || r["in_channels"].(float64) != 1 || r["classes"].(float64) != 10 {
		t.Errorf("report does not echo the settings: %s", out)
	}
}

func TestBenchTrainText(t *testing.T) {
	out, _, err := runTrainCmd(t, "bench", "train", "--blocks", "r1_k3_s11_e1_i32_o16", "--res", "8", "--batch", "4", "--steps", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"images/s", "GFLOP/s", "parameters", "MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "bench needs a benchmark"},
		{[]string{"bench", "nope"}, `unknown benchmark "nope"`},
		{[]string{"bench", "train", "--batch", "0"}, "--batch 0"},
		{[]string{"bench", "train", "--steps", "-1"}, "--steps -1"},
		{[]string{"bench", "train", "--threads", "0"}, "--threads 0"},
		{[]string{"bench", "train", "--width", "0"}, "--width 0"},
		{[]string{"bench", "train", "--res", "2"}, "--res 2"},
		{[]string{"bench", "train", "--in-ch", "0"}, "--in-ch 0"},
		{[]string{"bench", "train", "--classes", "1"}, "--classes 1"},
		{[]string{"bench", "train", "--blocks", "r1_k3"}, "--blocks"},
		{[]string{"bench", "train", "--model", "efficientnet-b9"}, "--model"},
		{[]string{"bench", "train", "--model", "efficientnet-b0", "--blocks", "r1_k3_s11_e1_i32_o16"}, "alternatives"},
		{[]string{"bench", "train", "extra"}, "unexpected argument"},
	} {
		_, _, err := runTrainCmd(t, c.args...)
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("effnas %s: err = %v, want a usage error containing %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestBenchTrainProfile: --profile adds a table (text) or a profile array
// (JSON) whose shares add up to the whole step, and the JSON always has the
// step's fraction of the measured machine peak.
func TestBenchTrainProfile(t *testing.T) {
	args := []string{"bench", "train", "--blocks", "r1_k3_s11_e1_i32_o16_se0.25 r1_k5_s22_e6_i16_o24_se0.25", "--res", "16",
		"--batch", "8", "--steps", "2", "--threads", "1", "--profile"}
	out, _, err := runTrainCmd(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		GFLOPs       float64 `json:"gflops"`
		PeakGFLOPs   float64 `json:"peak_gflops"`
		PeakFraction float64 `json:"peak_fraction"`
		Profile      []struct {
			Kind        string  `json:"kind"`
			StepSeconds float64 `json:"step_seconds"`
			Share       float64 `json:"share"`
			GFLOPs      float64 `json:"gflops"`
		} `json:"profile"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if r.PeakGFLOPs <= 0 || r.PeakFraction <= 0 || math.Abs(r.PeakFraction-r.GFLOPs/r.PeakGFLOPs) > 1e-9 {
		t.Errorf("peak_gflops %g, peak_fraction %g for %g GFLOP/s", r.PeakGFLOPs, r.PeakFraction, r.GFLOPs)
	}
	kinds := map[string]bool{}
	var share float64
	for _, e := range r.Profile {
		kinds[e.Kind] = true
		share += e.Share
	}
	for _, k := range []string{"expand 1x1", "depthwise", "project 1x1", "SE", "BN and activation", "stem", "head 1x1",
		"pooling", "classifier and loss", "optimizer update", "gorgonia overhead"} {
		if !kinds[k] {
			t.Errorf("profile lacks %q: %s", k, out)
		}
	}
	if math.Abs(share-1) > 0.01 {
		t.Errorf("profile shares add up to %g, want 1: %s", share, out)
	}
	text, _, err := runTrainCmd(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ms/step", "expand 1x1", "gorgonia overhead", "% of the"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}
