package nb201

import (
	"bufio"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/effnas/effnas/controller"
)

// Edges and Ops describe the cell: six edges (0->1, 0->2, 1->2, 0->3, 1->3,
// 2->3), each one of five operations.
const (
	Edges = 6
	Ops   = 5
	Cells = 15625 // Ops^Edges
)

// OpNames are the operations in ops_idx order.
var OpNames = []string{"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}

var edgeNames = []string{"0->1", "0->2", "1->2", "0->3", "1->3", "2->3"}

// Dims returns the space as controller dimensions: one per edge.
func Dims() []controller.Dim {
	d := make([]controller.Dim, Edges)
	for i := range d {
		d[i] = controller.Dim{Name: "edge " + edgeNames[i], Options: Ops}
	}
	return d
}

// Dataset is one of the benchmark's three datasets.
type Dataset int

const (
	CIFAR10 Dataset = iota
	CIFAR100
	ImageNet16
)

// DatasetNames are the names ParseDataset accepts, in Dataset order.
var DatasetNames = []string{"cifar10", "cifar100", "imagenet16"}

func (d Dataset) String() string {
	if d >= 0 && int(d) < len(DatasetNames) {
		return DatasetNames[d]
	}
	return fmt.Sprintf("Dataset(%d)", int(d))
}

// ParseDataset returns the dataset called name.
func ParseDataset(name string) (Dataset, error) {
	for i, n := range DatasetNames {
		if n == name {
			return Dataset(i), nil
		}
	}
	return 0, fmt.Errorf("unknown dataset %q: valid datasets are %s", name, strings.Join(DatasetNames, ", "))
}

// Cell is one row of the table. Accuracies are percentages indexed by
// Dataset.
type Cell struct {
	Index  int        // the benchmark's architecture index
	Arch   string     // the benchmark's cell string
	Ops    [Edges]int // operation per edge, 0..4
	Valid  [3]float64 // validation accuracy after 12 epochs: the search signal
	Test   [3]float64 // test accuracy after 200 epochs: reported only
	MFLOPs float64
	Params float64 // millions
}

// Connected reports whether the cell has a path from its input (node 0) to
// its output (node 3) through edges whose operation is not "none". The
// benchmark gives the 341 cells without one chance accuracy everywhere.
func (c *Cell) Connected() bool {
	o := c.Ops // edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3; operation 0 is none
	node1 := o[0] != 0
	node2 := o[1] != 0 || (node1 && o[2] != 0)
	return o[3] != 0 || (node1 && o[4] != 0) || (node2 && o[5] != 0)
}

// ValidColumn names the table's column of d's 12-epoch validation accuracy.
func (d Dataset) ValidColumn() string { return columns[3+2*d] }

// TestColumn names the table's column of d's 200-epoch test accuracy.
func (d Dataset) TestColumn() string { return columns[4+2*d] }

// Table holds all cells, indexed by their operations in base 5 (edge 0 most
// significant), so Choices map to rows directly.
type Table struct {
	cells [Cells]Cell
}

// Lookup returns the cell with the given operations per edge.
func (t *Table) Lookup(choices []int) (*Cell, error) {
	if len(choices) != Edges {
		return nil, fmt.Errorf("cell %v has %d edges; NAS-Bench-201 cells have %d", choices, len(choices), Edges)
	}
	i := 0
	for _, c := range choices {
		if c < 0 || c >= Ops {
			return nil, fmt.Errorf("cell %v: operation %d is out of range 0..%d", choices, c, Ops-1)
		}
		i = i*Ops + c
	}
	return &t.cells[i], nil
}

// All returns every cell, in the order of their operations in base 5.
func (t *Table) All() []*Cell {
	all := make([]*Cell, Cells)
	for i := range t.cells {
		all[i] = &t.cells[i]
	}
	return all
}

// Best returns the highest 200-epoch test accuracy of any cell on d.
func (t *Table) Best(d Dataset) float64 {
	best := 0.0
	for i := range t.cells {
		best = max(best, t.cells[i].Test[d])
	}
	return best
}

var columns = []string{
	"index", "arch_str", "ops_idx",
	"c10_valid12", "c10_test200", "c100_valid12", "c100_test200",
	"in16_valid12", "in16_test200", "flops_c10_M", "params_c10_M",
}

//go:embed nb201.csv
var embeddedCSV string

var parseEmbedded = sync.OnceValues(func() (*Table, error) { return Read(strings.NewReader(embeddedCSV)) })

// Embedded returns the table built into the binary: nb201.csv beside this
// file (README.md there gives its sources, NAS-Bench-201 and NATS-Bench,
// and their licence). The CSV is parsed once; each call returns a copy of
// its own.
func Embedded() (*Table, error) {
	t, err := parseEmbedded()
	if err != nil {
		return nil, fmt.Errorf("read the built-in NAS-Bench-201 table: %w", err)
	}
	c := *t
	return &c, nil
}

// Load reads the table from the CSV file at path.
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open NAS-Bench-201 table: %w", err)
	}
	defer f.Close()
	t, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("read NAS-Bench-201 table %s: %w", path, err)
	}
	return t, nil
}

// Read parses the table's CSV: a header naming the columns (in any order,
// extra columns ignored) and one row for each of the 15,625 cells.
func Read(r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file; want a CSV header and 15625 rows")
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	col := make(map[string]int, len(head))
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	pos := make([]int, len(columns))
	for i, c := range columns {
		p, ok := col[c]
		if !ok {
			return nil, fmt.Errorf("header has no column %q; want columns %s", c, strings.Join(columns, ","))
		}
		pos[i] = p
	}
	t := new(Table)
	var have [Cells]bool
	n := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		var c Cell
		if c.Index, err = strconv.Atoi(rec[pos[0]]); err != nil || c.Index < 0 {
			return nil, fmt.Errorf("line %d: index %q is not a non-negative integer", line, rec[pos[0]])
		}
		c.Arch = rec[pos[1]]
		ops := rec[pos[2]]
		if len(ops) != Edges {
			return nil, fmt.Errorf("line %d: ops_idx %q has %d digits; want %d digits 0..4", line, ops, len(ops), Edges)
		}
		id := 0
		for i := range Edges {
			d := int(ops[i]) - '0'
			if d < 0 || d >= Ops {
				return nil, fmt.Errorf("line %d: ops_idx %q has digit %q; want digits 0..4", line, ops, ops[i])
			}
			c.Ops[i] = d
			id = id*Ops + d
		}
		if have[id] {
			return nil, fmt.Errorf("line %d: ops_idx %s appears twice", line, ops)
		}
		have[id] = true
		fields := []*float64{&c.Valid[0], &c.Test[0], &c.Valid[1], &c.Test[1], &c.Valid[2], &c.Test[2], &c.MFLOPs, &c.Params}
		for i, f := range fields {
			s := rec[pos[3+i]]
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 || v > 1e6 || v != v {
				return nil, fmt.Errorf("line %d: %s %q is not a non-negative number", line, columns[3+i], s)
			}
			if i < 6 && v > 100 {
				return nil, fmt.Errorf("line %d: %s %q is not a percentage in [0, 100]", line, columns[3+i], s)
			}
			*f = v
		}
		t.cells[id] = c
		n++
	}
	if n != Cells {
		return nil, fmt.Errorf("table has %d cells; NAS-Bench-201 has %d (every ops_idx of 6 digits 0..4)", n, Cells)
	}
	return t, nil
}
