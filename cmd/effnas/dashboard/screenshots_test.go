package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// TestScreenshots saves a PNG of each of four pages, the README's
// pictures: the studies list (dashboard-studies.png), a search under
// successive halving down to its B0 (dashboard-search.png), a compound
// grid (dashboard-grid.png) and a comparison of two searches
// (dashboard-compare.png).
//
// By default the pages are those of a small synthetic database (made-up
// accuracies) and the PNGs go to a temporary directory: the test checks
// that the four pages render without a script error. The README's
// pictures are of a real study, which docs/bench/screenshots.sh trains
// and then takes with
//
//	EFFNAS_SCREENSHOTS=docs/img EFFNAS_SCREENSHOTS_DB=/tmp/effnas-screenshots/effnas.db \
//		go test -count=1 ./cmd/effnas/dashboard -run TestScreenshots
//
// EFFNAS_SCREENSHOTS names the directory for the PNGs and
// EFFNAS_SCREENSHOTS_DB a SQLite database to serve read-only instead of
// the synthetic one (relative paths are taken from the module's root).
// The pages are chosen by pickShots.
func TestScreenshots(t *testing.T) {
	path, label, source := screenshotDB(t)
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	defer st.Close()
	shots, err := pickShots(t.Context(), st)
	if err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	srv := httptest.NewServer(New(st, Options{Label: label}))
	defer srv.Close()
	ctx := browser(t)
	catchErrors(t, ctx)
	dir := screenshotDir(t)
	for _, p := range shots {
		t.Logf("%s: %s", p.name, p.path)
		open(t, ctx, srv.URL+p.path)
		noErrors(t, ctx, p.path)
		screenshot(t, ctx, dir, p.name, p.upTo)
	}
}

// screenshotDB returns the database TestScreenshots pictures, the label
// its pages show, and how the test's messages name it:
// $EFFNAS_SCREENSHOTS_DB, else a new synthetic database.
func screenshotDB(t *testing.T) (path, label, source string) {
	t.Helper()
	if db := os.Getenv("EFFNAS_SCREENSHOTS_DB"); db != "" {
		path = fromModule(t, "EFFNAS_SCREENSHOTS_DB", db)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("EFFNAS_SCREENSHOTS_DB=%s: %v; want a database made by docs/bench/screenshots.sh", db, err)
		}
		return path, filepath.Base(path), "EFFNAS_SCREENSHOTS_DB=" + db
	}
	return screenshotFixture(t), "effnas.db", "the synthetic database (EFFNAS_SCREENSHOTS_DB is not set)"
}

// screenshotFixture writes a small synthetic database: a finished
// evolution search under successive halving with some failed trials, a
// compound grid and the three single-dimension series on its best
// network, and a random search still running (one trial in training).
func screenshotFixture(t *testing.T) string {
	f := newFixture(t)
	h := search.Halving{Rungs: 3, Eta: 3, TopSeeds: 3, Finalists: 3}
	s, src := f.searchStudy("evolution b0", 60, h)
	for f.step(s, src, 3, 17) > 0 {
		time.Sleep(40 * time.Millisecond) // spread the results in time, as training would
	}
	f.must(f.st.SetStudyStatus(f.ctx, s.ID, store.StudyComplete))
	g, gs := f.gridStudy("grid", s, src, "", search.Halving{Rungs: 2, Eta: 3, TopSeeds: 3, Finalists: 3})
	f.run(g, gs, 0)
	for _, dim := range []string{"width", "depth", "resolution"} {
		d, ds := f.gridStudy(dim, s, src, dim, search.Halving{Rungs: 1})
		f.run(d, ds, 0)
	}
	r, rsrc := f.searchWith("random", "random b0", 40, search.Halving{Rungs: 2, Eta: 3, TopSeeds: 2, Finalists: 2})
	for range 14 {
		f.step(r, rsrc, 3, 0)
		time.Sleep(40 * time.Millisecond)
	}
	f.claimOne(r, rsrc) // one trial running
	return f.path
}

// gridRows ends the grid's picture at the 12th row of its table of points
// (the winner, the points tied with it, the finalists), or at its last row
// when it has fewer: querySelector takes the first match in document
// order. The whole table of a default grid, 76 points, would make the
// picture 3,000 pixels tall.
const gridRows = "#points tbody tr:nth-child(12), #points tbody tr:last-child"

// shot is one picture: the page at path, down to the element upTo.
type shot struct{ name, path, upTo string }

// pickShots chooses the four pages from the database's studies, newest
// meaning the highest id:
//
//   - dashboard-studies.png: the studies list;
//   - dashboard-search.png: the search whose B0 that grid scaled, or
//     without it the newest complete search, down to its B0;
//   - dashboard-grid.png: the newest complete compound grid (no
//     --dimension), down to the 12th row of its table of points (the
//     first picked);
//   - dashboard-compare.png: that search beside the newest other search
//     (complete or not); with no other search, beside that grid, which
//     the compare page also takes (a grid's reward is its accuracy).
//
// A database without a complete search or a complete compound grid is an
// error that says what it holds and how to make what is missing.
func pickShots(ctx context.Context, st store.Store) ([]shot, error) {
	all, err := st.Studies(ctx)
	if err != nil {
		return nil, err
	}
	newest := func(match func(store.Study) bool) *store.Study {
		for i := len(all) - 1; i >= 0; i-- {
			if match(all[i]) {
				return &all[i]
			}
		}
		return nil
	}
	searched := newest(func(s store.Study) bool { return s.Kind == store.KindSearch && s.Status == store.StudyComplete })
	if searched == nil {
		return nil, fmt.Errorf("no complete search study for the pictures; the database holds %s. Make one with 'effnas search --db DB' (docs/bench/screenshots.sh runs it), or finish one with 'effnas resume --db DB --study ID'", listStudies(all))
	}
	var bad error
	gridded := newest(func(s store.Study) bool {
		if s.Kind != store.KindGrid || s.Status != store.StudyComplete {
			return false
		}
		var c grid.StudyConfig
		if err := json.Unmarshal(s.Config, &c); err != nil {
			bad = fmt.Errorf("grid study %d: config: %w", s.ID, err)
		}
		return c.Dimension == ""
	})
	if bad != nil {
		return nil, bad
	}
	if gridded == nil {
		return nil, fmt.Errorf("no complete compound grid study (one without --dimension) for the pictures; the database holds %s. Make one with 'effnas grid --db DB' (docs/bench/screenshots.sh runs it), or finish one with 'effnas resume --db DB --study ID'", listStudies(all))
	}
	// The search whose B0 the grid scaled, when it is in the database and
	// complete: the search page then shows the grid's base.
	var from grid.StudyConfig
	if json.Unmarshal(gridded.Config, &from) == nil && from.From != 0 {
		if base := newest(func(s store.Study) bool {
			return s.ID == from.From && s.Kind == store.KindSearch && s.Status == store.StudyComplete
		}); base != nil {
			searched = base
		}
	}
	compare := newest(func(s store.Study) bool { return s.Kind == store.KindSearch && s.ID != searched.ID })
	if compare == nil {
		compare = gridded
	}
	id := func(s *store.Study) string { return strconv.FormatInt(s.ID, 10) }
	return []shot{
		{"dashboard-studies.png", "/", ""},
		{"dashboard-search.png", "/studies/" + id(searched), "#b0"},
		{"dashboard-grid.png", "/studies/" + id(gridded), gridRows},
		{"dashboard-compare.png", "/compare?id=" + id(searched) + "&id=" + id(compare), ""},
	}, nil
}

// listStudies says what a database holds, such as "study 1 (search,
// running), study 2 (grid, complete)", or "no study".
func listStudies(all []store.Study) string {
	if len(all) == 0 {
		return "no study"
	}
	var b strings.Builder
	for i, s := range all {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "study %d (%s, %s)", s.ID, s.Kind, s.Status)
	}
	return b.String()
}

// TestPickShots checks which studies the README's pictures show, and that
// a database lacking one says what it holds.
func TestPickShots(t *testing.T) {
	one := search.Halving{Rungs: 1}
	for _, tc := range []struct {
		name  string
		build func(f *fixture)
		paths []string // search, grid and compare pages; nil when it fails
		fails []string // what the error says
	}{
		{"the newest complete search, a newer running one beside it", func(f *fixture) {
			old, osrc := f.searchStudy("old", 4, one) // 1
			f.run(old, osrc, 0)
			s, src := f.searchStudy("b0", 4, one) // 2
			f.run(s, src, 0)
			g, gs := f.gridStudy("grid", s, src, "", one) // 3
			f.run(g, gs, 0)
			w, ws := f.gridStudy("width", s, src, "width", one) // 4: not compound
			f.run(w, ws, 0)
			r, rs := f.searchWith("random", "random", 4, one) // 5: running
			f.step(r, rs, 2, 0)
		}, []string{"/studies/2", "/studies/3", "/compare?id=2&id=5"}, nil},
		{"an older search beside the newest", func(f *fixture) {
			r, rs := f.searchWith("random", "random", 4, one) // 1
			f.run(r, rs, 0)
			s, src := f.searchStudy("b0", 4, one) // 2
			f.run(s, src, 0)
			g, gs := f.gridStudy("grid", s, src, "", one) // 3
			f.run(g, gs, 0)
			f.gridStudy("running grid", s, src, "", one) // 4: not complete
		}, []string{"/studies/2", "/studies/3", "/compare?id=2&id=1"}, nil},
		{"one search: compared with the grid", func(f *fixture) {
			s, src := f.searchStudy("b0", 4, one) // 1
			f.run(s, src, 0)
			g, gs := f.gridStudy("grid", s, src, "", one) // 2
			f.run(g, gs, 0)
		}, []string{"/studies/1", "/studies/2", "/compare?id=1&id=2"}, nil},
		{"the search the grid scaled, though a newer one is complete", func(f *fixture) {
			s, src := f.searchStudy("b0", 4, one) // 1
			f.run(s, src, 0)
			g, gs := f.gridStudy("grid", s, src, "", one) // 2
			f.run(g, gs, 0)
			r, rs := f.searchWith("random", "random", 4, one) // 3
			f.run(r, rs, 0)
		}, []string{"/studies/1", "/studies/2", "/compare?id=1&id=3"}, nil},
		{"no complete search", func(f *fixture) {
			s, src := f.searchStudy("b0", 4, one)
			f.step(s, src, 2, 0)
		}, nil, []string{"no complete search study", "study 1 (search, running)", "effnas search --db"}},
		{"no compound grid", func(f *fixture) {
			s, src := f.searchStudy("b0", 4, one)
			f.run(s, src, 0)
			w, ws := f.gridStudy("width", s, src, "width", one)
			f.run(w, ws, 0)
		}, nil, []string{"no complete compound grid study", "study 1 (search, complete), study 2 (grid, complete)", "effnas grid --db"}},
		{"empty", func(f *fixture) {}, nil, []string{"no complete search study", "holds no study"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.build(f)
			shots, err := pickShots(t.Context(), f.st)
			if tc.paths == nil {
				if err == nil {
					t.Fatalf("picked %v, want an error", shots)
				}
				for _, want := range tc.fails {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range shots[1:] {
				got = append(got, s.path)
			}
			if !slices.Equal(got, tc.paths) {
				t.Errorf("pages %v, want %v", got, tc.paths)
			}
		})
	}
}
