package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestTrainCommandJSON(t *testing.T) {
	out, stderr, err := runTrainCmd(t, "train", "--blocks", "r1_k3_s11_e1_i32_o16_se0.25 r1_k3_s22_e3_i16_o24", "--res", "16",
		"--train-size", "256", "--val-size", "64", "--test-size", "64", "--epochs", "1", "--batch", "32", "--threads", "1", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	acc, ok := r["accuracy"].(float64)
	if !ok || acc < 0 || acc > 1 {
		t.Errorf("accuracy = %v, want a number in [0, 1]", r["accuracy"])
	}
	for _, k := range []string{"val_accuracy", "loss", "seconds", "params", "flops"} {
		if _, ok := r[k].(float64); !ok {
			t.Errorf("%s missing from %s", k, out)
		}
	}
	for _, k := range []string{"images_per_second", "eval_images_per_second", "calib_images_per_second"} {
		if v, ok := r[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a speed", k, r[k])
		}
	}
	if r["steps"].(float64) != 8 || r["in_channels"].(float64) != 1 || r["classes"].(float64) != 10 {
		t.Errorf("steps/in_channels/classes wrong in %s", out)
	}
	if !strings.Contains(stderr, "step 8/8") {
		t.Errorf("no progress lines on stderr:\n%s", stderr)
	}
}

func TestTrainCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--epochs", "0"}, "--epochs 0"},
		{[]string{"train", "--batch", "-3"}, "--batch -3"},
		{[]string{"train", "--threads", "0"}, "--threads 0"},
		{[]string{"train", "--optimizer", "sgdd"}, `optimizer "sgdd"`},
		{[]string{"train", "--lr", "-1"}, "--lr -1"},
		{[]string{"train", "--epochs", "100000"}, "epochs 100000"},
		{[]string{"train", "--width", "-1"}, "--width -1"},
		{[]string{"train", "--res", "5000"}, "--res 5000"},
		{[]string{"train", "--blocks", "x"}, "--blocks"},
		{[]string{"train", "--train-size", "-5"}, "-5"},
	} {
		_, _, err := runTrainCmd(t, c.args...)
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("effnas %s: err = %v, want a usage error containing %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	_, _, err := runTrainCmd(t, "train", "--dataset", "/nonexistent/data", "--epochs", "1")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/data") {
		t.Errorf("missing dataset: err = %v, want one naming the path", err)
	}
}
