// Package export turns a finished search and grid into what people train
// with: B0's block strings, the compound-scaling coefficients and the B1..B7
// family, as JSON, a TF EfficientNet builder snippet, a timm snippet, or a
// Markdown report with PNG plots.
//
// Files, by what they hold:
//
//	report.go    Report and Build: which studies, B0, coefficients, family, trials
//	python.go    TF (efficientnet_builder.py) and timm (_gen_efficientnet) snippets
//	markdown.go  the Markdown report
//	plot.go      accuracy vs multiply-adds plots (gonum.org/v1/plot), PNG
//	file.go      atomic file writes
package export
