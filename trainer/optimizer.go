package trainer

import "math"

// schedule returns the learning rate at step (0-based) of total steps:
// linear warm-up over warmup steps, then cosine decay to zero.
func schedule(base float64, step, warmup, total int) float64 {
	if warmup > 0 && step < warmup {
		return base * float64(step+1) / float64(warmup)
	}
	span := max(total-warmup, 1)
	p := float64(step-warmup) / float64(span)
	return base * 0.5 * (1 + math.Cos(math.Pi*min(p, 1)))
}

// optimizer updates every parameter in place from its gradient.
type optimizer struct {
	kind     string
	momentum float64
	decay    float64
	clip     float64 // bound on the global gradient norm; 0: none
	t        int
}

// clipScale returns the factor that brings the global L2 norm of the
// gradients down to o.clip (1 when it is shorter or clipping is off).
func (o *optimizer) clipScale(params []*param) float32 {
	if o.clip <= 0 {
		return 1
	}
	var sq float64
	for _, p := range params {
		for _, g := range p.grad[:len(p.data)] {
			sq += float64(g) * float64(g)
		}
	}
	if n := math.Sqrt(sq); n > o.clip {
		return float32(o.clip / n)
	}
	return 1
}

func (o *optimizer) step(params []*param, lr float64) {
	o.t++
	mu := float32(o.momentum)
	wd := float32(o.decay)
	lrf := float32(lr)
	if sc := o.clipScale(params); sc != 1 {
		for _, p := range params {
			for i := range p.grad[:len(p.data)] {
				p.grad[i] *= sc
			}
		}
	}
	for _, p := range params {
		if p.state[0] == nil {
			p.state[0] = make([]float32, len(p.data))
			p.state[1] = make([]float32, len(p.data))
		}
		d := float32(0)
		if p.decay {
			d = wd
		}
		w, g, m, v := p.data, p.grad[:len(p.data)], p.state[0][:len(p.data)], p.state[1][:len(p.data)]
		switch o.kind {
		case "sgd": // Nesterov momentum, L2 decay
			for i := range w {
				gi := g[i] + d*w[i]
				m[i] = mu*m[i] + gi
				w[i] -= lrf * (gi + mu*m[i])
			}
		case "rmsprop": // TensorFlow's: decay 0.9, epsilon 1e-3, momentum
			for i := range w {
				gi := g[i] + d*w[i]
				v[i] = 0.9*v[i] + 0.1*gi*gi
				m[i] = mu*m[i] + lrf*gi/float32(math.Sqrt(float64(v[i])+1e-3))
				w[i] -= m[i]
			}
		default: // AdamW: beta1 = momentum, beta2 = 0.999, decoupled decay
			b1, b2 := mu, float32(0.999)
			c1 := float32(1 - math.Pow(float64(b1), float64(o.t)))
			c2 := float32(1 - math.Pow(float64(b2), float64(o.t)))
			step := lrf / c1
			for i := range w {
				m[i] = b1*m[i] + (1-b1)*g[i]
				v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
				w[i] -= step*m[i]/(float32(math.Sqrt(float64(v[i]/c2)))+1e-8) + lrf*d*w[i]
			}
		}
	}
}

// weightAverage is an exponential moving average of the parameters.
type weightAverage struct {
	decay float64
	t     int
	avg   [][]float32
}

func (w *weightAverage) update(params []*param) {
	if w.avg == nil {
		w.avg = make([][]float32, len(params))
		for i, p := range params {
			w.avg[i] = make([]float32, len(p.data))
		}
	}
	w.t++
	d := float32(w.decay)
	for i, p := range params {
		a := w.avg[i]
		for j, v := range p.data {
			a[j] = d*a[j] + (1-d)*v
		}
	}
}

// apply overwrites the parameters with the debiased average.
func (w *weightAverage) apply(params []*param) {
	if w.t == 0 {
		return
	}
	corr := float32(1 / (1 - math.Pow(w.decay, float64(w.t))))
	for i, p := range params {
		for j, v := range w.avg[i] {
			p.data[j] = v * corr
		}
	}
}
