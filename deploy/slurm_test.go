package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testDB is the database URL the scripts are run with.
const testDB = "postgres://effnas@db.example.org:5432/effnas?sslmode=require"

// fakeEffnas is an effnas that writes its arguments, NUL-terminated, to
// $EFFNAS_ARGS_FILE: the scripts run with it to show the command line they
// would run, after the shell's expansions.
const fakeEffnas = "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$EFFNAS_ARGS_FILE\"\n"

// runScript runs a Slurm script with bash (as sbatch would on the node,
// without Slurm) and the fake effnas, in env plus the variables given, and
// returns the arguments effnas got (nil if it did not run) and the
// script's standard error.
func runScript(t *testing.T, script string, vars ...string) ([]string, string, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "effnas"), []byte(fakeEffnas), 0o755); err != nil {
		t.Fatal(err)
	}
	argsFile := filepath.Join(dir, "args")
	script, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "EFFNAS_BIN=" + dir, "EFFNAS_ARGS_FILE=" + argsFile}, vars...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	raw, rerr := os.ReadFile(argsFile)
	if errors.Is(rerr, os.ErrNotExist) {
		return nil, stderr.String(), err
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00"), stderr.String(), err
}

// slurmScripts returns deploy/slurm's scripts.
func slurmScripts(t *testing.T) []string {
	t.Helper()
	scripts, err := filepath.Glob(filepath.Join("slurm", "*.sbatch"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no deploy/slurm/*.sbatch (err %v)", err)
	}
	return scripts
}

// sbatchOption returns the value of an #SBATCH option of a script.
func sbatchOption(t *testing.T, script, name string) string {
	t.Helper()
	raw, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^#SBATCH\s+--` + regexp.QuoteMeta(name) + `[=\s]\s*(\S+)`)
	m := re.FindAllStringSubmatch(string(raw), -1)
	if len(m) != 1 {
		t.Fatalf("%s: #SBATCH --%s given %d times; want once", script, name, len(m))
	}
	return m[0][1]
}

// slurmMemory reads sbatch's --mem: a number of megabytes, or one with a
// unit K, M, G or T (powers of 1024, as Slurm counts them).
func slurmMemory(s string) (int64, error) {
	units := map[byte]int64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
	mult := int64(1 << 20)
	if n := len(s); n > 0 {
		if u, ok := units[strings.ToUpper(s)[n-1]]; ok {
			mult, s = u, s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("--mem %q: want a positive amount such as 4352M", s)
	}
	return v * mult, nil
}

// TestSlurmScripts runs each Slurm script with a fake effnas and checks the
// command line it runs: --db is $EFFNAS_DB as given, the workers wait for
// the study the coordinator creates (EFFNAS_STUDY, default effnas-b0), and
// --cpus-per-task and --mem agree with --workers, --threads and
// --max-memory.
func TestSlurmScripts(t *testing.T) {
	for _, study := range []string{"", "fashion-1"} {
		names := map[string]string{} // the coordinator's --name, the workers' --study-name
		for _, script := range slurmScripts(t) {
			vars := []string{"EFFNAS_DB=" + testDB}
			if study != "" {
				vars = append(vars, "EFFNAS_STUDY="+study)
			}
			args, stderr, err := runScript(t, script, vars...)
			if err != nil || len(args) == 0 {
				t.Fatalf("%s: %v (effnas ran with %q)\n%s", script, err, args, stderr)
			}
			if db, n := flagValue(args, "db"); n != 1 || db != testDB {
				t.Errorf("%s: --db given %d times, as %q; want once, as $EFFNAS_DB (%s)", script, n, db, testDB)
			}
			switch args[0] {
			case "worker":
				names["worker"], _ = flagValue(args, "study-name")
				if !hasFlag(args, "until-done") {
					t.Errorf("%s: worker without --until-done: it would not end when the study does", script)
				}
			case "search", "grid":
				names["coordinator"], _ = flagValue(args, "name")
			}
			s, err := sizeOf(args)
			if err != nil {
				t.Errorf("%s: %v", script, err)
				continue
			}
			if cpus := sbatchOption(t, script, "cpus-per-task"); cpus != strconv.Itoa(s.cpus) {
				t.Errorf("%s: --cpus-per-task=%s; want --workers %d x --threads %d = %d", script, cpus, s.workers, s.threads, s.cpus)
			}
			mem, err := slurmMemory(sbatchOption(t, script, "mem"))
			if err != nil {
				t.Errorf("%s: %v", script, err)
			} else if mem < s.memory {
				t.Errorf("%s: --mem is %dM; want at least --workers x --max-memory + 256M = %dM", script, mem>>20, s.memory>>20)
			}
		}
		want := study
		if want == "" {
			want = "effnas-b0"
		}
		if names["worker"] != want || names["coordinator"] != want {
			t.Errorf("EFFNAS_STUDY=%q: the coordinator names its study %q and the workers wait for %q; want both %q", study, names["coordinator"], names["worker"], want)
		}
	}
}

// TestSlurmDatabaseUnset: a script run without EFFNAS_DB stops before
// effnas runs, with a message that names the variable.
func TestSlurmDatabaseUnset(t *testing.T) {
	for _, script := range slurmScripts(t) {
		for _, vars := range [][]string{nil, {"EFFNAS_DB="}} {
			args, stderr, err := runScript(t, script, vars...)
			if err == nil || args != nil {
				t.Errorf("%s with %q: exit %v, effnas ran with %q; want the script to stop before it", script, vars, err, args)
			}
			if !strings.Contains(stderr, "set EFFNAS_DB") {
				t.Errorf("%s with %q: stderr %q; want it to say to set EFFNAS_DB", script, vars, stderr)
			}
		}
	}
}

// lookKubectl finds kubectl, which TestManifestsKustomize needs.
func lookKubectl() (string, error) {
	p, err := exec.LookPath("kubectl")
	if err != nil {
		return "", errors.New("kubectl is not installed: kustomize's build of the manifests is not checked here")
	}
	return p, nil
}

// runTool runs a program and returns its standard output.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, e.String())
	}
	return o.String(), nil
}
