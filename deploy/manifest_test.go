package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"

	"github.com/effnas/effnas/search"
)

// The Kubernetes API types are the only way to know that a manifest says
// what it means: an unknown, misspelt or wrongly cased field is dropped
// without a word by kubectl's client-side apply and by kustomize, and the
// pod then runs without the limit, probe or volume it was given.

// manifest is one resource of deploy/kubernetes, decoded.
type manifest struct {
	file string // relative to deploy/kubernetes
	obj  runtime.Object
}

// decoder decodes YAML into the API types strictly: an unknown field, a
// duplicate one or a field in the wrong case is an error, as it is for
// kubectl apply --validate=strict.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
}

// kustomization is the part of kustomization.yaml deploy uses; decoded
// strictly, so a field kustomize does not know of here is a mistake.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// kustomizations returns the folders under deploy/kubernetes that hold a
// kustomization.yaml: the base and the grid's.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir("kubernetes", func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return err
	})
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no kustomization.yaml under deploy/kubernetes (err %v)", err)
	}
	return dirs
}

// loadManifests decodes every resource of every kustomization under
// deploy/kubernetes, after checking that each kustomization names exactly
// the manifests of its folder.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	dec := decoder(t)
	var all []manifest
	for _, dir := range kustomizations(t) {
		raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k kustomization
		if err := yaml.UnmarshalStrict(raw, &k); err != nil {
			t.Fatalf("%s/kustomization.yaml: %v", dir, err)
		}
		if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
			t.Errorf("%s/kustomization.yaml: apiVersion %q, kind %q; want kustomize.config.k8s.io/v1beta1 Kustomization", dir, k.APIVersion, k.Kind)
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, f := range files {
			if b := filepath.Base(f); b != "kustomization.yaml" {
				want = append(want, b)
			}
		}
		got := slices.Sorted(slices.Values(k.Resources))
		if !slices.Equal(got, want) {
			t.Errorf("%s/kustomization.yaml: resources %v; want exactly the manifests of its folder %v", dir, got, want)
		}
		for _, r := range k.Resources {
			all = append(all, decodeFile(t, dec, filepath.Join(dir, r))...)
		}
	}
	return all
}

// docSep splits a YAML stream into its documents.
var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeFile decodes each document of path strictly into its API type.
func decodeFile(t *testing.T, dec runtime.Decoder, path string) []manifest {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel("kubernetes", path)
	var out []manifest
	for i, doc := range docSep.Split(string(raw), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, gvk, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Errorf("%s (document %d): %v", rel, i+1, err)
			continue
		}
		if gvk.Kind == "" {
			t.Errorf("%s (document %d): no kind", rel, i+1)
			continue
		}
		out = append(out, manifest{file: rel, obj: obj})
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for l := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestManifestsDecodeStrictly decodes every manifest into the Kubernetes
// API types and checks that the folder has what the issue asks for: a
// Secret with EFFNAS_DB, a coordinator Job, an Indexed Job of workers and a
// PostgreSQL StatefulSet with a volume, a readiness probe and a Service.
func TestManifestsDecodeStrictly(t *testing.T) {
	ms := loadManifests(t)
	var secrets, jobs, indexed, statefulsets, services int
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *corev1.Secret:
			if _, ok := secretKey(o, "EFFNAS_DB"); ok {
				secrets++
			}
		case *batchv1.Job:
			jobs++
			if o.Spec.CompletionMode != nil && *o.Spec.CompletionMode == batchv1.IndexedCompletion {
				indexed++
				if o.Spec.Parallelism == nil || o.Spec.Completions == nil || *o.Spec.Parallelism < 1 || *o.Spec.Completions < *o.Spec.Parallelism {
					t.Errorf("%s: an Indexed Job of workers needs parallelism >= 1 and completions >= parallelism", m.file)
				}
			}
		case *appsv1.StatefulSet:
			statefulsets++
			if len(o.Spec.VolumeClaimTemplates) == 0 {
				t.Errorf("%s: StatefulSet %s has no volumeClaimTemplates", m.file, o.Name)
			}
			for _, c := range o.Spec.Template.Spec.Containers {
				if c.ReadinessProbe == nil {
					t.Errorf("%s: container %s has no readiness probe", m.file, c.Name)
				}
			}
			if !strings.Contains(fileText(t, m.file), "NOT FOR PRODUCTION") {
				t.Errorf("%s: the PostgreSQL for trying effnas out must say it is NOT FOR PRODUCTION", m.file)
			}
		case *corev1.Service:
			services++
		}
	}
	if secrets == 0 || jobs < 2 || indexed == 0 || statefulsets == 0 || services == 0 {
		t.Errorf("deploy/kubernetes has %d Secrets with EFFNAS_DB, %d Jobs (%d Indexed), %d StatefulSets, %d Services; want a Secret, a coordinator Job, an Indexed Job of workers, and PostgreSQL's StatefulSet and Service",
			secrets, jobs, indexed, statefulsets, services)
	}
}

func fileText(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("kubernetes", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// secretKey returns a Secret's value for key, from data or stringData.
func secretKey(s *corev1.Secret, key string) (string, bool) {
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// podSpec returns the pod template of a workload, or nil.
func podSpec(obj runtime.Object) *corev1.PodSpec {
	switch o := obj.(type) {
	case *batchv1.Job:
		return &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &o.Spec.Template.Spec
	case *appsv1.Deployment:
		return &o.Spec.Template.Spec
	}
	return nil
}

// isEffnas tells an effnas container by its image (kustomization.yaml's
// images: maps the name effnas to the user's registry).
func isEffnas(c corev1.Container) bool {
	name := c.Image
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name, _, _ = strings.Cut(name, ":")
	return name == "effnas"
}

// effnasContainers returns every effnas container (init containers too)
// of the manifests, named file/container.
func effnasContainers(ms []manifest) map[string]corev1.Container {
	out := map[string]corev1.Container{}
	for _, m := range ms {
		if ps := podSpec(m.obj); ps != nil {
			for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
				if isEffnas(c) {
					out[m.file+"/"+c.Name] = c
				}
			}
		}
	}
	return out
}

// TestManifestContainers checks every effnas container: the binary runs
// with no shell around it, its --db is $(EFFNAS_DB) and EFFNAS_DB comes
// from a Secret of the manifests that has that key, and its resources agree
// with its flags (cpu = --workers x --threads, memory >= --workers x
// --max-memory + 256Mi, requests = limits).
func TestManifestContainers(t *testing.T) {
	ms := loadManifests(t)
	secrets := map[string]*corev1.Secret{}
	for _, m := range ms {
		if s, ok := m.obj.(*corev1.Secret); ok {
			secrets[s.Name] = s
		}
	}
	cs := effnasContainers(ms)
	var roles []string
	studies := map[string][2][]string{} // by folder: the coordinators' --name, the workers' --study-name
	for name, c := range cs {
		if !slices.Equal(c.Command, []string{"/effnas"}) {
			t.Errorf("%s: command %q; want [/effnas], the binary itself (no shell: the image has none)", name, c.Command)
		}
		if len(c.Args) == 0 {
			t.Errorf("%s: no args; want an effnas command such as worker", name)
			continue
		}
		roles = append(roles, c.Args[0])
		dir := filepath.Dir(filepath.Dir(name)) // name is folder/file/container
		st := studies[dir]
		if v, n := flagValue(c.Args, "name"); c.Args[0] != "worker" && n == 1 {
			st[0] = append(st[0], v)
		}
		if v, n := flagValue(c.Args, "study-name"); c.Args[0] == "worker" && n == 1 {
			st[1] = append(st[1], v)
		}
		if c.Args[0] == "worker" && !hasFlag(c.Args, "until-done") {
			t.Errorf("%s: worker without --until-done: it would not end when the study does, and the Job would never complete", name)
		}
		studies[dir] = st
		if db, n := flagValue(c.Args, "db"); n != 1 || db != "$(EFFNAS_DB)" {
			t.Errorf("%s: --db given %d times, as %q; want once, as $(EFFNAS_DB)", name, n, db)
		}
		checkEnvFromSecret(t, name, c, secrets)
		checkResources(t, name, c)
	}
	for dir, st := range studies {
		for _, w := range st[1] {
			if !slices.Contains(st[0], w) {
				t.Errorf("%s: workers wait for the study %q, but its coordinator names its study %q", dir, w, st[0])
			}
		}
	}
	slices.Sort(roles)
	if !slices.Contains(roles, "worker") || !slices.ContainsFunc(roles, func(r string) bool { return r == "search" || r == "grid" }) {
		t.Errorf("effnas containers run %v; want a coordinator (search or grid) and workers", roles)
	}
}

// varRef is a Kubernetes variable reference in args: $(NAME).
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkEnvFromSecret checks that EFFNAS_DB, and every variable the args
// refer to, is set in the container's env (Kubernetes leaves $(NAME)
// unexpanded otherwise), EFFNAS_DB from a Secret that has that key.
func checkEnvFromSecret(t *testing.T, name string, c corev1.Container, secrets map[string]*corev1.Secret) {
	t.Helper()
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, a := range c.Args {
		for _, m := range varRef.FindAllStringSubmatch(a, -1) {
			if _, ok := env[m[1]]; !ok {
				t.Errorf("%s: args refer to $(%s), which its env does not set", name, m[1])
			}
		}
	}
	e, ok := env["EFFNAS_DB"]
	switch {
	case !ok:
		t.Errorf("%s: no EFFNAS_DB in env", name)
	case e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil:
		t.Errorf("%s: EFFNAS_DB must come from a Secret (valueFrom.secretKeyRef), not be written in the manifest", name)
	default:
		ref := e.ValueFrom.SecretKeyRef
		s, ok := secrets[ref.Name]
		if !ok {
			t.Errorf("%s: EFFNAS_DB from Secret %q, which no manifest defines", name, ref.Name)
		} else if _, ok := secretKey(s, ref.Key); !ok || ref.Key != "EFFNAS_DB" {
			t.Errorf("%s: EFFNAS_DB from key %q of Secret %q; want its key EFFNAS_DB", name, ref.Key, ref.Name)
		}
	}
}

// flagValue returns the value of --name (or -name, --name=v) in args and
// how many times it is given.
func flagValue(args []string, name string) (string, int) {
	var v string
	n := 0
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == args[i] {
			continue
		}
		if k, val, ok := strings.Cut(a, "="); ok && k == name {
			v, n = val, n+1
		} else if a == name && i+1 < len(args) {
			v, n = args[i+1], n+1
			i++
		}
	}
	return v, n
}

// hasFlag tells whether a boolean flag (--name or --name=true) is in args.
func hasFlag(args []string, name string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "--"+name || a == "-"+name || a == "--"+name+"=true" || a == "-"+name+"=true"
	})
}

// overhead is what an effnas process needs beside its trainings.
const overhead = 256 << 20

// sizing is what a command line asks of its machine: cpus and the least
// memory it needs.
type sizing struct {
	workers, threads int
	cpus             int   // workers x threads
	memory           int64 // workers x max-memory + overhead
}

// sizeOf reads --workers, --threads and --max-memory from args. All three
// must be given, with threads above 0: their defaults depend on the
// machine, which no limit can agree with.
func sizeOf(args []string) (sizing, error) {
	var s sizing
	vals := map[string]string{}
	for _, f := range []string{"workers", "threads", "max-memory"} {
		v, n := flagValue(args, f)
		if n != 1 {
			return s, fmt.Errorf("--%s given %d times; give it once, so that the resources can agree with it", f, n)
		}
		vals[f] = v
	}
	var err error
	if s.workers, err = strconv.Atoi(vals["workers"]); err != nil || s.workers < 1 {
		return s, fmt.Errorf("--workers %q: want a count of at least 1", vals["workers"])
	}
	if s.threads, err = strconv.Atoi(vals["threads"]); err != nil || s.threads < 1 {
		return s, fmt.Errorf("--threads %q: want a count of at least 1 (0 depends on the machine)", vals["threads"])
	}
	mem, err := search.ParseBytes(vals["max-memory"])
	if err != nil {
		return s, fmt.Errorf("--max-memory: %v", err)
	}
	s.cpus = s.workers * s.threads
	s.memory = int64(s.workers)*mem + overhead
	return s, nil
}

// checkResources checks a container's requests and limits against its
// flags. Requests equal limits: a worker trains flat out for hours, and a
// pod that gets less than it asks for is slower for everyone.
func checkResources(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	s, err := sizeOf(c.Args)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	for _, rl := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		for k := range rl {
			if k != corev1.ResourceCPU && k != corev1.ResourceMemory && k != corev1.ResourceEphemeralStorage && !strings.Contains(string(k), "/") {
				t.Errorf("%s: resource %q is not one Kubernetes knows; want cpu, memory or ephemeral-storage", name, k)
			}
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		lim, lok := c.Resources.Limits[r]
		req, rok := c.Resources.Requests[r]
		if !lok || !rok || lim.Cmp(req) != 0 {
			t.Errorf("%s: %s request %v and limit %v; want both, equal", name, r, req.String(), lim.String())
		}
	}
	cpu := c.Resources.Limits[corev1.ResourceCPU]
	if want := resource.NewQuantity(int64(s.cpus), resource.DecimalSI); cpu.Cmp(*want) != 0 {
		t.Errorf("%s: cpu limit %v; want --workers %d x --threads %d = %d", name, cpu.String(), s.workers, s.threads, s.cpus)
	}
	mem := c.Resources.Limits[corev1.ResourceMemory]
	if mem.Value() < s.memory {
		t.Errorf("%s: memory limit %v (%d bytes); want at least --workers x --max-memory + 256Mi = %d bytes (%dMi)", name, mem.String(), mem.Value(), s.memory, s.memory>>20)
	}
}

// TestManifestsKustomize runs kubectl kustomize on each kustomization where
// kubectl is installed: what kustomize builds must still decode strictly.
func TestManifestsKustomize(t *testing.T) {
	kubectl, err := lookKubectl()
	if err != nil {
		t.Skip(err)
	}
	dec := decoder(t)
	for _, dir := range kustomizations(t) {
		out, err := runTool(t, kubectl, "kustomize", dir)
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		n := 0
		for _, doc := range docSep.Split(out, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			n++
			if _, _, err := dec.Decode([]byte(doc), nil, nil); err != nil {
				t.Errorf("kubectl kustomize %s: %v\n%s", dir, err, doc)
			}
			if bytes.Contains([]byte(doc), []byte("kind: Namespace")) {
				continue
			}
			if !strings.Contains(doc, "namespace: effnas") {
				t.Errorf("kubectl kustomize %s: a resource outside the namespace effnas:\n%s", dir, doc)
			}
		}
		if n == 0 {
			t.Errorf("kubectl kustomize %s printed no resource", dir)
		}
	}
}
