package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// A trial's life: planned pending, claimed with a lease, finished by its
// holder; a late result from an older claim is refused.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "effnas-example")
	defer os.RemoveAll(dir)
	s, err := sqlite.Open(ctx, filepath.Join(dir, "effnas.db"), sqlite.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	st, _ := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch, Seed: 1}, nil)
	s.PlanTrials(ctx, st.ID, []store.Plan{{Key: "k3e6"}, {Key: "k5e6"}}, []byte("controller state"))

	claimed, _ := s.ClaimTrials(ctx, st.ID, store.Claim{Worker: "worker-1", Limit: 1, Lease: time.Minute})
	t := claimed[0]
	fmt.Println("claimed", t.Number, t.Key, "attempt", t.Attempt)
	// ... train without any transaction open, Heartbeat now and then ...
	fmt.Println("finish:", s.FinishTrial(ctx, t.Lease(), store.Result{Accuracy: 0.93, Reward: 0.91, Seconds: 60}))
	err = s.FinishTrial(ctx, t.Lease(), store.Result{Accuracy: 0.5})
	fmt.Println("again refused:", errors.Is(err, store.ErrLeaseLost))

	c, _ := s.CountTrials(ctx, st.ID)
	fmt.Printf("%+v\n", c)
	// Output:
	// claimed 0 k3e6 attempt 1
	// finish: <nil>
	// again refused: true
	// {Pending:1 Running:0 Complete:1 Failed:0 Interrupted:0}
}
