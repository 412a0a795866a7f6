package dashboard

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store/sqlite"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// tinyScreen is a tiny one-shot search, as cmd/effnas's screenArgs: 40
// candidates screened on a supernet of 60 steps (checkpoints every 20),
// the best 3 trained at one rung, on a proxy of 256 MNIST images at
// 16x16 and width 0.25.
func tinyScreen() search.Config {
	px := search.Proxy{TrainSize: 256, ValSize: 128, TestSize: 64, Width: 0.25, Res: 16, Halving: search.Halving{Rungs: 1, TopSeeds: 1}}
	px.Train.Batch = 32
	return search.Config{Trials: 3, Seed: 3, Proxy: px,
		Screen: &search.Screen{N: 40, CheckpointEvery: 20, Supernet: trainer.SupernetConfig{Steps: 60, Calib: 2, ScoreImages: 64}}}
}

// screenStudy runs a tiny one-shot search to the end with search.Run:
// the supernet trains, the 40 candidates are scored and the best 3 are
// trained.
func (f *fixture) screenStudy(name string) store.Study {
	f.t.Helper()
	study, err := search.Create(f.ctx, f.st, name, tinyScreen())
	f.must(err)
	src, err := search.Open(f.ctx, f.st, study)
	f.must(err)
	start := time.Now()
	sum, err := search.Run(f.ctx, f.st, study, src, search.Options{Workers: 2})
	f.must(err)
	if !sum.Complete {
		f.t.Fatalf("the one-shot search did not complete: %+v", sum)
	}
	f.t.Logf("a tiny one-shot search (40 screened, 3 trained) ran in %v", time.Since(start).Round(time.Millisecond))
	study, err = f.st.Study(f.ctx, study.ID)
	f.must(err)
	return study
}

// madeUpScreen writes through the store what a one-shot search writes
// (search.Run with tinyScreen's screening), with made-up scores instead of
// a trained supernet, step by step: the supernet's claim and checkpoints,
// candidates scored in chunks, the best 3 by reward promoted to rung 0 and
// trained there. A real screening takes a minute under the race detector.
type madeUpScreen struct {
	f      *fixture
	study  store.Study
	src    *search.Searcher
	cands  []store.Screened // every candidate, scored or not
	scored int
}

const screenWorker = "made-up:1"

// newMadeUpScreen creates the study and draws its 40 candidates.
func (f *fixture) newMadeUpScreen(name string) *madeUpScreen {
	f.t.Helper()
	study, err := search.Create(f.ctx, f.st, name, tinyScreen())
	f.must(err)
	src, err := search.Open(f.ctx, f.st, study)
	f.must(err)
	m := &madeUpScreen{f: f, study: study, src: src}
	sp := src.Space()
	r := rand.New(rand.NewPCG(study.Seed, 1))
	seen := map[string]bool{}
	for len(m.cands) < src.Config().Screen.N {
		c := sp.Sample(r)
		key := sp.Key(c)
		if seen[key] {
			continue
		}
		seen[key] = true
		arch, err := sp.Decode(c)
		f.must(err)
		choices, err := json.Marshal(c)
		f.must(err)
		// A score as V = 64 images give it, larger networks a little better.
		h := fnv.New32a()
		h.Write([]byte(key))
		score := float64(min(63, 8+int(h.Sum32()%20)+int(arch.FLOPs()/100_000_000))) / 64
		m.cands = append(m.cands, store.Screened{Number: len(m.cands), Key: key, Choices: choices, Blocks: space.FormatBlocks(arch.Blocks),
			Params: arch.Params(), FLOPs: arch.FLOPs(), Score: score, Reward: src.Reward(store.Trial{FLOPs: arch.FLOPs()}, score)})
	}
	return m
}

// claim claims the supernet for training.
func (m *madeUpScreen) claim() {
	m.f.t.Helper()
	_, ok, err := m.f.st.ClaimSupernet(m.f.ctx, m.study.ID, screenWorker, time.Hour)
	m.f.must(err)
	if !ok {
		m.f.t.Fatal("the supernet could not be claimed")
	}
}

// checkpoint saves the supernet at step (the budget: done).
func (m *madeUpScreen) checkpoint(step int, scoreSeconds float64) {
	m.f.t.Helper()
	sc := m.src.Config().Screen
	meta := fmt.Sprintf(`{"score_seconds": %g}`, scoreSeconds)
	m.f.must(m.f.st.SaveSupernet(m.f.ctx, screenWorker, store.SupernetCheckpoint{Study: m.study.ID, Step: step,
		Checkpoints: step / sc.CheckpointEvery, Seconds: 0.05 * float64(step), Done: step >= sc.Supernet.Steps, Meta: []byte(meta), Weights: []byte{1}}, time.Hour))
}

// score records the next n candidates as scored at step.
func (m *madeUpScreen) score(n, step int) {
	m.f.t.Helper()
	rows := slices.Clone(m.cands[m.scored : m.scored+n])
	for i := range rows {
		rows[i].Step = step
	}
	m.f.must(m.f.st.AddScreened(m.f.ctx, m.study.ID, rows))
	m.scored += n
}

// promote promotes the best Trials by reward (ties: the first scored) and
// plans them at rung 0, as the search does.
func (m *madeUpScreen) promote() []store.Screened {
	m.f.t.Helper()
	best := slices.Clone(m.cands[:m.scored])
	slices.SortStableFunc(best, func(a, b store.Screened) int { return cmp.Compare(b.Reward, a.Reward) })
	best = best[:m.src.Config().Trials]
	var numbers []int
	var plans []store.Plan
	for _, c := range best {
		numbers = append(numbers, c.Number)
		plans = append(plans, store.Plan{Key: c.Key, Choices: c.Choices, Blocks: c.Blocks, Params: c.Params, FLOPs: c.FLOPs})
	}
	m.f.must(m.f.st.PromoteScreened(m.f.ctx, m.study.ID, numbers))
	_, err := m.f.st.PlanTrials(m.f.ctx, m.study.ID, plans, nil)
	m.f.must(err)
	return best
}

// all runs the whole screening and trains the promoted: the supernet to
// its budget, every candidate scored, the best promoted, the study
// complete.
func (m *madeUpScreen) all() store.Study {
	m.f.t.Helper()
	m.claim()
	sc := m.src.Config().Screen
	for step := sc.CheckpointEvery; step <= sc.Supernet.Steps; step += sc.CheckpointEvery {
		m.checkpoint(step, 0)
	}
	m.score(32, sc.Supernet.Steps)
	m.score(sc.N-32, sc.Supernet.Steps)
	m.checkpoint(sc.Supernet.Steps, 1.6)
	m.f.must(m.f.st.ReleaseSupernet(m.f.ctx, m.study.ID, screenWorker))
	m.promote()
	claimed, err := m.f.st.ClaimTrials(m.f.ctx, m.study.ID, store.Claim{Worker: "fixture", Limit: 10, Lease: time.Hour})
	m.f.must(err)
	for _, t := range claimed {
		m.f.finish(t, m.src)
	}
	m.f.must(m.f.st.SetStudyStatus(m.f.ctx, m.study.ID, store.StudyComplete))
	study, err := m.f.st.Study(m.f.ctx, m.study.ID)
	m.f.must(err)
	return study
}

// barTitle reads a histogram bar: its rectangle and its tooltip.
var barTitle = regexp.MustCompile(`<path d="([^"]*)" class="(hbar(?: promoted)?)"><title>scores ([0-9.]+) to ([0-9.]+): (\d+) candidates, (\d+) promoted</title></path>`)

// barHeight is the height in pixels of a bar's rectangle.
func barHeight(t *testing.T, d string) float64 {
	t.Helper()
	var x0, y0, x1, y1, x2, y2, x3, y3 float64
	if _, err := fmt.Sscanf(d, "M%g %g L%g %g L%g %g L%g %g Z", &x0, &y0, &x1, &y1, &x2, &y2, &x3, &y3); err != nil {
		t.Fatalf("bar %q: %v", d, err)
	}
	return y0 - y2
}

// TestScreeningShown: a one-shot search's page has a screening card with
// the supernet's training, the counts, K, V, the binomial sd, the score
// range, a histogram of ten bars whose promoted parts are drawn, and the
// best five by reward, and no row per screened candidate; its JSON has
// screened, supernet and screening as search.ScreenOf computes them. A
// search without screening has no card, "supernet": null and no
// "screening".
func TestScreeningShown(t *testing.T) {
	f := newFixture(t)
	s := f.newMadeUpScreen("one-shot").all()
	plain, psrc := f.searchStudy("plain", 5, search.Halving{Rungs: 1})
	f.run(plain, psrc, 0)
	srv := serve(t, f.path)
	checkScreening(t, f, srv, s)

	_, _, page := get(t, fmt.Sprintf("%s/studies/%d", srv.URL, plain.ID))
	if strings.Contains(page, "One-shot screening") || strings.Contains(page, `id="screening"`) {
		t.Error("a search without screening shows a screening card")
	}
	_, _, body := get(t, fmt.Sprintf("%s/api/studies/%d", srv.URL, plain.ID))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["screened"]) != "0" || string(raw["supernet"]) != "null" || raw["screening"] != nil {
		t.Errorf("a search without screening: screened %s, supernet %s, screening %s; want 0, null and none", raw["screened"], raw["supernet"], raw["screening"])
	}
}

// TestScreeningShownRun: the page of a one-shot search that search.Run
// really screened and trained shows its screening as ScreenOf reads it.
// It trains a supernet: 3 seconds, but a minute under the race detector,
// where it is skipped (TestScreeningShown checks the same page on a
// made-up screening).
func TestScreeningShownRun(t *testing.T) {
	if raceEnabled {
		t.Skip("trains a supernet, which takes a minute under the race detector; run it without -race")
	}
	f := newFixture(t)
	s := f.screenStudy("one-shot")
	checkScreening(t, f, serve(t, f.path), s)
}

// checkScreening checks the page and JSON of study s, a finished tiny
// screening (tinyScreen), against search.ScreenOf.
func checkScreening(t *testing.T, f *fixture, srv *httptest.Server, s store.Study) {
	t.Helper()
	n, wantSN, want, err := search.ScreenOf(f.ctx, f.st, s)
	f.must(err)
	if n != 40 || wantSN == nil || want == nil || want.Promoted != 3 {
		t.Fatalf("the fixture screened %d, supernet %+v, summary %+v; want 40 screened and 3 promoted", n, wantSN, want)
	}

	_, _, page := get(t, fmt.Sprintf("%s/studies/%d", srv.URL, s.ID))
	for _, w := range []string{
		"One-shot screening",
		"search of 3 candidates, the best of 40 screened on a supernet",
		"<h3>The best 5 by reward</h3>",
		`<span id="supernet-steps">60 of 60 steps</span>`,
		`<span id="supernet-checkpoints">3 checkpoints</span> <span class="tag">trained</span>`,
		`<span id="screened">40 of 40</span>`,
		`<span id="promoted">3</span>`,
		`<span id="screen-k">2</span>`,
		`<span id="screen-v">64</span>`,
		`<dd id="screen-sd">` + fmtAcc(want.BinomialSD) + `</dd>`,
		`<span id="score-range">` + fmtAcc(want.ScoreMin) + ` to ` + fmtAcc(want.ScoreMax) + `</span>`,
		`<dd id="promoted-score">` + fmtAcc(want.PromotedScore) + `</dd>`,
		"lowest promoted " + fmtAcc(want.PromotedScore),
	} {
		if !strings.Contains(page, w) {
			t.Errorf("the one-shot search's page does not show %s", w)
		}
	}
	// The histogram: a bar per bin with the bin's count, and a promoted
	// part for each bin with promoted candidates.
	// The bars' heights are their counts on one scale.
	var bars, promoted []int
	var barsPromoted []int
	scale := 0.0 // pixels per candidate
	for _, m := range barTitle.FindAllStringSubmatch(page, -1) {
		total, _ := strconv.Atoi(m[5])
		prom, _ := strconv.Atoi(m[6])
		n := total
		if m[2] == "hbar" {
			bars, barsPromoted = append(bars, total), append(barsPromoted, prom)
		} else {
			promoted = append(promoted, prom)
			n = prom
		}
		h := barHeight(t, m[1])
		if scale == 0 && n > 0 {
			scale = h / float64(n)
		}
		if math.Abs(h-scale*float64(n)) > 0.25 || h < 0 || n > 0 && h < 1 {
			t.Errorf("the %s bar of scores %s to %s, %d candidates, is %.1f pixels tall; want %.1f (%.2f a candidate)", m[2], m[3], m[4], n, h, scale*float64(n), scale)
		}
	}
	if !slices.Equal(bars, want.Histogram) || !slices.Equal(barsPromoted, want.HistogramPromoted) {
		t.Errorf("histogram bars %v (promoted %v); want %v (promoted %v)", bars, barsPromoted, want.Histogram, want.HistogramPromoted)
	}
	var wantParts []int
	for _, p := range want.HistogramPromoted {
		if p > 0 {
			wantParts = append(wantParts, p)
		}
	}
	if !slices.Equal(promoted, wantParts) {
		t.Errorf("promoted parts drawn %v; want %v", promoted, wantParts)
	}
	// The best five, and no row for each candidate.
	top := regexp.MustCompile(`(?s)<table class="screen-top">.*?</table>`).FindString(page)
	if rows := strings.Count(top, "<tr><td"); rows != 5 {
		t.Errorf("the best by reward: %d rows, want 5", rows)
	}
	for _, r := range want.Top {
		if !strings.Contains(top, fmt.Sprintf(`<td title="%s"><code>%s</code></td><td class="num">%s</td><td class="num">%s</td>`, r.Key, shortKey(r.Key), fmtAcc(r.Score), fmtAcc(r.Reward))) {
			t.Errorf("the best by reward do not list candidate %d (%s, score %s, reward %s)", r.Number, r.Key, fmtAcc(r.Score), fmtAcc(r.Reward))
		}
	}
	if got := strings.Count(top, `class="tag promoted"`); got != 3 {
		t.Errorf("%d of the best five tagged promoted; want the 3 promoted", got)
	}
	rows, err := f.st.Screened(f.ctx, s.ID)
	f.must(err)
	for _, r := range rows {
		if !slices.ContainsFunc(want.Top, func(top store.Screened) bool { return top.Number == r.Number }) && strings.Contains(page, r.Key) {
			t.Errorf("screened candidate %d (%s), not among the best five, has a row of its own", r.Number, r.Key)
		}
	}

	_, _, body := get(t, fmt.Sprintf("%s/api/studies/%d", srv.URL, s.ID))
	var got struct {
		Screened  int                    `json:"screened"`
		Supernet  *search.SupernetReport `json:"supernet"`
		Screening *search.ScreenReport   `json:"screening"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Screened != 40 || got.Supernet == nil || *got.Supernet != *wantSN || got.Screening == nil {
		t.Fatalf("JSON: screened %d, supernet %+v, screening %v; want 40, %+v and a summary", got.Screened, got.Supernet, got.Screening != nil, *wantSN)
	}
	if g := got.Screening; g.N != 40 || g.Screened != 40 || g.Promoted != 3 || g.K != 2 || g.V != 64 || g.PromotedScore != want.PromotedScore ||
		!slices.Equal(g.Histogram, want.Histogram) || !slices.Equal(g.HistogramPromoted, want.HistogramPromoted) || len(g.Top) != 5 {
		t.Errorf("JSON screening %+v; want %+v", *g, *want)
	}

}

// TestScreeningVersion: a screening changes no trial while its supernet
// trains and its candidates are scored, yet the version of its pages
// changes with each claim, checkpoint and chunk of scores, and not with a
// heartbeat; a search without screening keeps its version.
func TestScreeningVersion(t *testing.T) {
	f := newFixture(t)
	m := f.newMadeUpScreen("one-shot")
	plain, _ := f.searchStudy("plain", 5, search.Halving{Rungs: 1})
	srv := New(f.st, Options{})
	version := func(ids ...int64) string {
		t.Helper()
		v, err := srv.version(f.ctx, ids)
		f.must(err)
		return v
	}
	id := m.study.ID
	seen := map[string]string{}
	changes := func(what string) {
		t.Helper()
		v := version(id)
		if before, ok := seen[v]; ok {
			t.Errorf("%s: the version %s is the one of %s", what, v, before)
		}
		seen[v] = what
	}
	all, other := version(), version(plain.ID)
	changes("created")
	m.claim()
	changes("the supernet claimed")
	f.must(f.st.HeartbeatSupernet(f.ctx, id, screenWorker, time.Hour))
	if v := version(id); seen[v] != "the supernet claimed" {
		t.Errorf("a heartbeat changed the version: it reloads the page for nothing")
	}
	m.checkpoint(20, 0)
	changes("checkpoint at step 20")
	m.checkpoint(40, 0)
	changes("checkpoint at step 40")
	m.checkpoint(60, 0)
	changes("the supernet trained")
	m.score(32, 60)
	changes("32 scored")
	m.score(8, 60)
	changes("40 scored")
	time.Sleep(2 * time.Millisecond) // the store keeps a save's time in milliseconds
	m.checkpoint(60, 1.5)
	changes("the scoring's time saved")
	f.must(f.st.ReleaseSupernet(f.ctx, id, screenWorker))
	changes("the supernet released")
	m.promote()
	changes("the best promoted")
	if version() == all {
		t.Error("the studies list's version did not change with the screening")
	}
	if version(plain.ID) != other {
		t.Error("a search without screening changed its version")
	}
}

// TestBrowserScreeningLive opens a one-shot search's page in Chromium
// while its supernet trains and its candidates are scored (no trial
// changes meanwhile) and waits for the screening card to follow.
func TestBrowserScreeningLive(t *testing.T) {
	f := newFixture(t)
	m := f.newMadeUpScreen("one-shot")
	m.claim()
	st, err := sqlite.Open(t.Context(), f.path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(New(st, Options{Poll: 100 * time.Millisecond}))
	defer srv.Close()
	ctx := browser(t)
	catchErrors(t, ctx)
	open(t, ctx, srv.URL+"/studies/"+strconv.FormatInt(m.study.ID, 10))
	if got := text(t, ctx, "#supernet-steps"); got != "0 of 60 steps" {
		t.Errorf("the card says %q of a supernet just claimed; want 0 of 60 steps", got)
	}
	is := func(sel, want string) string {
		return fmt.Sprintf(`(document.querySelector(%q)||{}).textContent === %q`, sel, want)
	}
	m.checkpoint(20, 0)
	waitFor(t, ctx, "the checkpoint at step 20 on the page", is("#supernet-steps", "20 of 60 steps"))
	m.checkpoint(60, 0)
	m.score(32, 60)
	waitFor(t, ctx, "32 candidates scored on the page", is("#screened", "32 of 40"))
	m.score(8, 60)
	m.promote()
	waitFor(t, ctx, "40 candidates scored and 3 promoted on the page", is("#screened", "40 of 40")+" && "+is("#promoted", "3"))
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#screening svg path.hbar:not(.promoted)").length`))
	if err != nil {
		t.Fatal(err)
	}
	if bars != 10 {
		t.Errorf("the live card's histogram has %d bars, want 10", bars)
	}
	noErrors(t, ctx, "one-shot search")
}

// TestScreenshotScreening saves a PNG of a one-shot search's page down to
// its screening card (dashboard-screening.png), in $EFFNAS_SCREENSHOTS or
// a temporary directory, and checks that the page renders without a
// script error. The search is a tiny one search.Run screens and trains
// (3 seconds; made up under the race detector, where training takes a
// minute), or with EFFNAS_SCREENSHOTS_DB the newest screening search of
// that database:
//
//	EFFNAS_SCREENSHOTS=/tmp/shots go test -count=1 ./cmd/effnas/dashboard -run TestScreenshotScreening
func TestScreenshotScreening(t *testing.T) {
	path, label, source := screenshotDB(t)
	if os.Getenv("EFFNAS_SCREENSHOTS_DB") == "" {
		f := newFixture(t)
		if raceEnabled {
			f.newMadeUpScreen("one-shot").all()
		} else {
			f.screenStudy("one-shot")
		}
		path, label = f.path, "effnas.db"
	}
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	defer st.Close()
	all, err := st.Studies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	for i := len(all) - 1; i >= 0 && id == 0; i-- {
		if all[i].Kind != store.KindSearch {
			continue
		}
		if _, err := st.SupernetInfo(t.Context(), all[i].ID); err == nil {
			id = all[i].ID
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if id == 0 {
		t.Fatalf("%s: no search with one-shot screening; the database holds %s. Make one with 'effnas search --screen N --db DB'", source, listStudies(all))
	}
	srv := httptest.NewServer(New(st, Options{Label: label}))
	defer srv.Close()
	ctx := browser(t)
	catchErrors(t, ctx)
	p := "/studies/" + strconv.FormatInt(id, 10)
	open(t, ctx, srv.URL+p)
	noErrors(t, ctx, p)
	screenshot(t, ctx, screenshotDir(t), "dashboard-screening.png", "#screening")
}
