package dashboard

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store/sqlite"
)

// browser starts a headless Chromium for the test and returns a tab's
// context. The flags keep it off the network: no background requests,
// component updates, sync or QUIC, which a closed network refuses.
func browser(t testing.TB) context.Context {
	t.Helper()
	path := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1360, 1000),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	// Start the browser now (with no deadline: one on the first run would
	// stop the browser when it passes), so that a broken one fails here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// screenshotDir is where screenshots go: $EFFNAS_SCREENSHOTS (a relative
// path is taken from the module's root, so that
// EFFNAS_SCREENSHOTS=docs/img refreshes the README's images), else the
// test's temporary directory. Never the package's own directory.
func screenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EFFNAS_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = fromModule(t, "EFFNAS_SCREENSHOTS", dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fromModule returns path as the environment variable name gives it,
// taken from the module's root when it is relative (go test runs in the
// package's directory, where nobody means it).
func fromModule(t testing.TB, name, path string) string {
	t.Helper()
	if filepath.IsAbs(path) {
		return path
	}
	root, err := filepath.Abs("../../..") // cmd/effnas/dashboard -> the module
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("%s=%s: the module root %s has no go.mod: %v", name, path, root, err)
	}
	return filepath.Join(root, path)
}

// screenshot saves the page as a PNG, from the top down to the bottom of
// the element upTo (the whole page when upTo is ""), plus a margin. A
// missing upTo fails the test: the picture would not be the one meant.
func screenshot(t testing.TB, ctx context.Context, dir, name, upTo string) {
	t.Helper()
	size, err := chromedp.Run(ctx, chromedp.Evaluate[[2]float64](`(() => {
  const el = `+strconv.Quote(upTo)+` && document.querySelector(`+strconv.Quote(upTo)+`);
  const h = document.documentElement.scrollHeight;
  return [document.documentElement.scrollWidth, el ? Math.min(h, el.getBoundingClientRect().bottom + window.scrollY + 14) : (`+strconv.Quote(upTo)+` ? -1 : h)];
})()`))
	if err != nil {
		t.Fatal(err)
	}
	if size[1] < 0 {
		t.Fatalf("screenshot %s: the page has no %s to end the picture at", name, upTo)
	}
	png, err := chromedp.Run(ctx, chromedp.Action[[]byte](func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		yes := true
		r, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng,
			Clip: &page.Viewport{Width: size[0], Height: size[1], Scale: 1}, CaptureBeyondViewport: &yes, FromSurface: &yes})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	}))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path+".tmp", png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%dx%.0f, %d KB)", path, int(size[0]), size[1], len(png)>>10)
}

// catchErrors makes every page the tab opens collect its script errors,
// rejected promises and Content-Security-Policy violations in
// window.__errors.
func catchErrors(t testing.TB, ctx context.Context) {
	t.Helper()
	const script = `window.__errors = [];
addEventListener("error", e => window.__errors.push("error: " + e.message));
addEventListener("unhandledrejection", e => window.__errors.push("rejected: " + e.reason));
document.addEventListener("securitypolicyviolation", e => window.__errors.push("CSP: " + e.violatedDirective + " " + e.blockedURI));`
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
}

// noErrors fails the test if the open page collected an error.
func noErrors(t testing.TB, ctx context.Context, where string) {
	t.Helper()
	errs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__errors || ["the error catcher did not run"]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Errorf("%s: the page reported %q", where, errs)
	}
}

// open navigates and waits for the load event.
func open(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// text returns an element's textContent ("" when there is none).
func text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {textContent: ""}).textContent.trim()`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls a JavaScript predicate until it is true or 10 seconds
// pass (a loaded CI machine is slow), and returns how long it took.
func waitFor(t testing.TB, ctx context.Context, what, predicate string) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("%s: not within 10s: %v", what, err)
	}
	return time.Since(start)
}

// TestBrowserLive opens a running search's page and the studies list in
// Chromium while trials finish, and measures how long a finished trial
// takes to show.
func TestBrowserLive(t *testing.T) {
	f := newFixture(t)
	s, src := f.searchStudy("live search", 30, halving)
	for range 3 {
		f.step(s, src, 4, 0)
	}
	st, err := sqlite.Open(t.Context(), f.path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(New(st, Options{})) // pages look for changes every DefaultPoll
	defer srv.Close()
	ctx := browser(t)
	catchErrors(t, ctx)
	sid := strconv.FormatInt(s.ID, 10)

	open(t, ctx, srv.URL+"/studies/"+sid)
	var delays []time.Duration
	for range 4 {
		tr := f.finish(f.claimOne(s, src), src)
		row := fmt.Sprintf("#trial-%d", tr.Number)
		delays = append(delays, waitFor(t, ctx, "trial "+strconv.Itoa(tr.Number)+" complete on the page",
			fmt.Sprintf(`(document.querySelector(%q)||{}).textContent === "complete" && (document.querySelector(%q)||{}).textContent === %q`,
				row+" td.state", row+" td.acc", fmtAcc(tr.Accuracy))))
	}
	// The page's numbers follow: finished trials and the best.
	done := 0
	c, err := f.st.CountTrials(f.ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	done = c.Complete + c.Failed
	if got := text(t, ctx, "#done"); got != strconv.Itoa(done) {
		t.Errorf("the page says %s trials finished, the store %d", got, done)
	}
	noErrors(t, ctx, "study page")

	open(t, ctx, srv.URL+"/")
	f.finish(f.claimOne(s, src), src)
	delays = append(delays, waitFor(t, ctx, "the studies list counts the new trial",
		fmt.Sprintf(`(document.querySelector("#study-%d .done")||{}).textContent === "%d"`, s.ID, done+1)))
	noErrors(t, ctx, "studies list")
	slices.Sort(delays)
	t.Logf("a finished trial showed on the open page after %v (median %v, longest %v; pages look for changes every 750ms)",
		delays, delays[len(delays)/2], delays[len(delays)-1])
}

// TestBrowserEscapes opens studies whose name and error text are markup,
// and checks that they are shown as text and nothing ran.
func TestBrowserEscapes(t *testing.T) {
	f := newFixture(t)
	name := `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`
	s, src := f.searchStudy(name, 6, search.Halving{Rungs: 1})
	f.run(s, src, 3)
	other, osrc := f.searchStudy("other", 4, search.Halving{Rungs: 1})
	f.run(other, osrc, 0)
	st, err := sqlite.Open(t.Context(), f.path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(New(st, Options{}))
	defer srv.Close()
	ctx := browser(t)
	catchErrors(t, ctx)
	sid := strconv.FormatInt(s.ID, 10)
	for _, p := range []string{"/", "/studies/" + sid, "/studies/" + sid + "?state=failed", "/compare?id=" + sid + "&id=" + strconv.FormatInt(other.ID, 10)} {
		open(t, ctx, srv.URL+p)
		pwned, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned !== undefined || document.querySelector("main script, main img") !== null`))
		if err != nil {
			t.Fatal(err)
		}
		if pwned {
			t.Errorf("%s: markup from the database ran or became an element", p)
		}
		shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("main").textContent.includes(`+strconv.Quote(name)+`)`))
		if err != nil {
			t.Fatal(err)
		}
		if !shown {
			t.Errorf("%s: the study's name is not shown as text", p)
		}
		noErrors(t, ctx, p)
	}
	legend, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("svg text.legend")].map(e => e.textContent).join("|")`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(legend, name) {
		t.Errorf("compare: the figures' legends %q do not show the name as text", legend)
	}
}

// TestBrowserTable sorts and filters the trial table by its controls.
func TestBrowserTable(t *testing.T) {
	path, ids := studies(t)
	srv := serve(t, path)
	ctx := browser(t)
	catchErrors(t, ctx)
	open(t, ctx, srv.URL+"/studies/"+strconv.FormatInt(ids["search"], 10))
	column := func(cls string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#trial-table tbody td.`+cls+`")].map(td => td.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Sort by reward: click the header, best first, unfinished last.
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`#trial-table th a[href*="sort=reward"]`)))); err != nil {
		t.Fatal(err)
	}
	rewards := column("rew")
	for i := 1; i < len(rewards); i++ {
		if rewards[i] != "-" && (rewards[i-1] == "-" || rewards[i-1] < rewards[i]) {
			t.Fatalf("rewards after sorting: %v, want descending with unfinished last", rewards)
		}
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "sort=reward") {
		t.Errorf("sorted page's address %s", loc)
	}
	// Filter: failed trials only.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`select[name=state]`), "failed")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Submit(chromedp.CSS(`form.filter`)))); err != nil {
		t.Fatal(err)
	}
	states := column("state")
	if len(states) == 0 {
		t.Fatal("no failed trial listed")
	}
	for _, s := range states {
		if s != "failed" {
			t.Fatalf("states after filtering failed: %v", states)
		}
	}
	noErrors(t, ctx, "trial table")
}

// TestBrowserLoadBigStudy loads the page of a study of 10,000 trials and
// measures when the browser's load event comes: under 3 seconds.
func TestBrowserLoadBigStudy(t *testing.T) {
	path, id := bigStudy(t)
	srv := serve(t, path)
	ctx := browser(t)
	catchErrors(t, ctx)
	limit := 3 * time.Second
	if raceEnabled {
		limit = 10 * time.Second // the race detector slows the server three to five times
	}
	// The first load in a fresh tab, then a second one.
	for _, what := range []string{"first", "second"} {
		open(t, ctx, srv.URL+"/studies/"+strconv.FormatInt(id, 10))
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(() => { const n = performance.getEntriesByType("navigation")[0]; return n.loadEventEnd - n.startTime; })()`))
		if err != nil {
			t.Fatal(err)
		}
		load := time.Duration(ms * float64(time.Millisecond))
		t.Logf("the page of a study of %d trials, %s load: load event after %v (limit %v)", bigTrials, what, load.Round(time.Millisecond), limit)
		if load > limit {
			t.Errorf("%s load: load event after %v, want under %v", what, load, limit)
		}
		noErrors(t, ctx, "big study")
	}
}
