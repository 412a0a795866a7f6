package trainer

import (
	"testing"
	"time"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/dataset"
)

// TestLearnMNIST is the acceptance test: EfficientNet-B0 at width 0.5 on
// 32x32 MNIST, trained on 10,000 images for 2 epochs with the default
// Config (AdamW at 0.004, batches of 64, no weight average), classifies at
// least 97% of 2,000 test images, as a mean over 3 seeds (one run is an
// anecdote: seed 1 alone measured 97.1%), none of them below 96%. It takes
// about half a minute on 2 cores, too long under the race detector, where
// TestLearnMNISTSmall stands in for it.
func TestLearnMNIST(t *testing.T) {
	if raceEnabled {
		t.Skip("too slow under the race detector (TestLearnMNISTSmall runs instead); run go test without -race")
	}
	if testing.Short() {
		t.Skip("slow; skipped with -short")
	}
	data, err := dataset.Load(t.Context(), "mnist", dataset.Options{TrainSize: 10000, ValSize: 1000, TestSize: 2000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	arch := proxyArch(t)
	var sum float64
	for seed := uint64(1); seed <= 3; seed++ {
		start := time.Now()
		res, err := Train(t.Context(), arch, data, Config{Epochs: 2, Threads: 2, Seed: seed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %+v in %v", seed, res, time.Since(start))
		if res.TestAccuracy < 0.96 {
			t.Errorf("seed %d: test accuracy %.4f, want >= 0.96", seed, res.TestAccuracy)
		}
		sum += res.TestAccuracy
	}
	if mean := sum / 3; mean < 0.97 {
		t.Errorf("mean test accuracy over 3 seeds %.4f, want >= 0.97", mean)
	}
}

// TestLearnMNISTSmall is a smaller but real learning test that runs under
// the race detector: a 3-stage MBConv network at 16x16 on 2,000 images.
func TestLearnMNISTSmall(t *testing.T) {
	data, err := dataset.Load(t.Context(), "mnist", dataset.Options{TrainSize: 2000, ValSize: 500, TestSize: 500, Resolution: 16, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := space.ParseBlocks("r1_k3_s11_e1_i16_o16_se0.25 r2_k3_s22_e4_i16_o24_se0.25 r1_k5_s22_e4_i24_o40_se0.25")
	if err != nil {
		t.Fatal(err)
	}
	arch := space.Arch{InChannels: 1, Resolution: 16, Classes: 10, Stem: 16, Head: 128, Activation: "swish",
		Dropout: 0.1, DropConnect: 0.1, Blocks: blocks}
	start := time.Now()
	res, err := Train(t.Context(), arch, data, Config{Epochs: 2, Threads: 2, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v in %v", res, time.Since(start))
	if res.TestAccuracy < 0.8 || res.ValAccuracy < 0.8 {
		t.Errorf("accuracy test %.4f val %.4f, want >= 0.8", res.TestAccuracy, res.ValAccuracy)
	}
}
