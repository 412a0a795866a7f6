package faults_test

import (
	"fmt"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
)

// longEpochs makes a tiny proxy train for a second or more (about 40ms an
// epoch on one core), so that a signal sent when a worker says it starts a
// trial lands while it trains.
const longEpochs = 40

// TestZombieWorker: a worker paused (SIGSTOP) while it trains, for longer
// than its lease, comes back (SIGCONT) after another worker has taken the
// trial over. The compare-and-set refuses whatever it then writes for the
// trial (its log says so), it goes on to train other work, and the study
// keeps exactly one result for the trial: the second attempt's.
func TestZombieWorker(t *testing.T) {
	url := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	ctx := t.Context()
	st, err := postgres.Open(ctx, url, postgres.Options{})
	must(t, err)
	defer st.Close()
	study, err := search.Create(ctx, st, "zombie", tinyConfig(2, longEpochs))
	must(t, err)
	first := planMore(t, st, study, 1)[0]
	// The zombie's lease is short, so that it lapses while it is paused;
	// the rescuer's is long, so that a busy machine cannot make it lapse.
	worker := func(name, lease string) *proc {
		return start(t, name, "worker", "--db", url, "--workers", "1", "--threads", "1", "--lease", lease, "--poll", "100ms")
	}

	zombie := worker("zombie", "1s")
	zombie.WaitFor(trainingLine, 1, 20*time.Second)
	zombie.Signal(syscall.SIGSTOP)
	paused := time.Now()
	if tr, err := st.Trial(ctx, study.ID, first); err != nil || tr.State != store.TrialRunning || tr.Worker != zombie.Worker() {
		t.Fatalf("trial %d just after the pause: %+v, %v; want it running under the paused worker (a training of %d epochs should last longer)", first, tr, err, longEpochs)
	}

	rescuer := worker("rescuer", "30s")
	waitTrials(t, st, study.ID, 15*time.Second, "the trial taken over", func(trials []store.Trial) bool {
		tr, _ := trialOf(trials, first)
		return tr.Attempt == 2 && tr.Worker == rescuer.Worker()
	})
	zombie.Signal(syscall.SIGCONT)
	t.Logf("the zombie was paused for %v", time.Since(paused).Round(10*time.Millisecond))
	refused := regexp.MustCompile(fmt.Sprintf(`^study %d trial %d \(attempt 1\): (training stopped, left for another worker|result refused): .*lease lost: the trial is now \w+, attempt 2 by worker "%s"`,
		study.ID, first, regexp.QuoteMeta(rescuer.Worker())))
	t.Logf("zombie: %s", zombie.WaitFor(refused, 1, 10*time.Second)[0])

	// The rescuer finishes the trial; then new work is planned, which only
	// the zombie is left to train.
	m := rescuer.WaitFor(finishedLine, 1, 20*time.Second)
	if n, _ := strconv.Atoi(m[2]); n != first {
		t.Fatalf("the rescuer finished trial %d; want %d", n, first)
	}
	rescuerAcc := m[3]
	rescuer.Stop()
	second := planMore(t, st, study, 1)[0]
	m = zombie.WaitFor(finishedLine, 1, 20*time.Second)
	if n, _ := strconv.Atoi(m[2]); n != second {
		t.Errorf("the zombie finished trial %d; want the new trial %d", n, second)
	}
	zombie.Stop()

	trials, err := st.Trials(ctx, study.ID)
	must(t, err)
	accounted(t, trials, 2, zombie.Worker(), rescuer.Worker())
	if tr, _ := trialOf(trials, first); tr.Worker != rescuer.Worker() || tr.Attempt != 2 || tr.Crashes != 1 || fmt.Sprintf("%.4f", tr.Accuracy) != rescuerAcc {
		t.Errorf("trial %d: worker %s, attempt %d, %d crashes, accuracy %.4f; want the rescuer's %s on attempt 2 after 1 crash",
			first, tr.Worker, tr.Attempt, tr.Crashes, tr.Accuracy, rescuerAcc)
	}
	if tr, _ := trialOf(trials, second); tr.Worker != zombie.Worker() || tr.Attempt != 1 {
		t.Errorf("trial %d: worker %s, attempt %d; want the zombie's first attempt", second, tr.Worker, tr.Attempt)
	}
	if n := zombie.Count(finishedLine); n != 1 {
		t.Errorf("the zombie reported %d results; want 1 (the new trial's)", n)
	}
}
