package search

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/effnas/effnas/store"
)

// oldConfig is a search config as effnas stored it before successive
// halving and the AdamW recipe: every default written out, none of the
// fields added since.
const oldConfig = `{"controller":"evolution","controller_config":{"evolution":{"population":6,"sample":3}},"trials":20,"seed":1,
"reward":{"target":400000000,"w":-0.07},
"proxy":{"dataset":"mnist","train_size":4000,"val_size":1000,"test_size":1000,"width":0.5,"res":32,
"train":{"epochs":2,"batch":64,"lr":0.1,"optimizer":"sgd","momentum":0.9,"weight_decay":0.00005,"warmup_epochs":0.1,
"label_smoothing":0,"seed":1,"threads":1,"bn_calibration":20,"ema":0.99}},"max_attempts":3}`

// TestResumedStudyKeepsItsRecipe: a study stored before the defaults
// changed is resumed with the recipe it started with: SGD, its weight
// average, no gradient clipping, one rung and one seed per candidate.
func TestResumedStudyKeepsItsRecipe(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	study, err := st.CreateStudy(ctx, store.Study{Kind: store.KindSearch, Config: json.RawMessage(oldConfig), Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	cfg := src.Config()
	tr := cfg.Proxy.Train
	if tr.Optimizer != "sgd" || tr.LR != 0.1 || tr.EMA != 0.99 || tr.GradClip >= 0 {
		t.Errorf("resumed recipe %+v; want sgd at 0.1, EMA 0.99, no clipping", tr)
	}
	if h := cfg.Proxy.Halving; h.Rungs != 1 || h.TopSeeds != 1 {
		t.Errorf("resumed halving %+v; want one rung and one seed, as the study ran", h)
	}
	if cfg.Trials != 20 || src.Expected() != 20 {
		t.Errorf("trials %d, expected %d; want the stored 20", cfg.Trials, src.Expected())
	}
	if got := StudyHalving(study); got.Rungs != 1 || got.TopSeeds != 1 {
		t.Errorf("StudyHalving of the old study = %+v; want one rung, one seed", got)
	}
	// A new study gets today's defaults.
	fresh, err := Create(ctx, st, "new", Config{})
	if err != nil {
		t.Fatal(err)
	}
	src, err = Open(ctx, st, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if c := src.Config(); c.Proxy.Train.Optimizer != "adam" || c.Proxy.Halving.Rungs != DefaultRungs || c.Proxy.Halving.TopSeeds != DefaultTopSeeds {
		t.Errorf("new study %+v; want today's defaults", c.Proxy)
	}
}

// TestSeedSchemes: a new study derives every (candidate, rung, seed)
// its own training seed; a study stored before seed schemes (oldConfig,
// or a proxy benchmark without the field) keeps the scheme it ran with,
// where a candidate's seed s starts alike at every rung.
func TestSeedSchemes(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	old, err := st.CreateStudy(ctx, store.Study{Kind: store.KindSearch, Config: json.RawMessage(oldConfig), Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, st, old)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Config().Proxy.SeedScheme; got != SeedsSharedAcrossRungs {
		t.Errorf("old study's seed scheme %d; want %d, as it ran", got, SeedsSharedAcrossRungs)
	}
	fresh, err := Create(ctx, st, "new", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if src, err = Open(ctx, st, fresh); err != nil {
		t.Fatal(err)
	}
	if got := src.Config().Proxy.SeedScheme; got != SeedsIndependent {
		t.Errorf("new study's seed scheme %d; want %d", got, SeedsIndependent)
	}

	shared, indep := Proxy{SeedScheme: SeedsSharedAcrossRungs}, Proxy{SeedScheme: SeedsIndependent}
	// The old scheme's seeds are the ones old studies trained with.
	if got := shared.TrainSeed(7, "k", 2, 1); got != shared.TrainSeed(7, "k", 0, 1) || got != 0x5f2f38d4cf300974 {
		t.Errorf("shared scheme: seed %#x at rung 2, %#x at rung 0; want %#x at both (FNV-1a of \"7/k/1\", computed apart in Python)", got, shared.TrainSeed(7, "k", 0, 1), uint64(0x5f2f38d4cf300974))
	}
	seen := map[uint64]string{}
	for _, key := range []string{"k", "k2"} {
		for rung := range 3 {
			for seed := range 3 {
				s := indep.TrainSeed(7, key, rung, seed)
				id := fmt.Sprintf("%s rung %d seed %d", key, rung, seed)
				if prev, ok := seen[s]; ok {
					t.Errorf("independent scheme: %s and %s share the seed %#x", prev, id, s)
				}
				seen[s] = id
			}
		}
	}

	// A proxy benchmark stored without the field keeps the old scheme.
	p, err := CreatePanel(ctx, st, "", PanelConfig{Proxy: tinyConfig(1, "random").Proxy, Panel: 2, Seeds: 2, RefSeeds: 2, Reference: Fidelity{TrainSize: 512, Epochs: 1}})
	if err != nil {
		t.Fatal(err)
	}
	panel, err := OpenPanel(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := panel.Config().Proxy.SeedScheme; got != SeedsIndependent {
		t.Errorf("new benchmark's seed scheme %d; want %d", got, SeedsIndependent)
	}
	var raw map[string]any
	if err := json.Unmarshal(p.Config, &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw["proxy"].(map[string]any), "seed_scheme")
	p.Config, _ = json.Marshal(raw)
	if panel, err = OpenPanel(p); err != nil {
		t.Fatal(err)
	}
	if got := panel.Config().Proxy.SeedScheme; got != SeedsSharedAcrossRungs {
		t.Errorf("benchmark stored without a seed scheme: %d; want %d", got, SeedsSharedAcrossRungs)
	}
}

// TestStudiesTrainWithTheirScheme: the runner derives a trial's training
// seed by the scheme its study was stored with: an old search, resumed,
// as it always did (the rung left out), a new one with the rung.
func TestStudiesTrainWithTheirScheme(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	old, err := st.CreateStudy(ctx, store.Study{Kind: store.KindSearch, Config: json.RawMessage(oldConfig), Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Create(ctx, st, "new", Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	fnv := func(s string) uint64 { // FNV-1a, 64 bits
		h := uint64(0xcbf29ce484222325)
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 0x100000001b3
		}
		return h
	}
	tr := store.Trial{Key: "k", Rung: 2, Seed: 1}
	for _, c := range []struct {
		study store.Study
		want  uint64
	}{{old, fnv("1/k/1")}, {fresh, fnv("1/k/r2/1")}} {
		src, err := Open(ctx, st, c.study)
		if err != nil {
			t.Fatal(err)
		}
		if got := trainingSeed(src, c.study.Seed, tr); got != c.want {
			t.Errorf("study %d: training seed %#x; want %#x", c.study.ID, got, c.want)
		}
	}
}

// TestDataSeed: a study with a data seed draws its split (validation and
// test images) from it and its training seeds from its own seed: a search
// under seed 2 with data seed 1 validates on seed 1's images.
func TestDataSeed(t *testing.T) {
	one := uint64(1)
	a := Config{Seed: 1}.WithDefaults().Proxy
	b := Config{Seed: 2, Proxy: Proxy{DataSeed: &one}}.WithDefaults().Proxy
	c := Config{Seed: 2}.WithDefaults().Proxy
	if a.data(32) != b.data(32) || a.data(32) == c.data(32) {
		t.Errorf("data options: seed 1 %+v, seed 2 with data seed 1 %+v, seed 2 %+v; want the first two alike", a.data(32), b.data(32), c.data(32))
	}
	ctx := context.Background()
	st, _ := openStore(t)
	study, err := Create(ctx, st, "", Config{Seed: 2, Proxy: Proxy{DataSeed: &one}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	tr := store.Trial{Key: "k"}
	if p := src.Config().Proxy; p.data(32) != a.data(32) || study.Seed != 2 || trainingSeed(src, study.Seed, tr) == a.TrainSeed(1, "k", 0, 0) {
		t.Errorf("stored study: data %+v (want seed 1's), study seed %d (want 2), training seed that of seed 1", p.data(32), study.Seed)
	}
}
