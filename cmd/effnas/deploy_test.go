package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// deployDB stands for $(EFFNAS_DB) and $EFFNAS_DB when the command lines of
// deploy/ are parsed: what a user's Secret would hold, on a loopback port
// where nothing listens, so that a command that ran past its flags would
// fail at once without leaving the machine.
const deployDB = "postgres://effnas:secret@127.0.0.1:1/effnas?sslmode=disable"

// deployCommand is an effnas command line found in deploy/.
type deployCommand struct {
	where string // file and container
	args  []string
}

// k8sDoc is the part of a Kubernetes workload that holds its containers
// (Jobs, StatefulSets, Deployments). deploy's own tests decode the
// manifests strictly into the API types; here only the command lines
// matter.
type k8sDoc struct {
	Kind string `json:"kind"`
	Spec struct {
		Template struct {
			Spec struct {
				InitContainers []k8sContainer `json:"initContainers"`
				Containers     []k8sContainer `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type k8sContainer struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
}

// k8sCommands returns the effnas command line of every effnas container in
// deploy/kubernetes, as written ($(EFFNAS_DB) unexpanded).
func k8sCommands(t *testing.T) []deployCommand {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join("..", "..", "deploy", "kubernetes"), func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".yaml") && d.Name() != "kustomization.yaml" {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (err %v)", err)
	}
	var out []deployCommand
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(raw), -1) {
			var d k8sDoc
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, c := range slices.Concat(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers) {
				image := c.Image[strings.LastIndexByte(c.Image, '/')+1:]
				if image, _, _ = strings.Cut(image, ":"); image != "effnas" {
					continue
				}
				if !slices.Equal(c.Command, []string{"/effnas"}) {
					t.Errorf("%s: container %s runs %q; want the binary /effnas itself", f, c.Name, c.Command)
				}
				out = append(out, deployCommand{where: filepath.Base(f) + ": container " + c.Name, args: c.Args})
			}
		}
	}
	return out
}

// slurmCommands runs each Slurm script of deploy/slurm with bash and an
// effnas that only records its arguments, and returns the command lines the
// scripts would run, expanded by the shell with EFFNAS_DB set to db.
func slurmCommands(t *testing.T, db string) []deployCommand {
	t.Helper()
	scripts, err := filepath.Glob(filepath.Join("..", "..", "deploy", "slurm", "*.sbatch"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no deploy/slurm/*.sbatch (err %v)", err)
	}
	var out []deployCommand
	for _, s := range scripts {
		abs, err := filepath.Abs(s)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		fake := "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$EFFNAS_ARGS_FILE\"\n"
		if err := os.WriteFile(filepath.Join(dir, "effnas"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		argsFile := filepath.Join(dir, "args")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "bash", abs)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "EFFNAS_BIN=" + dir, "EFFNAS_ARGS_FILE=" + argsFile, "EFFNAS_DB=" + db}
		msg, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", s, err, msg)
		}
		raw, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatalf("%s did not run effnas: %v", s, err)
		}
		out = append(out, deployCommand{where: filepath.Base(s), args: strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")})
	}
	return out
}

// TestDeployCommandLinesParse runs every effnas command line of deploy/
// (the containers of the Kubernetes manifests, the commands of the Slurm
// scripts) through the real command line, stopped right after its flags
// parse: a flag renamed in effnas, or misspelt in deploy/, fails here. In
// case a command did not stop, it runs with a cancelled context in an empty
// folder.
func TestDeployCommandLinesParse(t *testing.T) {
	cmds := append(k8sCommands(t), slurmCommands(t, deployDB)...)
	t.Chdir(t.TempDir())
	t.Setenv(envDB, "") // restored afterwards; unset meanwhile
	os.Unsetenv(envDB)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	seen := map[string]bool{}
	for _, c := range cmds {
		args := slices.Clone(c.args)
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "$(EFFNAS_DB)", deployDB)
		}
		var stdout, stderr bytes.Buffer
		err := Run(ctx, &Env{Stdout: &stdout, Stderr: parseOnly{&stderr}}, args)
		if !errors.Is(err, errParseOnly) {
			t.Errorf("%s: effnas %s: %v; want its flags to parse\n%s", c.where, strings.Join(c.args, " "), err, stderr.String())
		}
		if len(args) > 0 {
			seen[args[0]] = true
		}
	}
	for _, want := range []string{"search", "grid", "worker"} {
		if !seen[want] {
			t.Errorf("no command line of deploy/ runs effnas %s; parsed %v", want, cmds)
		}
	}
}

// TestParseOnlyStopsEveryCommand checks that every command, and every
// benchmark of effnas bench, goes through parseFlags, so that the check
// above stops it before it runs. It runs each with no flags at all, in an
// empty folder and with a cancelled context, so that one that ran anyway
// would do nothing.
func TestParseOnlyStopsEveryCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv(envDB, "") // restored afterwards; unset meanwhile
	os.Unsetenv(envDB)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var lines [][]string
	for name := range commands {
		if name == "bench" {
			for b := range benchCommands {
				lines = append(lines, []string{"bench", b})
			}
			continue
		}
		lines = append(lines, []string{name})
	}
	for _, args := range lines {
		var stdout, stderr bytes.Buffer
		err := Run(ctx, &Env{Stdout: &stdout, Stderr: parseOnly{&stderr}}, args)
		if !errors.Is(err, errParseOnly) {
			t.Errorf("effnas %s did not stop after its flags parsed: %v; its flags must go through parseFlags", strings.Join(args, " "), err)
		}
	}
	if len(lines) < 10 {
		t.Errorf("only %d commands registered: %v", len(lines), lines)
	}
}

// TestDeployDatabaseUnset runs the command lines of the Kubernetes
// manifests as a pod without EFFNAS_DB in its env would: Kubernetes passes
// $(EFFNAS_DB) through unexpanded, and effnas must refuse it as a usage
// error (exit status 2, which fails the worker Job at once) that names the
// variable, instead of opening a SQLite file of that name. They run for
// real, with a cancelled context in an empty folder: the refusal may come
// as the flags parse or after.
func TestDeployDatabaseUnset(t *testing.T) {
	cmds := k8sCommands(t)
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(envDB, "") // restored afterwards; unset meanwhile
	os.Unsetenv(envDB)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range cmds {
		var stdout, stderr bytes.Buffer
		err := Run(ctx, &Env{Stdout: &stdout, Stderr: &stderr}, c.args)
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), envDB) {
			t.Errorf("%s: effnas %s without %s: %v; want a usage error that names %s", c.where, strings.Join(c.args, " "), envDB, err, envDB)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("the refused commands left %d files behind, such as %s", len(left), left[0].Name())
	}
}
