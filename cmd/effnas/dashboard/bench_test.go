package dashboard

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// bigTrials is the size of study the speed requirements speak of.
const bigTrials = 10_000

var big struct {
	once sync.Once
	dir  string
	path string
	id   int64
}

// TestMain removes the big study's directory after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// bigStudy returns a database with a finished search of about bigTrials
// trials under successive halving (3 rungs, the best third climbs,
// finalists under 3 seeds, every 97th trial failed), written once per test
// binary (about 10 seconds, 25 under the race detector).
func bigStudy(tb testing.TB) (path string, id int64) {
	tb.Helper()
	big.once.Do(func() {
		dir, err := os.MkdirTemp("/dev/shm", "effnas-dashboard-big-")
		if err != nil {
			dir, err = os.MkdirTemp("", "effnas-dashboard-big-")
		}
		if err != nil {
			tb.Fatal(err)
		}
		big.dir = dir
		f := newFixtureAt(tb, filepath.Join(dir, "effnas.db"))
		defer f.st.Close()
		h := search.Halving{Rungs: 3, Eta: 3, TopSeeds: 3, Finalists: 3}
		n := 1
		for h.Expected(n) < bigTrials {
			n++
		}
		s, src := f.searchStudy("ten thousand", n, h)
		start := time.Now()
		for f.step(s, src, 2500, 97) > 0 {
		}
		f.must(f.st.SetStudyStatus(f.ctx, s.ID, store.StudyComplete))
		c, err := f.st.CountTrials(f.ctx, s.ID)
		f.must(err)
		tb.Logf("wrote a study of %d trials (%d candidates) in %v", c.Total(), n, time.Since(start).Round(time.Millisecond))
		big.path, big.id = f.path, s.ID
	})
	if big.path == "" {
		tb.Fatal("the big study could not be written (see the first test that asked for it)")
	}
	return big.path, big.id
}

// BenchmarkBigStudy times the server's answer for a study of 10,000
// trials, from reading the store to the last byte: its page, and its
// trials as JSON. Both must take under a second.
//
//	go test -run '^$' -bench BigStudy ./cmd/effnas/dashboard/
func BenchmarkBigStudy(b *testing.B) {
	path, id := bigStudy(b)
	st, err := sqlite.Open(b.Context(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := New(st, Options{})
	sid := strconv.FormatInt(id, 10)
	for _, tc := range []struct{ name, path string }{
		{"page", "/studies/" + sid},
		{"json", "/api/studies/" + sid + "/trials"},
		{"summary-json", "/api/studies/" + sid},
		{"studies-page", "/"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d", tc.path, w.Code)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size)/1e6, "MB")
			if per := b.Elapsed() / time.Duration(b.N); per > time.Second {
				b.Errorf("GET %s of a study of %d trials took %v, want under 1s", tc.path, bigTrials, per)
			}
		})
	}
}
