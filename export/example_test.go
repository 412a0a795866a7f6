package export_test

import (
	"fmt"

	"github.com/effnas/effnas/export"
)

// A Markdown report's plots are written beside it, named after it.
func ExamplePlotPaths() {
	fmt.Println(export.PlotPaths("out/report.md"))
	// Output: out/report-search.png out/report-grid.png
}
