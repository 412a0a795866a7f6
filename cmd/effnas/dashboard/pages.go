package dashboard

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

// pages are the page templates by name, each with the layout and the
// shared parts.
var pages = func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"studies", "search", "grid", "proxy", "compare", "error"} {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return out
}()

var funcs = template.FuncMap{
	"acc": fmtAcc,
	"accp": func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmtAcc(*p)
	},
	"count":  fmtCount,
	"commas": export.Commas,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"day":   func(t time.Time) string { return t.Local().Format("2006-01-02") },
	"clock": func(t time.Time) string { return t.Local().Format("15:04:05") },
	"secs":  func(s float64) string { return since(secs(s)) },
	"dur": func(s float64) string { // secs, with a tenth below ten seconds
		if s >= 0 && s < 9.95 {
			return strconv.FormatFloat(s, 'f', 1, 64) + "s"
		}
		return since(secs(s))
	},
	"eta": func(p *float64) string { // the time left, in words
		switch {
		case p == nil:
			return "time left unknown"
		case *p < 1:
			return "less than a second left"
		}
		return "about " + since(secs(*p)) + " left"
	},
	"pct":   func(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) + "%" },
	"f2":    func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"share": func(p *float64) string { return strconv.FormatFloat(100**p, 'f', 0, 64) + "%" },
	"f3":    func(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) },
	"px":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"label": studyLabel,
	"pm": func(mean, sd float64, seeds int) string {
		if seeds < 2 {
			return fmtAcc(mean)
		}
		return fmtAcc(mean) + " ± " + fmtAcc(sd)
	},
	"interval": func(lo, hi float64, seeds int) string {
		if seeds < 2 {
			return "-"
		}
		return "[" + fmtAcc(lo) + ", " + fmtAcc(hi) + "]"
	},
	"flops": fmtFLOPsTick,
	"half":  func(i int) int { return i / 2 },
	"inc":   func(i int) int { return i + 1 },
	"dec":   func(i int) int { return i - 1 },
	"deref": func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	},
}

// pageData is what every page's layout needs.
type pageData struct {
	Title      string
	Label      string // the database, as Options.Label names it
	Version    string // what the page shows, fingerprinted
	VersionURL string // where the page asks for the current version ("": not live)
	PollMS     int
	Now        time.Time
}

func (s *Server) pageData(title, version, versionURL string) pageData {
	return pageData{Title: title, Label: s.opts.Label, Version: version, VersionURL: versionURL, PollMS: int(s.opts.Poll / time.Millisecond), Now: s.now()}
}

type errorPage struct {
	pageData
	Code    int
	Message string
}

// studiesPage lists every study.
type studiesPage struct {
	pageData
	Studies []Summary
}

func (s *Server) summaries(r *http.Request) ([]Summary, error) {
	ctx := r.Context()
	all, err := s.st.Studies(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- { // newest first
		trials, err := s.st.Trials(ctx, all[i].ID)
		if err != nil {
			return nil, err
		}
		v, err := newStudy(ctx, s.st, all[i], trials)
		if err != nil {
			// A study this effnas cannot read (a newer effnas wrote it)
			// is listed without its numbers; its own page says why.
			s.opts.Log.Warn("dashboard: a study's configuration cannot be read", "study", all[i].ID, "err", err)
			st := all[i]
			out = append(out, Summary{ID: st.ID, Name: st.Name, Kind: st.Kind, Status: st.Status, Created: st.Created, Updated: st.Updated,
				What: "its configuration cannot be read by this effnas"})
			continue
		}
		out = append(out, v.summary())
	}
	return out, nil
}

func (s *Server) studiesPage(w http.ResponseWriter, r *http.Request) error {
	ver, err := s.version(r.Context(), nil)
	if err != nil {
		return err
	}
	sums, err := s.summaries(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "studies", studiesPage{pageData: s.pageData("studies", ver, versionURL()), Studies: sums})
	return nil
}

func (s *Server) apiStudies(w http.ResponseWriter, r *http.Request) error {
	sums, err := s.summaries(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sums)
	return nil
}

// studyPageData is what every study page has.
type studyPageData struct {
	pageData
	S         Summary
	Rungs     string // the fidelities, in words
	Table     table
	Agreement []search.RungAgreement // how the rungs below the top agreed with it
}

type searchPage struct {
	studyPageData
	Config    search.Config
	Standings []Standing
	AtTop     int // candidates at the top rung, of which Standings are the best
	Finalists int
	Best      Plot
	Pareto    Plot
	Parallel  Plot
	Lines     int // lines drawn in the parallel coordinates
	Total     int // of candidates at rung 0
	RungPlot  Plot
	B0        *B0
	Screen    *screenCard // nil when the search does not screen
}

type gridPage struct {
	studyPageData
	Config grid.StudyConfig
	Fig    GridFigure
	Plot   Plot
	Points []GridPoint // best first
}

type proxyPage struct {
	studyPageData
	Report *search.PanelReport
}

func (s *Server) studyPage(w http.ResponseWriter, r *http.Request) error {
	id, err := studyID(r)
	if err != nil {
		return err
	}
	q, err := parseTrialQuery(r.URL.Query())
	if err != nil {
		return badRequest("%v", err)
	}
	ctx := r.Context()
	ver, err := s.version(ctx, []int64{id})
	if err != nil {
		return err
	}
	v, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	base := studyPageData{
		pageData: s.pageData(fmt.Sprintf("%s %s", v.Kind, studyLabel(v.ID, v.Name)), ver, versionURL(id)),
		S:        v.summary(), Rungs: v.schedule(), Table: v.table(q), Agreement: v.agreement(),
	}
	switch {
	case v.searcher() != nil:
		p := searchPage{studyPageData: base, Config: v.searcher().Config(), Standings: v.standingRows(20), AtTop: len(v.standings())}
		for _, st := range p.Standings {
			if st.Finalist && v.halving.TopSeeds > 1 {
				p.Finalists++
			}
		}
		p.Best = drawBest([]BestCurve{v.bestCurve()}, true)
		p.Pareto = drawPareto(v.paretoFigure())
		pf := v.parallelFigure()
		p.Parallel, p.Lines, p.Total = drawParallel(pf), len(pf.Lines), pf.Total
		if v.halving.Rungs > 1 {
			p.RungPlot = drawRungs(v.rungFigure())
		}
		if p.B0, err = v.b0(); err != nil {
			return err
		}
		if p.Screen, err = screening(ctx, s.st, v.Study, p.Config.Trials); err != nil {
			return err
		}
		s.render(w, r, http.StatusOK, "search", p)
	case v.grid() != nil:
		fig, err := v.gridFigure(ctx, s.st)
		if err != nil {
			return err
		}
		p := gridPage{studyPageData: base, Config: v.grid().Config(), Fig: fig, Plot: drawGrid(fig), Points: slices.Clone(fig.Points)}
		slices.SortStableFunc(p.Points, func(a, b GridPoint) int {
			return cmp.Or(cmp.Compare(min(b.Seeds, 1), min(a.Seeds, 1)), cmp.Compare(b.Mean, a.Mean), cmp.Compare(accOf(b), accOf(a)))
		})
		s.render(w, r, http.StatusOK, "grid", p)
	default:
		p := proxyPage{studyPageData: base, Report: v.panel().Report(v.Study, v.trials, 0)}
		s.render(w, r, http.StatusOK, "proxy", p)
	}
	return nil
}

func accOf(p GridPoint) float64 {
	if p.Accuracy == nil {
		return -1
	}
	return *p.Accuracy
}

// StudyJSON is a study with its configuration and standings.
type StudyJSON struct {
	Summary
	Seed        uint64     `json:"seed"`
	SpaceHash   string     `json:"space_hash"`
	MaxAttempts int        `json:"max_attempts"`
	Config      any        `json:"config"`
	Standings   []Standing `json:"standings"` // candidates at the top rung, best first
	// RungAgreement: how each rung below the top ranked the candidates
	// that reached the top, against their top-rung means, rung 0 first.
	RungAgreement []search.RungAgreement `json:"rung_agreement"`
	Report        *search.PanelReport    `json:"report,omitempty"`
	// Screened, Supernet and Screening are a search's one-shot screening
	// (search.ScreenOf), as effnas show --json has them: the count of
	// candidates scored on the supernet, the supernet's training (null
	// when the study does not screen) and the summary of the scores and
	// of the candidates promoted to rung 0 (omitted before any score).
	Screened  int                    `json:"screened"`
	Supernet  *search.SupernetReport `json:"supernet"`
	Screening *search.ScreenReport   `json:"screening,omitempty"`
}

func (s *Server) apiStudy(w http.ResponseWriter, r *http.Request) error {
	id, err := studyID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	v, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	out := StudyJSON{Summary: v.summary(), Seed: v.Seed, SpaceHash: v.SpaceHash, MaxAttempts: v.MaxAttempts,
		Config: v.Config, Standings: v.standingRows(len(v.trials)), RungAgreement: v.agreement()}
	switch {
	case v.searcher() != nil:
		out.Config = v.searcher().Config()
	case v.grid() != nil:
		out.Config = v.grid().Config()
	case v.panel() != nil:
		out.Config = v.panel().Config()
		out.Report = v.panel().Report(v.Study, v.trials, 0)
	}
	if out.Screened, out.Supernet, out.Screening, err = search.ScreenOf(ctx, s.st, v.Study); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// figures names each study's JSON figures, by the kinds that have them.
var figures = map[string][]store.Kind{
	"trials":   {store.KindSearch, store.KindGrid, store.KindProxy},
	"best":     {store.KindSearch, store.KindGrid},
	"pareto":   {store.KindSearch},
	"parallel": {store.KindSearch},
	"rungs":    {store.KindSearch, store.KindGrid},
	"b0":       {store.KindSearch},
	"grid":     {store.KindGrid},
}

// TrialsJSON is a page of a study's trials.
type TrialsJSON struct {
	Total   int     `json:"total"`   // trials in the study
	Matched int     `json:"matched"` // trials the filter selects
	Trials  []Trial `json:"trials"`  // those of the page, or all matched with no page parameter
}

func (s *Server) apiFigure(w http.ResponseWriter, r *http.Request) error {
	id, err := studyID(r)
	if err != nil {
		return err
	}
	name := r.PathValue("figure")
	kinds, ok := figures[name]
	if !ok {
		return notFound("there is no figure %q; a study has trials, best, pareto, parallel, rungs, b0 (search) and grid (grid)", name)
	}
	ctx := r.Context()
	v, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if !slices.Contains(kinds, v.Kind) {
		return notFound("study %d is a %s study: it has no %s figure", id, v.Kind, name)
	}
	var out any
	switch name {
	case "trials":
		q, err := parseTrialQuery(r.URL.Query())
		if err != nil {
			return badRequest("%v", err)
		}
		sel := q.apply(v.trials)
		res := TrialsJSON{Total: len(v.trials), Matched: len(sel), Trials: make([]Trial, 0, len(sel))}
		if r.URL.Query().Has("page") {
			sel = sel[min((q.Page-1)*PageSize, len(sel)):min(q.Page*PageSize, len(sel))]
		}
		for _, t := range sel {
			res.Trials = append(res.Trials, toTrial(t))
		}
		out = res
	case "best":
		out = v.bestCurve()
	case "pareto":
		out = v.paretoFigure()
	case "parallel":
		out = v.parallelFigure()
	case "rungs":
		out = v.rungFigure()
	case "b0":
		b, err := v.b0()
		if err != nil {
			return err
		}
		out = b
	case "grid":
		g, err := v.gridFigure(ctx, s.st)
		if err != nil {
			return err
		}
		out = g
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
