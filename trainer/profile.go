package trainer

import "time"

// profKind is a kind of work in a training step, as effnas bench train
// --profile reports it.
type profKind int

const (
	kindStem profKind = iota
	kindExpand
	kindDepthwise
	kindConv
	kindSE
	kindProject
	kindBNAct
	kindResidual
	kindHead
	kindPool
	kindClassifier
	kindOptimizer
	kindOverhead
	numKinds
)

var kindNames = [numKinds]string{
	kindStem:       "stem",
	kindExpand:     "expand 1x1",
	kindDepthwise:  "depthwise",
	kindConv:       "conv kxk",
	kindSE:         "SE",
	kindProject:    "project 1x1",
	kindBNAct:      "BN and activation",
	kindResidual:   "residual",
	kindHead:       "head 1x1",
	kindPool:       "pooling",
	kindClassifier: "classifier and loss",
	kindOptimizer:  "optimizer update",
	kindOverhead:   "gorgonia overhead",
}

// profiler adds up the wall time, floating-point operations and nominal
// memory traffic of each kind of work over the steps it watches.
type profiler struct {
	d     [numKinds]time.Duration
	flops [numKinds]float64
	bytes [numKinds]float64
}

// add charges the time since *t0 to kind with the given work, and moves
// *t0 to now. It does nothing on a nil profiler.
func (p *profiler) add(kind profKind, t0 *time.Time, flops, bytes float64) {
	if p == nil {
		return
	}
	now := time.Now()
	p.d[kind] += now.Sub(*t0)
	p.flops[kind] += flops
	p.bytes[kind] += bytes
	*t0 = now
}

// ProfileEntry is one kind of work in a training step.
type ProfileEntry struct {
	Kind        string  `json:"kind"`
	StepSeconds float64 `json:"step_seconds"` // wall time per step
	Share       float64 `json:"share"`        // fraction of the step's wall time
	// GFLOPs is the floating-point operations (a multiply-add counts as
	// two) per second of this kind's time; 0 where it does no arithmetic
	// worth counting.
	GFLOPs float64 `json:"gflops"`
	// GBps is the nominal memory traffic per second of this kind's time:
	// each tensor a pass must read or write counted once, in 10^9 bytes.
	GBps float64 `json:"gbytes_per_second"`
}

// entries returns the profile of steps steps whose total wall time was
// total; the time no layer accounts for is the gorgonia overhead.
func (p *profiler) entries(steps int, total time.Duration) []ProfileEntry {
	var sum time.Duration
	for k := profKind(0); k < kindOverhead; k++ {
		sum += p.d[k]
	}
	p.d[kindOverhead] = max(total-sum, 0)
	var out []ProfileEntry
	for k := profKind(0); k < numKinds; k++ {
		if p.d[k] == 0 && p.flops[k] == 0 {
			continue
		}
		s := p.d[k].Seconds()
		e := ProfileEntry{Kind: kindNames[k], StepSeconds: s / float64(steps), Share: s / total.Seconds()}
		if s > 0 {
			e.GFLOPs = p.flops[k] / s / 1e9
			e.GBps = p.bytes[k] / s / 1e9
		}
		out = append(out, e)
	}
	return out
}

// selfTimed is implemented by layers that charge their own time to the
// profile, kind by kind.
type selfTimed interface{ selfTimed() bool }

func isSelfTimed(l layer) bool {
	st, ok := l.(selfTimed)
	return ok && st.selfTimed()
}

// work returns the floating-point operations and nominal memory traffic
// of the forward or backward pass of a layer that is not self-timed.
func work(l layer, backward bool) (flops, bytes float64) {
	if l, ok := l.(*denseLayer); ok {
		macs := float64(l.n) * float64(l.cin) * float64(l.cout)
		if backward {
			return 4 * macs, 0
		}
		return 2 * macs, 0
	}
	return 0, 0
}
