package dashboard

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// studies writes a database with a finished search under successive
// halving (some trials failed), a compound grid and a width series on its
// best network, and a running search named like a script, and returns it
// closed, with the studies' ids.
func studies(t testing.TB) (path string, ids map[string]int64) {
	t.Helper()
	f := newFixture(t)
	ids = map[string]int64{}
	s, src := f.searchStudy("b0 search", 27, halving)
	f.run(s, src, 11)
	ids["search"] = s.ID
	g, gs := f.gridStudy("grid", s, src, "", halving)
	f.run(g, gs, 0)
	ids["grid"] = g.ID
	w, ws := f.gridStudy("width", s, src, "width", search.Halving{Rungs: 1})
	f.run(w, ws, 0)
	ids["width"] = w.ID
	x, xs := f.searchStudy("<script>alert('x')</script>", 9, search.Halving{Rungs: 1})
	f.step(x, xs, 4, 0)
	ids["script"] = x.ID
	p, err := search.CreatePanel(f.ctx, f.st, "proxy bench", search.PanelConfig{Panel: 3, Seeds: 2, RefSeeds: 2,
		Proxy: search.Proxy{TrainSize: 600}, Reference: search.Fidelity{TrainSize: 1200, Epochs: 2}})
	f.must(err)
	ps, err := search.OpenPanel(p)
	f.must(err)
	f.run(p, ps, 0)
	ids["proxy"] = p.ID
	f.st.Close()
	return f.path, ids
}

// serve opens path read-only and serves its dashboard.
func serve(t testing.TB, path string) *httptest.Server {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st, Options{Label: "effnas.db"}))
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv
}

func get(t testing.TB, url string) (int, http.Header, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(b)
}

func TestPagesAndJSON(t *testing.T) {
	path, ids := studies(t)
	srv := serve(t, path)
	id := func(name string) string { return strconv.FormatInt(ids[name], 10) }
	for _, tc := range []struct {
		path, typ string
		code      int
		want      []string
	}{
		{"/", "text/html", 200, []string{"b0 search", "compare", "&lt;script&gt;"}},
		{"/studies/" + id("search"), "text/html", 200, []string{"Best reward over time", "Pareto", "Current B0", "Learning curves", "r1_k"}},
		{"/studies/" + id("search") + "?state=failed", "text/html", 200, []string{"training diverged"}},
		{"/studies/" + id("search") + "?sort=reward&order=asc&page=1", "text/html", 200, []string{"reward ▲"}},
		{"/studies/" + id("grid"), "text/html", 200, []string{"Winner", "Family B1..B7", "width only", "b7"}},
		{"/studies/" + id("width"), "text/html", 200, []string{"width alone"}},
		{"/studies/" + id("proxy"), "text/html", 200, []string{"How far the proxy can be trusted", "Kendall tau", "B0"}},
		{"/api/studies/" + id("proxy"), "application/json", 200, []string{`"report"`, `"tau_reference"`}},
		{"/api/studies/" + id("proxy") + "/trials", "application/json", 200, []string{`"rung":1`}},
		{"/studies/" + id("script"), "text/html", 200, []string{"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"}},
		{"/compare?id=" + id("search") + "&id=" + id("grid") + "&id=" + id("script"), "text/html", 200, []string{"Pareto fronts", "best reward"}},
		{"/api/studies", "application/json", 200, []string{`"kind":"search"`}},
		{"/api/studies/" + id("search"), "application/json", 200, []string{`"standings"`, `"rungs"`}},
		{"/api/studies/" + id("search") + "/trials", "application/json", 200, []string{`"matched"`}},
		{"/api/studies/" + id("search") + "/best", "application/json", 200, []string{`"best"`}},
		{"/api/studies/" + id("search") + "/pareto", "application/json", 200, []string{`"front"`, `"iso"`}},
		{"/api/studies/" + id("search") + "/parallel", "application/json", 200, []string{`"axes"`}},
		{"/api/studies/" + id("search") + "/rungs", "application/json", 200, []string{`"candidates"`}},
		{"/api/studies/" + id("search") + "/b0", "application/json", 200, []string{`"layers"`}},
		{"/api/studies/" + id("grid") + "/grid", "application/json", 200, []string{`"series"`, `"family"`}},
		{"/api/compare?id=" + id("search") + "," + id("grid"), "application/json", 200, []string{`"fronts"`}},
		{"/api/version", "application/json", 200, []string{`"version"`}},
		{"/static/style.css", "text/css", 200, nil},
		{"/static/live.js", "text/javascript", 200, []string{"textContent"}},
		// Mistakes: a 404 page or a JSON error that says what was wrong.
		{"/studies/999", "text/html", 404, []string{"no study 999"}},
		{"/studies/abc", "text/html", 404, []string{"whole number"}},
		{"/studies/-1", "text/html", 404, nil},
		{"/studies/" + id("search") + "?state=nonsense", "text/html", 400, []string{"state"}},
		{"/nowhere", "text/html", 404, nil},
		{"/compare?id=" + id("search"), "text/html", 400, []string{"at least 2"}},
		{"/compare?id=" + id("search") + "&id=999", "text/html", 404, nil},
		{"/api/studies/999", "application/json", 404, []string{`"error"`}},
		{"/api/studies/" + id("grid") + "/parallel", "application/json", 404, []string{"grid study"}},
		{"/api/studies/" + id("search") + "/nothing", "application/json", 404, nil},
	} {
		code, h, body := get(t, srv.URL+tc.path)
		if code != tc.code || !strings.HasPrefix(h.Get("Content-Type"), tc.typ) {
			t.Errorf("GET %s: %d %s, want %d %s\n%.400s", tc.path, code, h.Get("Content-Type"), tc.code, tc.typ, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: the answer lacks %q", tc.path, w)
			}
		}
		if strings.HasPrefix(tc.typ, "application/json") && !json.Valid([]byte(body)) {
			t.Errorf("GET %s: not valid JSON", tc.path)
		}
		if strings.HasPrefix(tc.typ, "text/html") {
			// The pages open and close their blocks in template branches
			// (a row only when there is a plot): every branch balances.
			for _, tag := range []string{"div", "section", "figure", "table"} {
				if o, c := strings.Count(body, "<"+tag), strings.Count(body, "</"+tag+">"); o != c {
					t.Errorf("GET %s: %d <%s> opened, %d closed", tc.path, o, tag, c)
				}
			}
		}
		if h.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", tc.path)
		}
	}
}

func TestOnlyGET(t *testing.T) {
	path, ids := studies(t)
	srv := serve(t, path)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		for _, p := range []string{"/", "/studies/" + strconv.FormatInt(ids["search"], 10), "/api/studies", "/nowhere"} {
			req, _ := http.NewRequest(m, srv.URL+p, strings.NewReader("x=1"))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, p, res.StatusCode)
			}
		}
	}
}

// TestScriptNameIsText checks that a study named like a script is shown as
// text everywhere it appears: list, page, compare legend and JSON.
func TestScriptNameIsText(t *testing.T) {
	path, ids := studies(t)
	srv := serve(t, path)
	sid := strconv.FormatInt(ids["script"], 10)
	for _, p := range []string{"/", "/studies/" + sid, "/compare?id=" + sid + "&id=" + strconv.FormatInt(ids["search"], 10)} {
		_, _, body := get(t, srv.URL+p)
		if strings.Contains(body, "<script>alert") {
			t.Errorf("GET %s: the study's name is in the page as markup", p)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(") {
			t.Errorf("GET %s: the study's name is not shown", p)
		}
	}
	_, _, body := get(t, srv.URL+"/studies/"+strconv.FormatInt(ids["search"], 10)+"?state=failed")
	if strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, "&lt;script&gt;alert(1)") {
		t.Error("a failed trial's error text is not escaped")
	}
}

// TestPaging checks the trial table's filter, order and pages.
func TestPaging(t *testing.T) {
	var trials []store.Trial
	for i := range 250 {
		st := store.TrialComplete
		if i%10 == 0 {
			st = store.TrialFailed
		}
		trials = append(trials, store.Trial{Number: i, State: st, Rung: i % 3, Accuracy: float64(i%17) / 17, Key: "k" + strconv.Itoa(i)})
	}
	q, err := parseTrialQuery(map[string][]string{"state": {"complete"}, "rung": {"1"}, "sort": {"accuracy"}})
	if err != nil {
		t.Fatal(err)
	}
	sel := q.apply(trials)
	for i, tr := range sel {
		if tr.State != store.TrialComplete || tr.Rung != 1 {
			t.Fatalf("row %d: trial %+v passes the filter", i, tr)
		}
		if i > 0 && sel[i-1].Accuracy < tr.Accuracy {
			t.Fatalf("rows %d, %d: accuracy %v before %v, want descending", i-1, i, sel[i-1].Accuracy, tr.Accuracy)
		}
	}
	for _, bad := range []map[string][]string{{"state": {"x"}}, {"rung": {"-1"}}, {"sort": {"name"}}, {"order": {"up"}}, {"page": {"0"}}} {
		if _, err := parseTrialQuery(bad); err == nil {
			t.Errorf("parseTrialQuery(%v) accepted it", bad)
		}
	}
	v := &study{Study: store.Study{ID: 1}, trials: trials, halving: search.Halving{Rungs: 3}}
	tb := v.table(TrialQuery{Rung: -1, Sort: "number", Desc: true, Page: 3})
	if tb.Pages != 3 || len(tb.Rows) != 50 || tb.Rows[0].Number != 49 || tb.Next != "" || tb.Prev == "" {
		t.Errorf("page 3 of 250 trials newest first: %d pages, %d rows from %d, prev %q next %q", tb.Pages, len(tb.Rows), tb.Rows[0].Number, tb.Prev, tb.Next)
	}
}

// fileState is what a test sees of a database file: its bytes (as a
// hash), modification time, and the other files in its directory.
type fileState struct {
	sum    [sha256.Size]byte
	mtime  time.Time
	beside []string
}

func stateOf(t testing.TB, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	s := fileState{sum: sha256.Sum256(b), mtime: fi.ModTime()}
	for _, e := range es {
		if e.Name() != filepath.Base(path) {
			s.beside = append(s.beside, e.Name())
		}
	}
	return s
}

// TestReadOnlyFile serves a database file of mode 444 with no WAL beside
// it, and checks that nothing wrote it: its bytes and modification time
// are unchanged once the store is open, after every page and endpoint
// was asked for, and after the server and store are closed, and no -wal,
// -shm or other file appeared beside it at any of those times. The tests
// may run as root, whom mode 444 does not stop: these checks, not the
// mode, are what catch a write. (A write that leaves the bytes as they
// were, such as a migration of an up-to-date schema that is checkpointed
// when its connection closes, still moves the modification time.)
func TestReadOnlyFile(t *testing.T) {
	path, ids := studies(t)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	before := stateOf(t, path)
	if len(before.beside) != 0 {
		t.Fatalf("files beside the closed database: %v; want none", before.beside)
	}
	check := func(when string) {
		t.Helper()
		after := stateOf(t, path)
		if after.sum != before.sum {
			t.Errorf("%s: the database file's bytes changed", when)
		}
		if !after.mtime.Equal(before.mtime) {
			t.Errorf("%s: the database file's modification time moved from %v to %v", when, before.mtime, after.mtime)
		}
		if len(after.beside) != 0 {
			t.Errorf("%s: files beside the database: %v; want none", when, after.beside)
		}
	}

	st, err := sqlite.Open(t.Context(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check("after opening")
	srv := httptest.NewServer(New(st, Options{Label: "effnas.db"}))
	defer srv.Close()
	id := func(name string) string { return strconv.FormatInt(ids[name], 10) }
	paths := []string{"/", "/api/studies", "/api/version", "/api/version?id=" + id("search"),
		"/compare?id=" + id("search") + "&id=" + id("grid"), "/api/compare?id=" + id("search") + "," + id("grid")}
	for _, name := range []string{"search", "grid", "width", "script", "proxy"} {
		paths = append(paths, "/studies/"+id(name), "/studies/"+id(name)+"?state=complete&sort=accuracy", "/api/studies/"+id(name), "/api/studies/"+id(name)+"/trials")
	}
	for _, fig := range []string{"best", "pareto", "parallel", "rungs", "b0"} {
		paths = append(paths, "/api/studies/"+id("search")+"/"+fig)
	}
	paths = append(paths, "/api/studies/"+id("grid")+"/grid")
	for _, p := range paths {
		if code, _, body := get(t, srv.URL+p); code != 200 {
			t.Errorf("GET %s of a read-only file: %d\n%.300s", p, code, body)
		}
	}
	check("after the requests")
	srv.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	check("after closing")

	if _, err := sqlite.Open(t.Context(), path+".missing", sqlite.Options{ReadOnly: true}); err == nil {
		t.Error("a missing file opened read-only")
	}
}
