package deploy_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
)

// tiny are proxy flags small enough for tests (cmd/effnas's tests use the
// same): real MNIST, real training.
var tiny = []string{"--train-size", "256", "--val-size", "128", "--test-size", "64", "--proxy-width", "0.25", "--proxy-res", "16", "--batch", "32", "--rungs", "1", "--top-seeds", "1"}

// buildStatic builds the static binary with build.sh (the command
// deploy/README.md documents) and returns its path. The link must not warn:
// glibc's warnings about getaddrinfo, getpwnam or dlopen in a static binary
// mean a build tag that keeps them out is missing, and the binary would
// need glibc's shared libraries at run time after all.
func buildStatic(t *testing.T, env ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "effnas")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "build.sh")
	cmd.Env = append(os.Environ(), append([]string{"OUT=" + bin}, env...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	t.Logf("build.sh took %.1fs", time.Since(start).Seconds())
	if bytes.Contains(out, []byte("warning:")) {
		t.Errorf("the static link warns (a libc function that needs glibc's shared libraries at run time is linked in):\n%s", out)
	}
	return bin
}

// TestStaticBinary builds effnas as the image needs it, checks that it is
// statically linked (no program interpreter, no shared library) and runs
// it: -h, and a tiny search on SQLite, with nothing in its environment but
// TMPDIR.
func TestStaticBinary(t *testing.T) {
	bin := buildStatic(t, "NO_IMAGE=1")

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter (PT_INTERP): it is dynamically linked and would not start in an image FROM scratch", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v (err %v); want none", bin, libs, err)
	}

	dir := t.TempDir()
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"TMPDIR=" + dir} // no HOME, no USER, no EFFNAS_DB: as in the image
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("effnas %s: %v\n%s", strings.Join(args, " "), err, e.String())
		}
		return o.String(), e.String()
	}
	if out, _ := run("-h"); !strings.Contains(out, "Usage: effnas <command>") {
		t.Errorf("effnas -h printed %q; want its usage", out)
	}
	out, _ := run(append([]string{"search", "--db", filepath.Join(dir, "s.db"), "--trials", "2", "--workers", "1", "--threads", "1", "--epochs", "1", "--json"}, tiny...)...)
	checkSearchReport(t, out)

	t.Run("postgres", func(t *testing.T) { runDeployed(t, bin) })
}

// runDeployed runs the coordinator and a worker of deploy/kubernetes with
// the static binary against the PostgreSQL test server, as the pods would:
// their command lines from the manifests, the database URL in place of
// $(EFFNAS_DB), and the coordinator's budget cut to two tiny trials (a
// later flag wins). The worker starts first, waits for the study, and must
// exit 0 once the coordinator has finished it (--until-done).
func runDeployed(t *testing.T, bin string) {
	db := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	var coord, work []string
	for name, c := range effnasContainers(loadManifests(t)) {
		switch name {
		case "coordinator-job.yaml/search":
			coord = c.Args
		case "worker-job.yaml/worker":
			work = c.Args
		}
	}
	if coord == nil || work == nil {
		t.Fatal("no coordinator-job.yaml/search or worker-job.yaml/worker container")
	}
	expand := func(args []string) []string {
		out := slices.Clone(args)
		for i, a := range out {
			out[i] = strings.ReplaceAll(a, "$(EFFNAS_DB)", db)
		}
		return out
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	command := func(args []string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"TMPDIR=" + dir}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		return cmd, &o, &e
	}
	worker, _, werr := command(expand(work))
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	search, sout, serr := command(append(expand(coord), append([]string{"--trials", "2", "--epochs", "1", "--json"}, tiny...)...))
	if err := search.Run(); err != nil {
		worker.Process.Kill()
		worker.Wait()
		t.Fatalf("coordinator: %v\n%s", err, serr)
	}
	checkSearchReport(t, sout.String())
	if err := worker.Wait(); err != nil {
		t.Fatalf("worker --until-done after the study completed: %v; want exit 0\n%s", err, werr)
	}
	t.Logf("worker: %s", strings.TrimSpace(werr.String()))
}

// checkSearchReport checks search --json's report of a finished study.
func checkSearchReport(t *testing.T, out string) {
	t.Helper()
	var rep struct {
		Complete bool `json:"complete"`
		Best     *struct {
			Blocks   []string `json:"blocks"`
			Accuracy float64  `json:"accuracy"`
		} `json:"best"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("search --json: %v\n%s", err, out)
	}
	if !rep.Complete || rep.Best == nil || len(rep.Best.Blocks) != 7 || rep.Best.Accuracy <= 0 || rep.Best.Accuracy > 1 {
		t.Errorf("search report: want a complete study whose best network has 7 stages and an accuracy in (0, 1], got %s", out)
	}
}

// errNoContainers says why containers cannot run on this machine.
var errNoContainers = errors.New("containers cannot run here")

// TestImage builds the image with build.sh and runs effnas -h and a tiny
// search in it. It is the one optional part of deploy's tests: without
// podman (or with buildah alone, which builds but does not run it here) it
// skips, and so it does where the container runtime cannot start a
// container at all (a sandbox without cgroups or rlimits of its own).
func TestImage(t *testing.T) {
	podmanBin, perr := exec.LookPath("podman")
	_, berr := exec.LookPath("buildah")
	if perr != nil && berr != nil {
		t.Skip("neither podman nor buildah is installed: the image is not built (deploy/build.sh builds it where one is)")
	}
	image := fmt.Sprintf("localhost/effnas-test:%s-%d", time.Now().UTC().Format("20060102150405"), os.Getpid())
	buildStatic(t, "IMAGE="+image)
	if perr != nil {
		t.Cleanup(func() { exec.Command("buildah", "rmi", image).Run() })
		t.Skip("buildah built the image; without podman it is not run here")
	}
	t.Cleanup(func() { exec.Command(podmanBin, "rmi", "--force", image).Run() })

	pm := &podman{bin: podmanBin}
	out, err := pm.run(t, image, nil, "-h")
	if errors.Is(err, errNoContainers) {
		t.Skipf("the image was built, but %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Usage: effnas <command>") {
		t.Errorf("effnas -h in the image printed %q; want its usage", out)
	}
	// The image's user writes its database and Go's temporary files in the
	// writable folders mounted where the Containerfile says.
	mounts := []string{"--tmpfs", "/tmp:mode=1777", "--tmpfs", "/data:mode=1777"}
	out, err = pm.run(t, image, mounts, append([]string{"search", "--db", "/data/s.db", "--trials", "2", "--workers", "1", "--threads", "1", "--epochs", "1", "--json"}, tiny...)...)
	if err != nil {
		t.Fatal(err)
	}
	checkSearchReport(t, out)
}

// podman runs containers; where its default runtime cannot start one here
// (crun in a sandbox without cgroups of its own), it tries runc, and keeps
// to the runtime that worked.
type podman struct {
	bin     string
	runtime []string // global flags choosing the runtime that worked, once one has
	found   bool
}

// run runs args in the image, without a network, and returns its standard
// output. An error of the runtimes themselves (not of effnas) wraps
// errNoContainers.
func (p *podman) run(t *testing.T, image string, opts []string, args ...string) (string, error) {
	t.Helper()
	// Limits within any sandbox's: podman's defaults (the host's maximum)
	// cannot be set in some.
	base := append([]string{"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}, opts...)
	runtimes := [][]string{nil, {"--runtime", "runc"}}
	if p.found {
		runtimes = [][]string{p.runtime}
	}
	var last error
	for _, rt := range runtimes {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, p.bin, append(append(slices.Concat(rt, base), image), args...)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		cancel()
		if err == nil {
			p.runtime, p.found = rt, true
			return o.String(), nil
		}
		msg := strings.TrimSpace(e.String())
		if !runtimeCannotStart(msg) {
			return o.String(), fmt.Errorf("podman run %s %s: %v\n%s", image, strings.Join(args, " "), err, msg)
		}
		t.Logf("podman %v cannot start a container here: %s", rt, msg)
		if last == nil || !strings.Contains(msg, `OCI runtime "runc" not found`) {
			last = fmt.Errorf("%w: podman %s: %s", errNoContainers, strings.Join(rt, " "), msg)
		}
	}
	return "", last
}

// runtimeCannotStart tells the container runtime's own failures on a
// machine that cannot run containers (no cgroups of its own, rlimits it
// may not set) from effnas's failures in a container that started.
func runtimeCannotStart(stderr string) bool {
	for _, s := range []string{"cgroups in hybrid mode", "setrlimit", "error setting rlimit", "not compatible with NoCgroups", "cannot set up namespace", "unshare", `OCI runtime "runc" not found`} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
