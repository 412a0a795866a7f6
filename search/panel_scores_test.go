package search

import (
	"encoding/json"
	"testing"

	"github.com/effnas/effnas/store"
)

// TestPanelStoredBeforeKinds: a benchmark stored before proxy kinds (its
// config without proxy_kind) opens as kind train and reports as one: no
// scoring, its proxy described as a training.
func TestPanelStoredBeforeKinds(t *testing.T) {
	cfg := PanelConfig{Proxy: tinyConfig(1, "random").Proxy, Panel: 3, Seeds: 2, RefSeeds: 2, Reference: Fidelity{TrainSize: 512, Epochs: 1}}.WithDefaults()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["proxy_kind"] != "train" {
		t.Fatalf("a new benchmark stores proxy_kind %v; want train", m["proxy_kind"])
	}
	delete(m, "proxy_kind")
	if raw, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	p, err := OpenPanel(store.Study{ID: 7, Kind: store.KindProxy, Config: raw})
	if err != nil {
		t.Fatalf("a benchmark stored without proxy_kind: %v; want it opened as kind train", err)
	}
	rep := p.Report(store.Study{ID: 7}, nil, 10)
	if p.Config().ProxyKind != ProxyTrain || rep.ProxyKind != ProxyTrain || rep.Scoring != nil || rep.ScoreUnit != "validation accuracy" {
		t.Errorf("kind %q, report kind %q, unit %q, scoring %v; want train, validation accuracy, no scoring", p.Config().ProxyKind, rep.ProxyKind, rep.ScoreUnit, rep.Scoring)
	}
}
