package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/effnas/effnas/grid"
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
	BestReward *float64 `json:"best_reward"` // null without a complete trial
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
		if _, standings := best(st, trials); len(standings) > 0 && st.Kind != store.KindProxy {
			for _, s := range standings {
				if st.Kind == store.KindGrid && s.Trial.Grid != nil && grid.Scaling(s.Trial) == grid.Base {
					continue
				}
				r := s.Reward
				out.Studies[i].BestReward = &r
				break
			}
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
	fmt.Fprintln(tw, "id\tkind\tstatus\ttrials\tcomplete\tfailed\tbest reward\tcreated\tname")
	for _, st := range out.Studies {
		br := "-"
		if st.BestReward != nil {
			br = fmt.Sprintf("%.4f", *st.BestReward)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", st.ID, st.Kind, st.Status, st.Trials,
			st.Counts.Complete, st.Counts.Failed, br, st.Created.Format(time.RFC3339), st.Name)
	}
	return tw.Flush()
}
