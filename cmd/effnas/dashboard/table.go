package dashboard

import "github.com/effnas/effnas/store"

// table is a page of a study's trial table with its controls.
type table struct {
	Study   int64
	Query   TrialQuery
	Rows    []store.Trial
	Total   int // trials in the study
	Matched int // trials the filter selects
	First   int // row number of the page's first trial, from 1
	Last    int
	Page    int
	Pages   int
	Heads   []colHead
	Prev    string // URL of the previous page ("": none)
	Next    string
	Grid    bool // show alpha, beta, gamma
	Rungs   []int
	States  []store.TrialState
}

// colHead is a column's header; a sortable one links to its sort.
type colHead struct {
	Label string
	Title string
	URL   string // "" when the column does not sort
	Arrow string // ▲ or ▼ on the sorted column
	Num   bool   // right-aligned
}

func (v *study) table(q TrialQuery) table {
	sel := q.apply(v.trials)
	t := table{Study: v.ID, Query: q, Total: len(v.trials), Matched: len(sel), Grid: v.Kind == store.KindGrid, States: store.TrialStates}
	t.Pages = max(1, (len(sel)+PageSize-1)/PageSize)
	t.Page = min(q.Page, t.Pages)
	lo, hi := (t.Page-1)*PageSize, min(t.Page*PageSize, len(sel))
	t.Rows = sel[lo:hi]
	t.First, t.Last = lo+1, hi
	link := func(change func(*TrialQuery)) string {
		return "?" + q.values(change).Encode() + "#trials"
	}
	if t.Page > 1 {
		t.Prev = link(func(q *TrialQuery) { q.Page = t.Page - 1 })
	}
	if t.Page < t.Pages {
		t.Next = link(func(q *TrialQuery) { q.Page = t.Page + 1 })
	}
	for k := range max(v.halving.Rungs, len(v.progressRungs())) {
		t.Rungs = append(t.Rungs, k)
	}
	head := func(label, key, title string, num bool) {
		h := colHead{Label: label, Title: title, Num: num}
		if key != "" {
			desc := key == "number" || valued[key]
			if q.Sort == key {
				desc = !q.Desc
				h.Arrow = map[bool]string{true: "▼", false: "▲"}[q.Desc]
			}
			h.URL = link(func(q *TrialQuery) { q.Sort, q.Desc, q.Page = key, desc, 1 })
		}
		t.Heads = append(t.Heads, h)
	}
	head("#", "number", "trial number", true)
	head("state", "state", "", false)
	head("rung", "rung", "fidelity, 0 the lowest", true)
	head("seed", "seed", "seed index", true)
	if t.Grid {
		head("alpha", "", "depth", true)
		head("beta", "", "width", true)
		head("gamma", "", "resolution", true)
	}
	head("accuracy", "accuracy", "validation accuracy at the trial's rung", true)
	head("reward", "reward", "", true)
	head("test", "test", "test accuracy, reported only", true)
	head("params", "params", "full-size parameters", true)
	head("mult-adds", "flops", "full-size multiply-adds", true)
	head("seconds", "seconds", "training time", true)
	head("attempt", "", "claims so far", true)
	head("crashes", "crashes", "attempts that ended in a lapsed lease or a recovery", true)
	head("worker", "", "", false)
	head("error", "", "why it failed", false)
	return t
}

// progressRungs is the rungs any trial reached.
func (v *study) progressRungs() []int {
	var out []int
	for _, t := range v.trials {
		for len(out) <= t.Rung {
			out = append(out, len(out))
		}
	}
	return out
}
