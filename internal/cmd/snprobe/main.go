// Command snprobe trains a supernet on a proxy and prints its loss and a
// few members' scores: a development probe.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

func main() {
	steps := flag.Int("steps", 1000, "")
	ds := flag.String("data", "mnist", "")
	threads := flag.Int("threads", 2, "")
	lr := flag.Float64("lr", 0, "")
	clip := flag.Float64("clip", 0, "")
	opt := flag.String("opt", "", "")
	n := flag.Int("n", 8, "members scored")
	fixed := flag.Bool("fixed", false, "train one member only")
	pool := flag.Int("pool", 0, "train members drawn from this many only")
	noconv := flag.Bool("noconv", false, "replace regular convs by mbconv3")
	verbose := flag.Bool("v", false, "")
	onlymb := flag.Bool("onlymb", false, "ops only mbconv3/mbconv6")
	warm := flag.Float64("warmup", 0, "TuNAS warm-up fraction")
	vary := flag.Int("vary", -1, "vary only this dimension of each stage (0 op,1 kernel,2 se,3 skip,4 filters,5 layers) around member 0")
	skip := flag.Bool("skip", false, "skips always on")
	flag.Parse()
	ctx := context.Background()
	p := search.Proxy{Dataset: *ds}.WithDefaults()
	p.Train.LR = *lr
	p.Train.GradClip = *clip
	p.Train.Optimizer = *opt
	p = p.WithDefaults()
	data, err := dataset.Load(ctx, p.Dataset, dataset.Options{TrainSize: p.TrainSize, ValSize: p.ValSize, TestSize: p.TestSize, Resolution: p.Res, Seed: 0})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sp := space.DefaultSpace()
	cfg := trainer.SupernetConfig{Steps: *steps}
	cfg.Train = p.Train
	cfg.Train.Threads = *threads
	sn, err := search.NewSupernet(sp, p, data, cfg, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	t0 := time.Now()
	var sum float64
	for i := 0; i < *steps; i++ {
		c := search.SupernetSample(sp, 1, i)
		if *fixed {
			c = search.SupernetSample(sp, 1, 0)
		}
		if *pool > 0 {
			c = search.SupernetSample(sp, 1, i%*pool)
		}
		if *vary >= 0 {
			base := search.SupernetSample(sp, 1, 0)
			for st := 0; st < 7; st++ {
				base[st*6+*vary] = c[st*6+*vary]
			}
			c = base
		}
		for st := 0; st < 7; st++ {
			if *onlymb && c[st*6] < 2 {
				c[st*6] += 2
			}
			if *noconv && c[st*6] == 0 {
				c[st*6] = 2
			}
			if *skip {
				c[st*6+3] = 0
			}
		}
		var archs []space.Arch
		if *warm > 0 {
			for _, m := range search.WarmupPaths(sp, 1, i, *steps, *warm) {
				a, _ := search.SupernetMember(sp, p, data, m)
				archs = append(archs, a)
			}
		} else {
			a, _ := search.SupernetMember(sp, p, data, c)
			archs = append(archs, a)
		}
		loss, err := sn.StepMean(ctx, archs...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sum += loss
		if *verbose && i >= 300 {
			fmt.Printf("  %d loss %.3f %s\n", i, loss, sp.Key(c))
		}
		if (i+1)%100 == 0 {
			fmt.Printf("step %d loss %.3f (%.1fs)\n", i+1, sum/100, time.Since(t0).Seconds())
			sum = 0
		}
	}
	r := rand.New(rand.NewPCG(5, 5))
	t1 := time.Now()
	for i := 0; i < *n; i++ {
		c := sp.Sample(r)
		if i < 2 {
			c = search.SupernetSample(sp, 1, i)
		}
		a, _ := search.SupernetMember(sp, p, data, c)
		s, err := sn.Score(ctx, a)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("member %d score %.3f\n", i, s)
	}
	fmt.Printf("scoring %.3fs per member\n", time.Since(t1).Seconds()/float64(*n))
}
