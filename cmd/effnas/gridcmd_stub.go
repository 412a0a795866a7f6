package main

import (
	"context"
	"errors"

	"github.com/effnas/effnas/store"
)

func runGridStudy(ctx context.Context, env *Env, st store.Store, db string, study store.Study, workers int, asJSON bool) error {
	return errors.New("grid studies are not yet available")
}
