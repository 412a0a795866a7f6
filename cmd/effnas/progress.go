package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

// progress shows a run's trials: a progress bar with the best reward and an
// ETA on a terminal, plain log lines otherwise. It implements search.Events.
type progress struct {
	w        io.Writer
	terminal bool
	what     string // "trials" or "grid points"

	mu       sync.Mutex
	bar      *progressbar.ProgressBar
	budget   int // trials expected in all
	finished int // trials finished, before this run too
	now      int // trials finished by this run: the ETA's rate
	start    time.Time
}

func newProgress(w io.Writer, terminal bool, what string) *progress {
	return &progress{w: w, terminal: terminal, what: what}
}

func (p *progress) Started(expected, finished int) {
	budget := max(expected, finished)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.budget, p.finished, p.start = budget, finished, time.Now()
	if p.terminal {
		p.bar = progressbar.NewOptions(budget,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(fmt.Sprintf("%s (best: none yet)", p.what)),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		)
		_ = p.bar.Set(finished)
		return
	}
	fmt.Fprintf(p.w, "%s: %d of %d finished, training the rest\n", p.what, finished, budget)
}

func (p *progress) TrialStarted(t store.Trial) {
	if p.terminal {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "trial %d: training rung %d seed %d (attempt %d) %s\n", t.Number, t.Rung, t.Seed, t.Attempt, t.Key)
}

func (p *progress) TrialFinished(t store.Trial, best *search.Standing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	p.now++
	if p.finished > p.budget {
		p.budget = p.finished // successive halving's count is an estimate
		if p.bar != nil {
			p.bar.ChangeMax(p.budget)
		}
	}
	bestText := "none at the top rung yet"
	if best != nil {
		bestText = fmt.Sprintf("%.4f", best.Reward)
		if best.Seeds > 1 {
			bestText += fmt.Sprintf(" over %d seeds", best.Seeds)
		}
	}
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("%s (best reward %s)", p.what, bestText))
		_ = p.bar.Add(1)
		return
	}
	// The rate is of this run's trials: those finished before a resume
	// took no time here.
	eta := ""
	if left := p.budget - p.finished; left > 0 {
		el := time.Since(p.start)
		eta = fmt.Sprintf(", ETA %s", (el / time.Duration(p.now) * time.Duration(left)).Round(time.Second))
	}
	switch t.State {
	case store.TrialComplete:
		fmt.Fprintf(p.w, "trial %d (rung %d, seed %d): accuracy %.4f, reward %.4f, %s multiply-adds, %.1fs [%d/%d, best reward %s%s]\n",
			t.Number, t.Rung, t.Seed, t.Accuracy, t.Reward, fmtCount(t.FLOPs), t.Seconds, p.finished, p.budget, bestText, eta)
	default:
		fmt.Fprintf(p.w, "trial %d (rung %d, seed %d): %s: %s [%d/%d%s]\n", t.Number, t.Rung, t.Seed, t.State, t.Error, p.finished, p.budget, eta)
	}
}

// Close ends the progress bar, if any.
func (p *progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
}

// SupernetStart implements search.ScreenEvents.
func (p *progress) SupernetStart(from, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from > 0 {
		fmt.Fprintf(p.w, "supernet: resuming from the checkpoint at step %d of %d\n", from, total)
	} else {
		fmt.Fprintf(p.w, "supernet: training %d steps, one sampled member each\n", total)
	}
}

// SupernetStep implements search.ScreenEvents: a line every 500 steps
// (and at the last) off a terminal, the bar's description on one.
func (p *progress) SupernetStep(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("supernet: step %d of %d", done, total))
		return
	}
	if done%500 == 0 || done == total {
		fmt.Fprintf(p.w, "supernet: step %d of %d\n", done, total)
	}
}

// ScreenProgress implements search.ScreenEvents.
func (p *progress) ScreenProgress(done, total int, best float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("screening: %d of %d scored, best %.4f", done, total, best))
		return
	}
	if done%(10*32) < 32 || done == total {
		fmt.Fprintf(p.w, "screening: %d of %d candidates scored on the supernet, best score %.4f\n", done, total, best)
	}
}
