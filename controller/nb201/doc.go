// Package nb201 runs controllers on the NAS-Bench-201 lookup table, an
// offline yardstick for search strategies: 6 edges of a cell, 5 operations
// each, 15,625 cells with published accuracies. The table is built in
// (Embedded); README.md beside it credits its sources.
package nb201
