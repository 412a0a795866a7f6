// Package controller holds the search strategies (random search, regularized
// evolution, REINFORCE) behind one interface over categorical choices, and
// the multi-objective reward and Pareto front they are judged by.
//
// A space is a list of Dims, each with a number of options; a candidate is
// one option index per dim. Controllers see the full history of completed
// trials on every Propose call (Katib-style), so resuming a study is:
// New with the stored name, dims, config and seed; UnmarshalState with the
// stored state; Propose with the stored history. Proposals never repeat a
// candidate in the history, the pending list or the same batch; when the
// space has no unseen candidate left, Propose returns fewer than asked
// (none once it is exhausted). The controllers are judged on NAS-Bench-201
// by the nb201 subpackage.
package controller
