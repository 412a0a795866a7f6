package search

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// MachineMemory returns the memory this process may use, in bytes: the
// smallest of the machine's RAM, the cgroup's memory limit, the address
// space limit (RLIMIT_AS) and GOMEMLIMIT, whichever are set.
func MachineMemory() int64 {
	limit := int64(math.MaxInt64)
	lower := func(v int64) {
		if v > 0 && v < limit {
			limit = v
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					lower(kb << 10)
				}
			}
		}
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(path); err == nil {
			if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
				lower(v)
			}
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err == nil && rl.Cur != math.MaxUint64 && rl.Cur < math.MaxInt64 {
		lower(int64(rl.Cur))
	}
	if v := debug.SetMemoryLimit(-1); v != math.MaxInt64 {
		lower(v)
	}
	return limit
}

// memoryShare is the share of the machine's memory that trainings may
// take; the rest is for the datasets, the runtime and everything else.
const memoryShare = 0.6

// MemoryBudget is the default memory of one training when workers train
// at once on this machine: a share of MachineMemory divided among them.
func MemoryBudget(workers int) int64 {
	return int64(float64(MachineMemory()) * memoryShare / float64(max(workers, 1)))
}

// annotate sets each plan's estimated training memory, so that workers
// claim only the trials they can train: for the data's channels and
// classes and this runner's threads, as trainSafely checks it.
func (r *runner) annotate(ctx context.Context, plans []store.Plan) {
	channels, classes := 3, 10
	if d, err := r.dataset(ctx, r.src.Proxy().Res); err == nil {
		channels, classes = d.Channels, d.Classes
	}
	annotate(r.src, plans, channels, classes, r.opts.Threads)
}

// Annotate sets each plan's Memory: the estimated memory to train it as
// src would, for data of the given channels and classes, with the proxy's
// threads (Proxy.Train.Threads, default 1). A plan over the study's memory
// budget (Proxy.MaxMemory) is marked rejected: it is recorded as failed,
// with the reason, and never trained.
func Annotate(src Source, plans []store.Plan, channels, classes int) {
	annotate(src, plans, channels, classes, src.Proxy().Train.Threads)
}

func annotate(src Source, plans []store.Plan, channels, classes, threads int) {
	budget := src.Proxy().MaxMemory
	for i := range plans {
		m := estimate(src, plans[i], channels, classes, threads)
		plans[i].Memory = m
		if budget > 0 && m > budget {
			plans[i].Rejected = tooBig(m, budget, src.Proxy().Train.Batch)
		}
	}
}

// tooBig is the reason a candidate over the study's memory budget fails.
func tooBig(need, budget int64, batch int) string {
	return fmt.Sprintf(rejectedBeforeTraining+": it needs about %s of memory to train (batch %d), more than the study's budget of %s per training (--max-memory)",
		FormatBytes(need), batch, FormatBytes(budget))
}

// estimate returns a plan's memory, or 0 when its network cannot be built
// (it then fails when trained, saying why, even if building it panics).
func estimate(src Source, p store.Plan, channels, classes, threads int) (mem int64) {
	defer func() {
		if recover() != nil {
			mem = 0
		}
	}()
	arch, err := src.Arch(store.Trial{Key: p.Key, Rung: p.Rung, Seed: p.Seed, Choices: p.Choices, Blocks: p.Blocks,
		Params: p.Params, FLOPs: p.FLOPs, Grid: p.Grid})
	if err != nil {
		return 0
	}
	return trainingMemory(src, arch, channels, classes, threads)
}

// trainingMemory is the memory training arch takes as src trains it, on
// data of the given channels and classes with threads kernel goroutines:
// what a plan is annotated with, and what a trial is checked against
// before it trains.
func trainingMemory(src Source, arch space.Arch, channels, classes, threads int) int64 {
	arch.InChannels, arch.Classes = channels, classes
	cfg := src.Proxy().Train
	cfg.Threads = threads
	return trainer.EstimateMemory(arch, cfg)
}

// FormatBytes writes a byte count for people: "1.5 GiB", "300 MiB".
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// ParseBytes reads a byte count: 2147483648, 2G, 2GiB, 512M, 1.5g.
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		case 'T':
			mult, t = 1<<40, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not an amount of memory; want a number of bytes with an optional unit, such as 4G or 512M", s)
	}
	return int64(v * mult), nil
}
