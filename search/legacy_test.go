package search

import (
	"context"
	"encoding/json"
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
