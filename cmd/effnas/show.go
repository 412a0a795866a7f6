package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

func init() {
	register("show", "show a study and its trials from a database (--json for scripts)", runShow)
}

// studyJSON is a study as show and list print it.
type studyJSON struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Kind        store.Kind        `json:"kind"`
	Status      store.StudyStatus `json:"status"`
	Seed        uint64            `json:"seed"`
	SpaceHash   string            `json:"space_hash"`
	MaxAttempts int               `json:"max_attempts"`
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
	Counts      store.Counts      `json:"counts"`
	Trials      int               `json:"trials"`
	Config      json.RawMessage   `json:"config,omitempty"`
}

// trialJSON is a trial as show prints it; accuracy and reward are null
// unless the trial is complete.
type trialJSON struct {
	Number       int              `json:"number"`
	State        store.TrialState `json:"state"`
	Key          string           `json:"key"`
	Rung         int              `json:"rung"` // fidelity, 0 the lowest
	Seed         int              `json:"seed"` // seed index
	Accuracy     *float64         `json:"accuracy"`
	Reward       *float64         `json:"reward"`
	TestAccuracy *float64         `json:"test_accuracy"` // reported only, never searched on
	Params       int64            `json:"params"`
	FLOPs        int64            `json:"flops"`
	Blocks       []string         `json:"blocks"`
	Alpha        *float64         `json:"alpha,omitempty"`
	Beta         *float64         `json:"beta,omitempty"`
	Gamma        *float64         `json:"gamma,omitempty"`
	Seconds      float64          `json:"seconds"`
	Error        string           `json:"error"`
	Attempt      int              `json:"attempt"` // claims so far: the fencing token of the current one
	Crashes      int              `json:"crashes"` // attempts that ended in a lapsed lease or a recovery
	Memory       int64            `json:"memory"`  // bytes its training is estimated to need
	Worker       string           `json:"worker"`
	Choices      json.RawMessage  `json:"choices,omitempty"`
}

// bestJSON is the best candidate: the fields of its first complete
// top-rung run, but its accuracy, reward and test accuracy are means over
// all its complete top-rung runs (Runs), never one lucky run.
type bestJSON struct {
	trialJSON
	Seeds        int     `json:"seeds"`        // complete top-rung runs
	AccuracyStd  float64 `json:"accuracy_std"` // their standard deviation (n-1)
	RewardStd    float64 `json:"reward_std"`
	Runs         []int   `json:"runs"`          // trial numbers of those runs
	MissingSeeds int     `json:"missing_seeds"` // seeds without a complete run; such a finalist ranks after those with all
}

func toBestJSON(t store.Trial, s search.Standing) *bestJSON {
	b := &bestJSON{trialJSON: toTrialJSON(t), Seeds: s.Seeds, AccuracyStd: s.AccuracyStd, RewardStd: s.RewardStd, Runs: s.Runs, MissingSeeds: s.MissingSeeds}
	acc, rew, test := s.Accuracy, s.Reward, s.TestAccuracy
	b.Accuracy, b.Reward, b.TestAccuracy = &acc, &rew, &test
	return b
}

type showJSON struct {
	Study     studyJSON         `json:"study"`
	Trials    []trialJSON       `json:"trials"`
	Best      *bestJSON         `json:"best"`      // the best candidate, its figures means over its top-rung runs; null if none
	Standings []search.Standing `json:"standings"` // candidates at the top rung with their means over seeds, best first
	// RungAgreement says, for each rung below the top (rung 0 first),
	// how well it ranked the candidates that reached the top against
	// their top-rung means; [] with one rung and for proxy benchmarks.
	RungAgreement []search.RungAgreement `json:"rung_agreement"`
	// Panel is a proxy benchmark's report, as bench proxy --json prints
	// it (its count of runs below twice chance is 0: show loads no data).
	Panel *search.PanelReport `json:"panel,omitempty"`
	// Screened is the count of candidates scored on the study's supernet
	// (one-shot screening, search --screen); 0 without.
	Screened int `json:"screened"`
	// Supernet is the supernet's training: steps, checkpoints, seconds;
	// null without screening.
	Supernet *search.SupernetReport `json:"supernet"`
	// Screening summarises the screened candidates' scores and the ones
	// that went on to rung 0; absent without screening.
	Screening *search.ScreenReport `json:"screening,omitempty"`
}

func toStudyJSON(st store.Study, c store.Counts, withConfig bool) studyJSON {
	j := studyJSON{ID: st.ID, Name: st.Name, Kind: st.Kind, Status: st.Status, Seed: st.Seed, SpaceHash: st.SpaceHash,
		MaxAttempts: st.MaxAttempts, Created: st.Created, Updated: st.Updated, Counts: c, Trials: c.Total()}
	if withConfig {
		j.Config = st.Config
	}
	return j
}

func toTrialJSON(t store.Trial) trialJSON {
	j := trialJSON{Number: t.Number, State: t.State, Key: t.Key, Rung: t.Rung, Seed: t.Seed, Params: t.Params, FLOPs: t.FLOPs, Blocks: t.Blocks,
		Seconds: t.Seconds, Error: t.Error, Attempt: t.Attempt, Crashes: t.Crashes, Memory: t.Memory, Worker: t.Worker}
	if t.State == store.TrialComplete {
		acc, rew, test := t.Accuracy, t.Reward, t.TestAccuracy
		j.Accuracy, j.Reward, j.TestAccuracy = &acc, &rew, &test
	}
	if g := t.Grid; g != nil {
		a, b, c := g.Alpha, g.Beta, g.Gamma
		j.Alpha, j.Beta, j.Gamma = &a, &b, &c
	}
	if len(t.Choices) > 0 && string(t.Choices) != "null" {
		j.Choices = t.Choices
	}
	if j.Blocks == nil {
		j.Blocks = []string{}
	}
	return j
}

// best returns the study's best candidate (by mean reward over its seeds
// at the top rung, finalists with every seed first; for a grid the
// winning point as grid and export choose it, the base point excluded),
// nil when there is none or for a proxy benchmark, and the study's
// standings.
func best(st store.Study, trials []store.Trial) (*search.Standing, []search.Standing) {
	standings := search.Standings(trials, search.StudyHalving(st))
	switch st.Kind {
	case store.KindProxy:
		return nil, standings
	case store.KindGrid:
		g, err := grid.Open(st)
		if err != nil {
			return nil, standings
		}
		return g.Best(trials), standings
	}
	if len(standings) == 0 {
		return nil, standings
	}
	return &standings[0], standings
}

func runShow(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("show", env.Stderr)
	db := dbFlag(fs, "effnas.db", "database file or postgres:// URL")
	studyFlag := fs.String("study", "", "study id (default: the newest study)")
	asJSON := fs.Bool("json", false, "print one JSON object: the study and its trials")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var id int64
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "study" })
	if set {
		n, err := strconv.ParseInt(*studyFlag, 10, 64)
		if err != nil || n < 1 {
			return usagef("--study %q: want a study id, a whole number from 1 (effnas list%s shows them)", *studyFlag, db.Flag())
		}
		id = n
	}
	s, err := openForReading(ctx, db)
	if err != nil {
		return err
	}
	defer s.Close()

	var st store.Study
	if id == 0 {
		st, err = s.LatestStudy(ctx, "")
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no studies in %s yet; start one with effnas search%s", db, db.Flag())
		}
	} else {
		st, err = s.Study(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("--study %d: no such study in %s; %s", id, db, studyIDs(ctx, s, db))
		}
	}
	if err != nil {
		return err
	}
	trials, err := s.Trials(ctx, st.ID)
	if err != nil {
		return err
	}
	var c store.Counts
	for _, t := range trials {
		c.Add(t.State, 1)
	}
	if *asJSON {
		out := showJSON{Study: toStudyJSON(st, c, true), Trials: make([]trialJSON, len(trials))}
		for i, t := range trials {
			out.Trials[i] = toTrialJSON(t)
		}
		b, standings := best(st, trials)
		if b != nil {
			// The run's own entry: a retry keeps its derived seed.
			i := slices.IndexFunc(trials, func(t store.Trial) bool { return t.Number == b.Trial.Number })
			out.Best = toBestJSON(trials[i], *b)
		}
		out.Standings = standings
		if out.Standings == nil {
			out.Standings = []search.Standing{}
		}
		out.RungAgreement = rungAgreement(st, trials)
		if out.Panel, err = panelReport(st, trials); err != nil {
			return err
		}
		if out.Screened, out.Supernet, out.Screening, err = search.ScreenOf(ctx, s, st); err != nil {
			return err
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if err := printShow(env.Stdout, st, c, trials); err != nil {
		return err
	}
	if _, sn, sr, err := search.ScreenOf(ctx, s, st); err != nil {
		return err
	} else if sn != nil {
		fmt.Fprintln(env.Stdout, "\none-shot screening:")
		printScreening(env.Stdout, sn, sr)
	}
	rep, err := panelReport(st, trials)
	if rep != nil {
		fmt.Fprintln(env.Stdout)
		(&proxyReport{PanelReport: rep}).print(env.Stdout, db)
	}
	return err
}

// panelReport is a proxy benchmark study's report, or nil for other
// kinds of study. Runs below twice chance are not counted: that needs the
// number of classes, which only the data knows.
func panelReport(st store.Study, trials []store.Trial) (*search.PanelReport, error) {
	if st.Kind != store.KindProxy {
		return nil, nil
	}
	p, err := search.OpenPanel(st)
	if err != nil {
		return nil, err
	}
	return p.Report(st, trials, 0), nil
}

// studyIDs says which study ids exist, for an error message.
func studyIDs(ctx context.Context, s store.Store, db *dbName) string {
	all, err := s.Studies(ctx)
	if err != nil || len(all) == 0 {
		return "the database has no studies"
	}
	ids := make([]string, len(all))
	for i, st := range all {
		ids[i] = strconv.FormatInt(st.ID, 10)
	}
	return "its studies are " + strings.Join(ids, ", ") + " (effnas list" + db.Flag() + ")"
}

// rungAgreement is a search or grid study's agreement between its rungs
// (search.Agreement; the grid's base point is pinned); [] for a proxy
// benchmark, whose report has its own per-rung figures.
func rungAgreement(st store.Study, trials []store.Trial) []search.RungAgreement {
	var pinned func(string) bool
	switch st.Kind {
	case store.KindProxy:
		return []search.RungAgreement{}
	case store.KindGrid:
		pinned = grid.IsBase
	}
	return search.Agreement(trials, search.StudyProxy(st), pinned)
}

// printAgreement writes a study's rung agreement for people (nothing with
// one rung).
func printAgreement(w io.Writer, ags []search.RungAgreement) {
	if len(ags) == 0 {
		return
	}
	fmt.Fprintln(w, "\nhow the rungs agreed with the top rung (measured on the candidates that reached the top only:")
	fmt.Fprintln(w, "those a rung dropped were never trained longer, so what it threw away cannot be measured):")
	for _, a := range ags {
		fmt.Fprintf(w, "  rung %d (%d images x %d epochs): Kendall tau-b %.2f with the top-rung means, over %d candidates", a.Rung, a.TrainSize, a.Epochs, a.Tau, a.Candidates)
		if a.FinalistsInTopThird != nil && a.Finalists > 0 {
			fmt.Fprintf(w, "; %d of the %d finalists (%.0f%%) were in its top third", int(math.Round(*a.FinalistsInTopThird*float64(a.Finalists))), a.Finalists, 100**a.FinalistsInTopThird)
		}
		fmt.Fprintln(w)
	}
}

// missing says how many of a finalist's seeds have no complete run, or
// nothing when none is missing.
func missing(s search.Standing) string {
	if s.MissingSeeds == 0 {
		return ""
	}
	return fmt.Sprintf(" [%d seeds missing: ranked after the finalists with all]", s.MissingSeeds)
}

func fmtCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

func printShow(w io.Writer, st store.Study, c store.Counts, trials []store.Trial) error {
	name := ""
	if st.Name != "" {
		name = " " + strconv.Quote(st.Name)
	}
	fmt.Fprintf(w, "study %d%s: %s, %s\n", st.ID, name, st.Kind, st.Status)
	fmt.Fprintf(w, "  created %s, updated %s, seed %d", st.Created.Format(time.RFC3339), st.Updated.Format(time.RFC3339), st.Seed)
	if st.SpaceHash != "" {
		fmt.Fprintf(w, ", space %s", st.SpaceHash)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %d trials: %d complete, %d running, %d pending, %d interrupted, %d failed\n\n",
		c.Total(), c.Complete, c.Running, c.Pending, c.Interrupted, c.Failed)
	if len(trials) == 0 {
		fmt.Fprintln(w, "no trials yet")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	grid := st.Kind == store.KindGrid
	head := "#\tstate\trung\tseed\taccuracy\treward\ttest\tparams\tmult-adds\tseconds\tattempt\tcrashes\t"
	if grid {
		head = "#\tstate\trung\tseed\talpha\tbeta\tgamma\taccuracy\treward\ttest\tparams\tmult-adds\tseconds\tattempt\tcrashes\t"
	}
	fmt.Fprintln(tw, head+"key")
	for _, t := range trials {
		acc, rew, test := "-", "-", "-"
		if t.State == store.TrialComplete {
			acc, rew, test = fmt.Sprintf("%.4f", t.Accuracy), fmt.Sprintf("%.4f", t.Reward), fmt.Sprintf("%.4f", t.TestAccuracy)
		}
		row := fmt.Sprintf("%d\t%s\t%d\t%d\t", t.Number, t.State, t.Rung, t.Seed)
		if grid {
			if g := t.Grid; g != nil {
				row += fmt.Sprintf("%.2f\t%.2f\t%.2f\t", g.Alpha, g.Beta, g.Gamma)
			} else {
				row += "-\t-\t-\t"
			}
		}
		key := t.Key
		if len(key) > 40 {
			key = key[:37] + "..."
		}
		row += fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%d\t%s", acc, rew, test, fmtCount(t.Params), fmtCount(t.FLOPs), t.Seconds, t.Attempt, t.Crashes, key)
		fmt.Fprintln(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range trials {
		if t.State == store.TrialFailed && t.Error != "" {
			fmt.Fprintf(w, "trial %d failed: %s\n", t.Number, t.Error)
		}
	}
	fmt.Fprintln(w)
	sb, _ := best(st, trials)
	if sb == nil {
		if st.Kind != store.KindProxy {
			fmt.Fprintln(w, "best: none yet (no candidate has finished the top rung)")
		}
		return nil
	}
	t := sb.Trial
	fmt.Fprintf(w, "best: trial %d, reward %.4f, accuracy %s%s, test accuracy %.4f, %s params, %s mult-adds, key %s\n",
		t.Number, sb.Reward, pm(sb.Accuracy, sb.AccuracyStd, sb.Seeds), missing(*sb), sb.TestAccuracy, fmtCount(t.Params), fmtCount(t.FLOPs), t.Key)
	if t.Grid != nil {
		fmt.Fprintf(w, "  alpha %.3g, beta %.3g, gamma %.3g\n", t.Grid.Alpha, t.Grid.Beta, t.Grid.Gamma)
	}
	for _, bl := range t.Blocks {
		fmt.Fprintf(w, "  %s\n", bl)
	}
	printAgreement(w, rungAgreement(st, trials))
	return nil
}
