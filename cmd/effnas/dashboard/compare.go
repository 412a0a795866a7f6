package dashboard

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/effnas/effnas/store"
)

// Comparison is several studies side by side.
type Comparison struct {
	Studies []Summary   `json:"studies"`
	Curves  []BestCurve `json:"curves"` // best reward over time; runs left out
	Fronts  []Front     `json:"fronts"`
}

// Front is a study's Pareto front: top-rung means against multiply-adds.
type Front struct {
	Study  int64          `json:"study"`
	Name   string         `json:"name"`
	Points []ScatterPoint `json:"points"`
}

func (s *Server) compare(r *http.Request, ids []int64) (Comparison, error) {
	c := Comparison{Studies: []Summary{}, Curves: []BestCurve{}, Fronts: []Front{}}
	for _, id := range ids {
		v, err := s.load(r.Context(), id)
		if err != nil {
			return c, err
		}
		c.Studies = append(c.Studies, v.summary())
		curve := v.bestCurve()
		curve.Runs = []RunPoint{}
		c.Curves = append(c.Curves, curve)
		fr := Front{Study: v.ID, Name: v.Name, Points: []ScatterPoint{}}
		if v.Kind != store.KindProxy {
			for _, st := range v.pareto() {
				if !v.isBase(st.Trial) {
					fr.Points = append(fr.Points, standingPoint(st))
				}
			}
		}
		c.Fronts = append(c.Fronts, fr)
	}
	return c, nil
}

type comparePage struct {
	pageData
	C     Comparison
	Rows  []compareRow
	Best  Plot
	Front Plot
}

// compareRow is one line of the side-by-side table: a value per study.
type compareRow struct {
	Label string
	Cells []string
}

func (s *Server) comparePage(w http.ResponseWriter, r *http.Request) error {
	ids, err := parseIDs(r, 2)
	if err != nil {
		return err
	}
	ver, err := s.version(r.Context(), ids)
	if err != nil {
		return err
	}
	c, err := s.compare(r, ids)
	if err != nil {
		return err
	}
	p := comparePage{pageData: s.pageData("compare", ver, versionURL(ids...)), C: c, Best: drawBest(c.Curves, false), Front: drawFronts(c.Fronts)}
	row := func(label string, cell func(Summary) string) {
		cr := compareRow{Label: label}
		for _, st := range c.Studies {
			cr.Cells = append(cr.Cells, cell(st))
		}
		p.Rows = append(p.Rows, cr)
	}
	best := func(f func(*Best) string) func(Summary) string {
		return func(s Summary) string {
			if s.Best == nil {
				return "-"
			}
			return f(s.Best)
		}
	}
	row("kind", func(s Summary) string { return string(s.Kind) })
	row("what", func(s Summary) string { return s.What })
	row("status", func(s Summary) string { return string(s.Status) })
	row("progress", func(s Summary) string { return fmt.Sprintf("%d / %d", s.Progress.Done, s.Progress.Budget) })
	row("failed", func(s Summary) string { return strconv.Itoa(s.Progress.Counts.Failed) })
	row("best reward", best(func(b *Best) string { return fmtAcc(b.Reward) }))
	row("best accuracy", best(func(b *Best) string { return fmtAcc(b.Accuracy) }))
	row("its seeds", best(func(b *Best) string { return strconv.Itoa(b.Seeds) }))
	row("its multiply-adds", best(func(b *Best) string { return fmtCount(b.FLOPs) }))
	row("its parameters", best(func(b *Best) string { return fmtCount(b.Params) }))
	row("its trial", best(func(b *Best) string { return strconv.Itoa(b.Trial) }))
	row("started", func(s Summary) string { return s.Created.Local().Format("2006-01-02 15:04:05") })
	row("ran for", func(s Summary) string { return since(s.Updated.Sub(s.Created)) })
	s.render(w, r, http.StatusOK, "compare", p)
	return nil
}

func (s *Server) apiCompare(w http.ResponseWriter, r *http.Request) error {
	ids, err := parseIDs(r, 2)
	if err != nil {
		return err
	}
	c, err := s.compare(r, ids)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}
