package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

func init() {
	register("train", "train one network as a proxy and report its accuracy", runTrain)
}

type trainReport struct {
	Accuracy        float64 `json:"accuracy"` // test accuracy in [0, 1]
	ValAccuracy     float64 `json:"val_accuracy"`
	Loss            float64 `json:"loss"` // mean training loss of the last epoch
	ValLoss         float64 `json:"val_loss"`
	TestLoss        float64 `json:"test_loss"`
	Seconds         float64 `json:"seconds"`
	ImagesPerSecond float64 `json:"images_per_second"` // training steps only
	// Evaluation and batch-norm calibration run forward work only.
	EvalImagesPerSecond  float64 `json:"eval_images_per_second"`
	CalibImagesPerSecond float64 `json:"calib_images_per_second"`
	Epochs               int     `json:"epochs"`
	Steps                int     `json:"steps"`
	Params               int64   `json:"params"`
	FLOPs                int64   `json:"flops"` // multiply-adds per image
	Model                string  `json:"model,omitempty"`
	networkJSON
	Dataset     string         `json:"dataset"`
	TrainImages int            `json:"train_images"`
	ValImages   int            `json:"val_images"`
	TestImages  int            `json:"test_images"`
	Config      trainer.Config `json:"config"`
}

func runTrain(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("train", env.Stderr)
	blocks := fs.String("blocks", "", "stages as TF block strings separated by spaces or commas (default: EfficientNet-B0's)")
	model := fs.String("model", "", "a named model (efficientnet-b0..b7) instead of --blocks")
	width := fs.Float64("width", 0.5, "width multiplier applied to the filters")
	depth := fs.Float64("depth", 1, "depth multiplier applied to the repeats")
	res := fs.Int("res", 32, "input resolution (the dataset is resized to it)")
	data := fs.String("dataset", "mnist", "training data: mnist (built in) or a path (IDX, CIFAR binary, image folder)")
	trainSize := fs.Int("train-size", dataset.DefaultTrainSize, "training images (-1: all that remain after validation)")
	valSize := fs.Int("val-size", dataset.DefaultValSize, "validation images carved from the training files")
	testSize := fs.Int("test-size", dataset.DefaultTestSize, "test images (-1: all)")
	epochs := fs.Int("epochs", trainer.DefaultEpochs, "passes over the training images")
	batch := fs.Int("batch", trainer.DefaultBatch, "images per step")
	lr := fs.Float64("lr", 0, "peak learning rate (0: the optimizer's default)")
	optimizer := fs.String("optimizer", trainer.DefaultOptimizer, "adam, sgd or rmsprop")
	threads := fs.Int("threads", runtime.NumCPU(), "goroutines the kernels may use")
	seed, dataSeed := new(uint64), new(uint64)
	*seed = 1
	fs.Var((*seedValue)(seed), "seed", "seed of the weights, the shuffling and (unless --data-seed) the data split")
	fs.Var((*seedValue)(dataSeed), "data-seed", "seed of the train/validation/test split (default --seed); keep it fixed to compare seeds on the same data")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["blocks"] && !set["model"] {
		*blocks = b0BlockString()
	}
	// Channels and classes come from the dataset; check the rest first.
	arch, err := proxyArchFromFlags(set, *blocks, *model, *width, *depth, *res, 1, 10)
	if err != nil {
		return err
	}
	// Zero would mean "default" to the trainer; on the command line it is a mistake.
	switch {
	case *epochs < 1:
		return usagef("--epochs %d: must be at least 1", *epochs)
	case *batch < 1:
		return usagef("--batch %d: must be at least 1 image", *batch)
	case *lr < 0:
		return usagef("--lr %g: the learning rate must be positive (0 picks the optimizer's default)", *lr)
	case *threads < 1:
		return usagef("--threads %d: must be at least 1", *threads)
	}
	cfg := trainer.Config{Epochs: *epochs, Batch: *batch, LR: *lr, Optimizer: *optimizer, Seed: *seed, Threads: *threads}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	split := *seed
	if set["data-seed"] {
		split = *dataSeed
	}
	opts := dataset.Options{TrainSize: *trainSize, ValSize: *valSize, TestSize: *testSize, Resolution: *res, Seed: split}
	if err := opts.Validate(); err != nil {
		return usagef("%v", err)
	}
	d, err := dataset.Load(ctx, *data, opts)
	if err != nil {
		return err
	}
	arch.InChannels, arch.Classes = d.Channels, d.Classes
	if err := arch.Validate(); err != nil {
		return fmt.Errorf("network for dataset %s: %w", d.Name, err)
	}
	if !*asJSON || !env.Terminal {
		fmt.Fprintf(env.Stderr, "training %s parameters, %s multiply-adds per image, on %d %s images (%d validation, %d test), %d epochs of batches of %d\n",
			export.Commas(arch.Params()), export.Commas(arch.FLOPs()), d.Train.N, d.Name, d.Val.N, d.Test.N, cfg.Epochs, cfg.Batch)
	}
	progress, done := trainProgress(env)
	res2, err := trainer.Train(ctx, arch, d, cfg, progress)
	done()
	if err != nil {
		return err
	}
	rep := trainReport{Accuracy: res2.TestAccuracy, ValAccuracy: res2.ValAccuracy, Loss: res2.TrainLoss, ValLoss: res2.ValLoss,
		TestLoss: res2.TestLoss, Seconds: res2.Seconds, ImagesPerSecond: res2.ImagesPerSecond,
		EvalImagesPerSecond: res2.EvalImagesPerSecond, CalibImagesPerSecond: res2.CalibImagesPerSecond, Epochs: res2.Epochs, Steps: res2.Steps,
		Params: arch.Params(), FLOPs: arch.FLOPs(), Model: *model, networkJSON: newNetworkJSON(arch, *width, *depth), Dataset: d.Name,
		TrainImages: d.Train.N, ValImages: d.Val.N, TestImages: d.Test.N, Config: cfg}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(rep)
	}
	fmt.Fprintf(env.Stdout, "test accuracy %.4f, validation accuracy %.4f, training loss %.4f, %.1fs (%.1f images/s training, %.1f evaluating, %.1f calibrating batch norm)\n",
		rep.Accuracy, rep.ValAccuracy, rep.Loss, rep.Seconds, rep.ImagesPerSecond, rep.EvalImagesPerSecond, rep.CalibImagesPerSecond)
	return nil
}

// trainProgress returns a progress callback: a bar on a terminal, a log line
// to stderr every tenth of the run (and at least every 30 seconds)
// otherwise. done ends the bar.
func trainProgress(env *Env) (trainer.Progress, func()) {
	if env.Terminal {
		var bar *progressbar.ProgressBar
		return func(step, total int, loss float64) {
				if bar == nil {
					bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(env.Stderr),
						progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
						progressbar.OptionSetWidth(30), progressbar.OptionThrottle(200*time.Millisecond))
				}
				bar.Describe(fmt.Sprintf("loss %.3f", loss))
				_ = bar.Set(step)
			}, func() {
				if bar != nil {
					_ = bar.Exit()
					fmt.Fprintln(env.Stderr)
				}
			}
	}
	start, last := time.Now(), time.Now()
	return func(step, total int, loss float64) {
		if step == total || step%max(1, total/10) == 0 || time.Since(last) > 30*time.Second {
			last = time.Now()
			el := time.Since(start)
			fmt.Fprintf(env.Stderr, "step %d/%d: loss %.4f, %s elapsed, ETA %s\n", step, total, loss,
				el.Round(time.Second), (el / time.Duration(step) * time.Duration(total-step)).Round(time.Second))
		}
	}, func() {}
}
