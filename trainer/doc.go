// Package trainer trains a candidate architecture briefly as a proxy, on real
// data, with gorgonia, and reports its validation and test accuracy.
package trainer
