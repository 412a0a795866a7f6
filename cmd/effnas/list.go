package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/effnas/effnas/store"
)

func init() {
	register("list", "list the studies in a database (--json for scripts)", runList)
}

type listJSON struct {
	Studies []listStudyJSON `json:"studies"`
}

type listStudyJSON struct {
	studyJSON
	// The best candidate as show names it (for a grid, the winning point
	// with grid.Best's tie-break): its mean reward over its top-rung
	// runs, its first top-rung run and its key; null without one.
	BestReward *float64 `json:"best_reward"`
	BestTrial  *int     `json:"best_trial"`
	BestKey    string   `json:"best_key,omitempty"`
}

func runList(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("list", env.Stderr)
	db := dbFlag(fs, "effnas.db", "database file or postgres:// URL")
	asJSON := fs.Bool("json", false, "print one JSON object with the studies")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := openForReading(ctx, db)
	if err != nil {
		return err
	}
	defer s.Close()
	studies, err := s.Studies(ctx)
	if err != nil {
		return err
	}
	out := listJSON{Studies: make([]listStudyJSON, len(studies))}
	for i, st := range studies {
		trials, err := s.Trials(ctx, st.ID)
		if err != nil {
			return err
		}
		var c store.Counts
		for _, t := range trials {
			c.Add(t.State, 1)
		}
		out.Studies[i] = listStudyJSON{studyJSON: toStudyJSON(st, c, false)}
		if b, _ := best(st, trials); b != nil {
			r, n := b.Reward, b.Trial.Number
			out.Studies[i].BestReward, out.Studies[i].BestTrial, out.Studies[i].BestKey = &r, &n, b.Key
		}
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(studies) == 0 {
		fmt.Fprintf(env.Stdout, "no studies in %s\n", db)
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tkind\tstatus\ttrials\tcomplete\tfailed\tbest reward\tbest\tcreated\tname")
	for _, st := range out.Studies {
		br, bt := "-", "-"
		if st.BestReward != nil {
			br, bt = fmt.Sprintf("%.4f", *st.BestReward), fmt.Sprintf("trial %d", *st.BestTrial)
			if st.Kind == store.KindGrid {
				bt = st.BestKey
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", st.ID, st.Kind, st.Status, st.Trials,
			st.Counts.Complete, st.Counts.Failed, br, bt, st.Created.Format(time.RFC3339), st.Name)
	}
	return tw.Flush()
}
