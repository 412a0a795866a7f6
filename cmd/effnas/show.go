package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
)

func init() {
	register("show", "show a study and its trials from a database (--json for scripts)", runShow)
}

// openForReading opens an existing database without creating or changing
// it; a missing file is an error ("no database at PATH"). A postgres://
// URL opens the PostgreSQL store.
func openForReading(ctx context.Context, db string) (store.Store, error) {
	if db == "" {
		return nil, usagef("--db is required: the database file of the study, e.g. --db effnas.db")
	}
	if postgres.IsURL(db) {
		// The server's database exists already; Open only adds the
		// schema if it is missing.
		return postgres.Open(ctx, db)
	}
	s, err := sqlite.Open(ctx, db, sqlite.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return s, nil
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
	Number   int              `json:"number"`
	State    store.TrialState `json:"state"`
	Key      string           `json:"key"`
	Accuracy *float64         `json:"accuracy"`
	Reward   *float64         `json:"reward"`
	Params   int64            `json:"params"`
	FLOPs    int64            `json:"flops"`
	Blocks   []string         `json:"blocks"`
	Alpha    *float64         `json:"alpha,omitempty"`
	Beta     *float64         `json:"beta,omitempty"`
	Gamma    *float64         `json:"gamma,omitempty"`
	Seconds  float64          `json:"seconds"`
	Error    string           `json:"error"`
	Attempt  int              `json:"attempt"`
	Worker   string           `json:"worker"`
	Choices  json.RawMessage  `json:"choices,omitempty"`
}

type showJSON struct {
	Study  studyJSON   `json:"study"`
	Trials []trialJSON `json:"trials"`
	Best   *trialJSON  `json:"best"` // highest reward among complete trials; null if none
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
	j := trialJSON{Number: t.Number, State: t.State, Key: t.Key, Params: t.Params, FLOPs: t.FLOPs, Blocks: t.Blocks,
		Seconds: t.Seconds, Error: t.Error, Attempt: t.Attempt, Worker: t.Worker}
	if t.State == store.TrialComplete {
		acc, rew := t.Accuracy, t.Reward
		j.Accuracy, j.Reward = &acc, &rew
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

// best returns the complete trial with the highest reward (the lowest
// number among ties), or -1.
func best(trials []store.Trial) int {
	b := -1
	for i, t := range trials {
		if t.State == store.TrialComplete && (b < 0 || t.Reward > trials[b].Reward) {
			b = i
		}
	}
	return b
}

func runShow(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("show", env.Stderr)
	db := fs.String("db", "effnas.db", "database file or postgres:// URL")
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
			return usagef("--study %q: want a study id, a whole number from 1 (effnas list --db %s shows them)", *studyFlag, *db)
		}
		id = n
	}
	s, err := openForReading(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()

	var st store.Study
	if id == 0 {
		st, err = s.LatestStudy(ctx, "")
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no studies in %s yet; start one with effnas search --db %s", *db, *db)
		}
	} else {
		st, err = s.Study(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("--study %d: no such study in %s; %s", id, *db, studyIDs(ctx, s, *db))
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
		if b := best(trials); b >= 0 {
			out.Best = &out.Trials[b]
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return printShow(env.Stdout, st, c, trials)
}

// studyIDs says which study ids exist, for an error message.
func studyIDs(ctx context.Context, s store.Store, db string) string {
	all, err := s.Studies(ctx)
	if err != nil || len(all) == 0 {
		return "the database has no studies"
	}
	ids := make([]string, len(all))
	for i, st := range all {
		ids[i] = strconv.FormatInt(st.ID, 10)
	}
	return "its studies are " + strings.Join(ids, ", ") + " (effnas list --db " + db + ")"
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
	head := "#\tstate\taccuracy\treward\tparams\tmult-adds\tseconds\tattempt\t"
	if grid {
		head = "#\tstate\talpha\tbeta\tgamma\taccuracy\treward\tparams\tmult-adds\tseconds\tattempt\t"
	}
	fmt.Fprintln(tw, head+"key")
	for _, t := range trials {
		acc, rew := "-", "-"
		if t.State == store.TrialComplete {
			acc, rew = fmt.Sprintf("%.4f", t.Accuracy), fmt.Sprintf("%.4f", t.Reward)
		}
		row := fmt.Sprintf("%d\t%s\t", t.Number, t.State)
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
		row += fmt.Sprintf("%s\t%s\t%s\t%s\t%.1f\t%d\t%s", acc, rew, fmtCount(t.Params), fmtCount(t.FLOPs), t.Seconds, t.Attempt, key)
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
	b := best(trials)
	if b < 0 {
		fmt.Fprintln(w, "best: none yet (no complete trial)")
		return nil
	}
	t := trials[b]
	fmt.Fprintf(w, "best: trial %d, reward %.4f, accuracy %.4f, %s params, %s mult-adds, key %s\n",
		t.Number, t.Reward, t.Accuracy, fmtCount(t.Params), fmtCount(t.FLOPs), t.Key)
	if t.Grid != nil {
		fmt.Fprintf(w, "  alpha %.3g, beta %.3g, gamma %.3g\n", t.Grid.Alpha, t.Grid.Beta, t.Grid.Gamma)
	}
	for _, bl := range t.Blocks {
		fmt.Fprintf(w, "  %s\n", bl)
	}
	return nil
}
