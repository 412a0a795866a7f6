package dashboard

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/effnas/effnas/store"
)

// Trial is a trial as the dashboard serves it, in the shape of effnas
// show --json; accuracy, reward and test accuracy are null unless the
// trial is complete.
type Trial struct {
	Number       int              `json:"number"`
	State        store.TrialState `json:"state"`
	Key          string           `json:"key"`
	Rung         int              `json:"rung"`
	Seed         int              `json:"seed"`
	Accuracy     *float64         `json:"accuracy"`
	Reward       *float64         `json:"reward"`
	TestAccuracy *float64         `json:"test_accuracy"`
	Params       int64            `json:"params"`
	FLOPs        int64            `json:"flops"`
	Blocks       []string         `json:"blocks"`
	Alpha        *float64         `json:"alpha,omitempty"`
	Beta         *float64         `json:"beta,omitempty"`
	Gamma        *float64         `json:"gamma,omitempty"`
	Seconds      float64          `json:"seconds"`
	Error        string           `json:"error"`
	Attempt      int              `json:"attempt"`
	Crashes      int              `json:"crashes"`
	Memory       int64            `json:"memory"`
	Worker       string           `json:"worker"`
	Choices      json.RawMessage  `json:"choices,omitempty"`
	Created      time.Time        `json:"created"`
	Updated      time.Time        `json:"updated"`
}

func toTrial(t store.Trial) Trial {
	j := Trial{Number: t.Number, State: t.State, Key: t.Key, Rung: t.Rung, Seed: t.Seed, Params: t.Params, FLOPs: t.FLOPs, Blocks: t.Blocks,
		Seconds: t.Seconds, Error: t.Error, Attempt: t.Attempt, Crashes: t.Crashes, Memory: t.Memory, Worker: t.Worker,
		Created: t.Created, Updated: t.Updated}
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

// TrialQuery filters, sorts and pages a study's trials: the table's
// controls, as URL parameters (state, rung, q, sort, order, page).
type TrialQuery struct {
	State string // one trial state, "" for all
	Rung  int    // -1 for all
	Text  string // in the key, worker, error or blocks, case-insensitive
	Sort  string // a column of sortKeys
	Desc  bool
	Page  int // from 1
}

// PageSize is how many trials a page of the table shows.
const PageSize = 100

// sortKeys are the columns the table sorts by. Trials without a value
// (no accuracy before they complete) sort last either way.
var sortKeys = map[string]func(a, b store.Trial) int{
	"number":  func(a, b store.Trial) int { return cmp.Compare(a.Number, b.Number) },
	"state":   func(a, b store.Trial) int { return cmp.Compare(a.State, b.State) },
	"rung":    func(a, b store.Trial) int { return cmp.Compare(a.Rung, b.Rung) },
	"seed":    func(a, b store.Trial) int { return cmp.Compare(a.Seed, b.Seed) },
	"params":  func(a, b store.Trial) int { return cmp.Compare(a.Params, b.Params) },
	"flops":   func(a, b store.Trial) int { return cmp.Compare(a.FLOPs, b.FLOPs) },
	"seconds": func(a, b store.Trial) int { return cmp.Compare(a.Seconds, b.Seconds) },
	"crashes": func(a, b store.Trial) int { return cmp.Compare(a.Crashes, b.Crashes) },
	"accuracy": func(a, b store.Trial) int {
		return cmp.Compare(a.Accuracy, b.Accuracy)
	},
	"reward": func(a, b store.Trial) int { return cmp.Compare(a.Reward, b.Reward) },
	"test":   func(a, b store.Trial) int { return cmp.Compare(a.TestAccuracy, b.TestAccuracy) },
}

// valued says which sort keys have no value before a trial completes.
var valued = map[string]bool{"accuracy": true, "reward": true, "test": true}

// parseTrialQuery reads the table's URL parameters; a bad one is an error
// that names it. The default is every trial, newest first.
func parseTrialQuery(q url.Values) (TrialQuery, error) {
	tq := TrialQuery{State: q.Get("state"), Rung: -1, Text: strings.TrimSpace(q.Get("q")), Sort: cmp.Or(q.Get("sort"), "number"), Page: 1}
	if tq.State != "" && !slices.Contains(store.TrialStates, store.TrialState(tq.State)) {
		return tq, fmt.Errorf("state %q: want one of pending, running, complete, failed, interrupted", tq.State)
	}
	if r := q.Get("rung"); r != "" {
		n, err := strconv.Atoi(r)
		if err != nil || n < 0 {
			return tq, fmt.Errorf("rung %q: want a rung number from 0", r)
		}
		tq.Rung = n
	}
	if _, ok := sortKeys[tq.Sort]; !ok {
		return tq, fmt.Errorf("sort %q: want one of number, state, rung, seed, accuracy, reward, test, params, flops, seconds, crashes", tq.Sort)
	}
	switch o := q.Get("order"); o {
	case "":
		tq.Desc = tq.Sort == "number" || valued[tq.Sort]
	case "desc", "asc":
		tq.Desc = o == "desc"
	default:
		return tq, fmt.Errorf("order %q: want asc or desc", o)
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return tq, fmt.Errorf("page %q: want a page number from 1", p)
		}
		tq.Page = n
	}
	return tq, nil
}

// apply returns the trials the query selects, in its order.
func (q TrialQuery) apply(trials []store.Trial) []store.Trial {
	text := strings.ToLower(q.Text)
	out := make([]store.Trial, 0, len(trials))
	for _, t := range trials {
		if q.State != "" && string(t.State) != q.State || q.Rung >= 0 && t.Rung != q.Rung {
			continue
		}
		if text != "" && !matches(t, text) {
			continue
		}
		out = append(out, t)
	}
	less := sortKeys[q.Sort]
	slices.SortStableFunc(out, func(a, b store.Trial) int {
		if valued[q.Sort] {
			ac, bc := a.State == store.TrialComplete, b.State == store.TrialComplete
			if ac != bc {
				if ac {
					return -1
				}
				return 1
			}
		}
		c := less(a, b)
		if q.Desc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.Number, b.Number))
	})
	return out
}

func matches(t store.Trial, text string) bool {
	if strings.Contains(strings.ToLower(t.Key), text) || strings.Contains(strings.ToLower(t.Worker), text) ||
		strings.Contains(strings.ToLower(t.Error), text) || strconv.Itoa(t.Number) == text {
		return true
	}
	for _, b := range t.Blocks {
		if strings.Contains(strings.ToLower(b), text) {
			return true
		}
	}
	return false
}

// values returns the query as URL parameters, with changes.
func (q TrialQuery) values(change func(*TrialQuery)) url.Values {
	if change != nil {
		change(&q)
	}
	v := url.Values{}
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.Rung >= 0 {
		v.Set("rung", strconv.Itoa(q.Rung))
	}
	if q.Text != "" {
		v.Set("q", q.Text)
	}
	if q.Sort != "number" || !q.Desc {
		v.Set("sort", q.Sort)
		v.Set("order", map[bool]string{true: "desc", false: "asc"}[q.Desc])
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return v
}
