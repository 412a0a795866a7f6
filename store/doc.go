// Package store defines where studies, trials, grid points and controller
// state live: the Store interface, its records and errors. Implementations
// (SQLite, PostgreSQL) live in subpackages.
package store
