package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/effnas/effnas/cmd/effnas/dashboard"
	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
)

// dashStudy is a search study under successive halving written through a
// real store, its trials finished with made-up accuracies instead of
// training, so that a test can go on finishing them while a dashboard
// shows it.
type dashStudy struct {
	t     *testing.T
	st    store.Store
	study store.Study
	src   *search.Searcher
}

func newDashStudy(t *testing.T, st store.Store) *dashStudy {
	t.Helper()
	return newDashStudyNamed(t, st, "shown")
}

func newDashStudyNamed(t *testing.T, st store.Store, name string) *dashStudy {
	t.Helper()
	study, err := search.Create(t.Context(), st, name, search.Config{Controller: "evolution", Trials: 12, Seed: 3,
		Proxy: search.Proxy{TrainSize: 1800, Halving: search.Halving{Rungs: 2, Eta: 3, TopSeeds: 2, Finalists: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := search.Open(t.Context(), st, study)
	if err != nil {
		t.Fatal(err)
	}
	return &dashStudy{t: t, st: st, study: study, src: src}
}

// next plans what the search asks for, claims one trial and records its
// result (every fifth fails); it returns the trial as recorded.
func (d *dashStudy) next() store.Trial {
	d.t.Helper()
	ctx := d.t.Context()
	trials, err := d.st.Trials(ctx, d.study.ID)
	if err != nil {
		d.t.Fatal(err)
	}
	plans, state, err := d.src.Plan(ctx, trials, 2)
	if err != nil {
		d.t.Fatal(err)
	}
	if len(plans) > 0 {
		if _, err := d.st.PlanTrials(ctx, d.study.ID, plans, state); err != nil {
			d.t.Fatal(err)
		}
	}
	claimed, err := d.st.ClaimTrials(ctx, d.study.ID, store.Claim{Worker: "test", Limit: 1, Lease: time.Hour})
	if err != nil || len(claimed) == 0 {
		d.t.Fatalf("claim a trial of study %d: %v (%d claimed)", d.study.ID, err, len(claimed))
	}
	tr := claimed[0]
	if tr.Number%5 == 4 {
		if err := d.st.FailTrial(ctx, tr.Lease(), "out of memory", 3); err != nil {
			d.t.Fatal(err)
		}
		tr.State = store.TrialFailed
		return tr
	}
	h := fnv.New32a()
	h.Write([]byte(tr.Key))
	acc := 0.8 + 0.15*float64(h.Sum32()%1000)/1000 + 0.01*float64(tr.Rung) + 0.003*float64(tr.Seed)
	r := store.Result{Accuracy: acc, Reward: d.src.Reward(tr, acc), TestAccuracy: acc - 0.02, Seconds: 12.5}
	if err := d.st.FinishTrial(ctx, tr.Lease(), r); err != nil {
		d.t.Fatal(err)
	}
	tr.State, tr.Accuracy, tr.Reward, tr.TestAccuracy = store.TrialComplete, r.Accuracy, r.Reward, r.TestAccuracy
	return tr
}

// lockedBuffer is a writer that the command and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDashboard runs effnas dashboard with args until the test ends and
// returns its address and what it printed.
func startDashboard(t *testing.T, args ...string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, &Env{Stdout: io.Discard, Stderr: &stderr}, append([]string{"dashboard"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("effnas dashboard: %v", err)
		}
	})
	addr := regexp.MustCompile(`at (http://[^ /]+)/`)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], &stderr
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("effnas dashboard %s ended: %v\n%s", strings.Join(args, " "), err, stderr.String())
		default:
		}
	}
	t.Fatalf("effnas dashboard did not say where it serves within 10s:\n%s", stderr.String())
	return "", nil
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// showOf runs effnas show --json.
func showOf(t *testing.T, db string, study int64) showJSON {
	t.Helper()
	out, err := runCmd(t, "show", "--db", db, "--study", strconv.FormatInt(study, 10), "--json")
	if err != nil {
		t.Fatalf("effnas show: %v", err)
	}
	var s showJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// pageRow is a row of the page's trial table, as text.
type pageRow struct {
	Number, State, Rung, Seed, Acc, Reward, Test, Params, FLOPs, Seconds, Attempt, Crashes string
}

// pageNumbers is every number the study page shows that effnas show
// --json also gives.
type pageNumbers struct {
	Done, Counts, BestReward, BestAccuracy, BestTrial string
	Standings                                         [][]string
	Rows                                              []pageRow
}

const readPage = `(() => {
  const t = s => (document.querySelector(s) || {textContent: ""}).textContent.trim();
  const cells = tr => [...tr.querySelectorAll("td")].map(td => td.textContent.trim());
  return {
    Done: t("#done"), Counts: t("#progress .counts"),
    BestReward: t("#best-reward"), BestAccuracy: t("#best-accuracy"), BestTrial: t("#best-trial"),
    Standings: [...document.querySelectorAll("#standings tbody tr")].map(cells),
    Rows: [...document.querySelectorAll("#trial-table tbody tr[data-number]")].map(tr => {
      const c = cells(tr);
      return {Number: c[0], State: c[1], Rung: c[2], Seed: c[3], Acc: c[4], Reward: c[5], Test: c[6],
              Params: c[7], FLOPs: c[8], Seconds: c[9], Attempt: c[10], Crashes: c[11]};
    }),
  };
})()`

// checkAgainstShow compares every number on the page with effnas show
// --json, to the digits the page shows.
func checkAgainstShow(t *testing.T, p pageNumbers, s showJSON) {
	t.Helper()
	f4 := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.4f", *v)
	}
	c := s.Study.Counts
	if want := strconv.Itoa(c.Complete + c.Failed); p.Done != want {
		t.Errorf("finished trials: page %s, show %s", p.Done, want)
	}
	for _, part := range []string{fmt.Sprintf("%d complete", c.Complete), fmt.Sprintf("%d running", c.Running),
		fmt.Sprintf("%d pending", c.Pending), fmt.Sprintf("%d failed", c.Failed)} {
		if !strings.Contains(p.Counts, part) {
			t.Errorf("counts: page %q, show says %s", p.Counts, part)
		}
	}
	if len(s.Standings) == 0 || s.Best == nil {
		t.Fatal("effnas show has no best candidate yet; the test needs one")
	}
	b := s.Standings[0]
	if p.BestReward != fmt.Sprintf("%.4f", b.Reward) || p.BestAccuracy != fmt.Sprintf("%.4f", b.Accuracy) || p.BestTrial != strconv.Itoa(s.Best.Number) {
		t.Errorf("best: page reward %s, accuracy %s, trial %s; show %.4f, %.4f, %d", p.BestReward, p.BestAccuracy, p.BestTrial, b.Reward, b.Accuracy, s.Best.Number)
	}
	if len(p.Standings) != min(len(s.Standings), 20) {
		t.Errorf("page lists %d candidates at the top rung, show %d (the page lists the best 20)", len(p.Standings), len(s.Standings))
	}
	for i, row := range p.Standings {
		if i >= len(s.Standings) {
			break
		}
		w := s.Standings[i]
		acc := fmt.Sprintf("%.4f", w.Accuracy)
		if w.Seeds > 1 {
			acc += fmt.Sprintf(" ± %.4f", w.AccuracyStd)
		}
		want := []string{strconv.Itoa(w.Runs[0]), strconv.Itoa(w.Seeds), acc}
		if len(row) < 5 || row[0] != want[0] || row[1] != want[1] || row[2] != want[2] || row[4] != fmt.Sprintf("%.4f", w.Reward) {
			t.Errorf("top-rung candidate %d: page %q, show trial %s, seeds %s, accuracy %s, reward %.4f", i, row, want[0], want[1], want[2], w.Reward)
		}
	}
	byNumber := map[string]trialJSON{}
	for _, tr := range s.Trials {
		byNumber[strconv.Itoa(tr.Number)] = tr
	}
	if len(p.Rows) != min(len(s.Trials), 100) {
		t.Errorf("page shows %d trials, show has %d", len(p.Rows), len(s.Trials))
	}
	for _, r := range p.Rows {
		tr, ok := byNumber[r.Number]
		if !ok {
			t.Errorf("page shows trial %s, show does not", r.Number)
			continue
		}
		want := pageRow{Number: r.Number, State: string(tr.State), Rung: strconv.Itoa(tr.Rung), Seed: strconv.Itoa(tr.Seed),
			Acc: f4(tr.Accuracy), Reward: f4(tr.Reward), Test: f4(tr.TestAccuracy), Params: fmtCount(tr.Params), FLOPs: fmtCount(tr.FLOPs),
			Seconds: fmt.Sprintf("%.1f", tr.Seconds), Attempt: strconv.Itoa(tr.Attempt), Crashes: strconv.Itoa(tr.Crashes)}
		if r != want {
			t.Errorf("trial %s: page %+v\nshow %+v", r.Number, r, want)
		}
	}
}

// TestDashboardMatchesShow serves a SQLite study with effnas dashboard,
// reads its page in Chromium and checks the numbers against effnas show
// --json; then finishes trials while the page is open and checks that
// they appear without a reload, and that the numbers still agree.
func TestDashboardMatchesShow(t *testing.T) {
	chromium := testenv.Chromium(t)
	path := filepath.Join(t.TempDir(), "effnas.db")
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := newDashStudy(t, st)
	for range 16 {
		d.next()
	}
	base, _ := startDashboard(t, "--db", path, "--addr", "127.0.0.1:0")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1360, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/studies/"+strconv.FormatInt(d.study.ID, 10))); err != nil {
		t.Fatal(err)
	}
	read := func() pageNumbers {
		t.Helper()
		p, err := chromedp.Run(ctx, chromedp.Evaluate[pageNumbers](readPage))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	checkAgainstShow(t, read(), showOf(t, path, d.study.ID))

	var delays []time.Duration
	for range 2 {
		tr := d.next()
		start := time.Now()
		want := "-"
		if tr.State == store.TrialComplete {
			want = fmt.Sprintf("%.4f", tr.Accuracy)
		}
		pred := fmt.Sprintf(`(() => { const r = document.querySelector("#trial-%d"); return r && r.querySelector("td.state").textContent === %q && r.querySelector("td.acc").textContent === %q; })()`,
			tr.Number, tr.State, want)
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](pred, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Fatalf("trial %d (%s) did not appear on the open page within 10s: %v", tr.Number, tr.State, err)
		}
		delays = append(delays, time.Since(start))
	}
	t.Logf("finished trials appeared on the open page after %v", delays)
	checkAgainstShow(t, read(), showOf(t, path, d.study.ID))
}

// TestDashboardCommand checks the command's flags and what it refuses.
func TestDashboardCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "effnas.db")
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := newDashStudy(t, st)
	d.next()
	st.Close()

	t.Run("loopback by default", func(t *testing.T) {
		if defaultDashboardAddr != "127.0.0.1:8080" {
			t.Errorf("default --addr %s, want 127.0.0.1:8080", defaultDashboardAddr)
		}
		_, stderr := startDashboard(t, "--db", path, "--addr", "127.0.0.1:0")
		if strings.Contains(stderr.String(), "warning") {
			t.Errorf("a loopback address warns:\n%s", stderr)
		}
	})
	t.Run("elsewhere warns", func(t *testing.T) {
		base, stderr := startDashboard(t, "--db", path, "--addr", "0.0.0.0:0")
		if !strings.Contains(stderr.String(), "warning: --addr 0.0.0.0:0 serves the dashboard beyond this machine") {
			t.Errorf("binding every interface does not warn:\n%s", stderr)
		}
		if code, _ := httpGet(t, base+"/"); code != 200 {
			t.Errorf("GET /: %d", code)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--db", filepath.Join(t.TempDir(), "nothing.db")}, "no database"},
		{"bad address", []string{"--db", path, "--addr", "8080"}, "--addr \"8080\": want host:port"},
		{"stray argument", []string{"--db", path, "extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCmd(t, append([]string{"dashboard"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("effnas dashboard %s: %v, want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
			}
		})
	}
	if _, err := runCmd(t, "dashboard", "--db", filepath.Join(t.TempDir(), "nothing.db")); err == nil {
		t.Error("a missing file was opened")
	} else if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "nothing.db*")); len(matches) > 0 {
		t.Errorf("a missing file was created: %v", matches)
	}
}

// TestDashboardPostgres serves a PostgreSQL database through a role with
// a password: pages work, and neither the command nor any page shows the
// password or the URL.
func TestDashboardPostgres(t *testing.T) {
	full := testenv.PostgresPasswordURL(t)
	u, err := url.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	db := testenv.PostgresSchema(t, full)
	st, err := postgres.Open(t.Context(), db, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := newDashStudy(t, st)
	for range 6 {
		d.next()
	}
	st.Close()
	base, stderr := startDashboard(t, "--db", db, "--addr", "127.0.0.1:0")
	sid := strconv.FormatInt(d.study.ID, 10)
	for _, p := range []string{"/", "/studies/" + sid, "/api/studies", "/api/studies/" + sid, "/studies/999", "/api/studies/" + sid + "/trials"} {
		code, body := httpGet(t, base+p)
		if code != 200 && p != "/studies/999" {
			t.Errorf("GET %s: %d\n%.300s", p, code, body)
		}
		for _, secret := range []string{pw, u.Host, "postgres://"} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s shows %q", p, secret)
			}
		}
	}
	if strings.Contains(stderr.String(), pw) {
		t.Errorf("effnas dashboard printed the password:\n%s", stderr)
	}
}

// readOnlyRoleURL returns a schema of the test server holding two search
// studies with finished trials, written by the superuser, as the
// superuser's URL and as that of the role that may only read
// (EFFNAS_PG_RO_URL). As a read-only deployment grants, the role may
// read every table and create nothing: without CREATE on the schema, a
// migration's first statement (CREATE TABLE IF NOT EXISTS, even of a
// table that exists) is refused, so a command that migrates fails.
func readOnlyRoleURL(t *testing.T) (admin, ro string, studies []*dashStudy) {
	t.Helper()
	admin = testenv.PostgresSchema(t, testenv.PostgresURL(t))
	ro = testenv.PostgresReadOnlyURL(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	sep := "?"
	if strings.Contains(ro, "?") {
		sep = "&"
	}
	ro += sep + "search_path=" + schema
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "REVOKE CREATE ON SCHEMA "+schema+" FROM PUBLIC"); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(t.Context(), admin, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, n := range []struct {
		name   string
		trials int
	}{{"first", 16}, {"second", 7}} {
		d := newDashStudyNamed(t, st, n.name)
		for range n.trials {
			d.next()
		}
		studies = append(studies, d)
	}
	return admin, ro, studies
}

// TestDashboardReadOnlyRole serves, through effnas dashboard, studies a
// superuser wrote to PostgreSQL, connected as a role that may only read:
// every page and /api/ endpoint answers, the studies, counts and trials
// are those in the database, the best candidate is effnas show's, and
// nothing was written. A dashboard that migrated on opening, or wrote
// anything, would be refused by the server and fail here.
func TestDashboardReadOnlyRole(t *testing.T) {
	admin, ro, studies := readOnlyRoleURL(t)
	st, err := postgres.Open(t.Context(), admin, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// snapshot is every study and trial as the superuser reads them.
	snapshot := func() string {
		t.Helper()
		all, err := st.Studies(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(all)
		for _, s := range all {
			trials, err := st.Trials(t.Context(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			tb, _ := json.Marshal(trials)
			b = append(b, tb...)
		}
		return string(b)
	}
	before := snapshot()
	u, err := url.Parse(ro)
	if err != nil {
		t.Fatal(err)
	}
	roPW, _ := u.User.Password()

	base, stderr := startDashboard(t, "--db", ro, "--addr", "127.0.0.1:0")
	getJSON := func(p string, v any) {
		t.Helper()
		code, body := httpGet(t, base+p)
		if code != 200 {
			t.Fatalf("GET %s as the read-only role: %d\n%.300s", p, code, body)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("GET %s: %v\n%.300s", p, err, body)
		}
	}

	var sums []dashboard.Summary
	getJSON("/api/studies", &sums)
	if len(sums) != len(studies) {
		t.Fatalf("/api/studies lists %d studies, want %d", len(sums), len(studies))
	}
	byID := map[int64]dashboard.Summary{}
	for _, s := range sums {
		byID[s.ID] = s
	}
	var ids []string
	for _, d := range studies {
		id := strconv.FormatInt(d.study.ID, 10)
		ids = append(ids, id)
		c, err := st.CountTrials(t.Context(), d.study.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := byID[d.study.ID]; !ok || s.Name != d.study.Name || s.Progress.Counts != c {
			t.Errorf("/api/studies has study %d as %q with counts %+v; the database has %q, %+v", d.study.ID, s.Name, s.Progress.Counts, d.study.Name, c)
		}

		want, err := st.Trials(t.Context(), d.study.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got dashboard.TrialsJSON
		getJSON("/api/studies/"+id+"/trials", &got)
		if got.Total != len(want) || len(got.Trials) != len(want) {
			t.Errorf("study %s: /trials has %d of %d trials, the database %d", id, len(got.Trials), got.Total, len(want))
		}
		byNumber := map[int]dashboard.Trial{}
		for _, tr := range got.Trials {
			byNumber[tr.Number] = tr
		}
		for _, w := range want {
			g, ok := byNumber[w.Number]
			wantAcc := "null"
			if w.State == store.TrialComplete {
				wantAcc = strconv.FormatFloat(w.Accuracy, 'g', -1, 64)
			}
			gotAcc := "null"
			if g.Accuracy != nil {
				gotAcc = strconv.FormatFloat(*g.Accuracy, 'g', -1, 64)
			}
			if !ok || g.State != w.State || g.Key != w.Key || g.Rung != w.Rung || g.Seed != w.Seed || gotAcc != wantAcc {
				t.Errorf("study %s trial %d: served %s, rung %d, seed %d, accuracy %s, key %q; the database has %s, rung %d, seed %d, accuracy %s, key %q",
					id, w.Number, g.State, g.Rung, g.Seed, gotAcc, g.Key, w.State, w.Rung, w.Seed, wantAcc, w.Key)
			}
		}

		var sj dashboard.StudyJSON
		getJSON("/api/studies/"+id, &sj)
		show := showOf(t, admin, d.study.ID)
		switch {
		case show.Best == nil || len(show.Standings) == 0:
			if sj.Best != nil {
				t.Errorf("study %s: the dashboard's best is trial %d, effnas show has none", id, sj.Best.Trial)
			}
		case sj.Best == nil:
			t.Errorf("study %s: the dashboard has no best, effnas show has trial %d", id, show.Best.Number)
		case sj.Best.Trial != show.Best.Number || sj.Best.Seeds != show.Standings[0].Seeds || sj.Best.Accuracy != show.Standings[0].Accuracy:
			t.Errorf("study %s: best trial %d, %d seeds, accuracy %v; effnas show: trial %d, %d seeds, accuracy %v",
				id, sj.Best.Trial, sj.Best.Seeds, sj.Best.Accuracy, show.Best.Number, show.Standings[0].Seeds, show.Standings[0].Accuracy)
		}
		if d == studies[0] && sj.Best == nil {
			t.Errorf("study %s: no best candidate after %d trials; the test needs one", id, 16)
		}

		// The page shows the same numbers.
		code, page := httpGet(t, base+"/studies/"+id)
		if code != 200 || !strings.Contains(page, d.study.Name) {
			t.Errorf("GET /studies/%s: %d, name %q shown: %v", id, code, d.study.Name, strings.Contains(page, d.study.Name))
		}
		if sj.Best != nil && !strings.Contains(page, fmt.Sprintf("%.4f", sj.Best.Accuracy)) {
			t.Errorf("GET /studies/%s does not show the best accuracy %.4f", id, sj.Best.Accuracy)
		}
		for _, fig := range []string{"best", "pareto", "parallel", "rungs", "b0"} {
			var v map[string]any
			getJSON("/api/studies/"+id+"/"+fig, &v)
		}
	}
	for _, p := range []string{"/", "/compare?id=" + ids[0] + "&id=" + ids[1], "/api/compare?id=" + ids[0] + "," + ids[1], "/api/version"} {
		code, body := httpGet(t, base+p)
		if code != 200 {
			t.Errorf("GET %s as the read-only role: %d\n%.300s", p, code, body)
		}
		if p == "/" && (!strings.Contains(body, "first") || !strings.Contains(body, "second")) {
			t.Errorf("GET /: the studies' names are not listed")
		}
		if strings.Contains(body, roPW) {
			t.Errorf("GET %s shows the role's password", p)
		}
	}
	if after := snapshot(); after != before {
		t.Error("the database changed while the dashboard served it")
	}
	if strings.Contains(stderr.String(), roPW) {
		t.Errorf("effnas dashboard printed the password:\n%s", stderr)
	}
}
