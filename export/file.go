package export

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is one file an export writes.
type File struct {
	Path string
	Data []byte
}

// WriteFile writes data to path atomically: to a temporary file in the same
// directory, synced, then renamed over path, so a reader sees the old file
// or the whole new one, never a part. Nothing is left behind on error.
func WriteFile(path string, data []byte) error {
	return WriteFiles([]File{{Path: path, Data: data}})
}

// WriteFiles writes files atomically as WriteFile does, all of them to
// temporary files first and only then renamed into place, so that when
// one cannot be written (a full disk, a directory that cannot be made)
// none is, and
// nothing is left behind.
func WriteFiles(files []File) (err error) {
	tmps := make([]string, 0, len(files))
	defer func() {
		if err != nil {
			for _, t := range tmps {
				os.Remove(t) // already renamed ones are gone: harmless
			}
		}
	}()
	for _, f := range files {
		// A missing directory is created, as export --out report/report.md
		// expects; it stays (empty) should a later file fail.
		if err := os.MkdirAll(dirOf(f.Path), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		tmp, err := writeTemp(f.Path, f.Data)
		if err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	dirs := map[string]bool{}
	for i, f := range files {
		if err := os.Rename(tmps[i], f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		dirs[dirOf(f.Path)] = true
	}
	// Make the renames durable; a directory that cannot be synced is not
	// worth failing an export for.
	for dir := range dirs {
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

func dirOf(path string) string {
	if dir := filepath.Dir(path); dir != "" {
		return dir
	}
	return "."
}

// writeTemp writes data to a new temporary file beside path, synced and
// closed, and returns its name.
func writeTemp(path string, data []byte) (tmp string, err error) {
	f, err := os.CreateTemp(dirOf(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp = f.Name()
	closed := false
	defer func() {
		if !closed {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("write %s: %w", path, cerr)
			}
		}
		if err != nil {
			os.Remove(tmp)
			tmp = ""
		}
	}()
	if _, err := f.Write(data); err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return tmp, fmt.Errorf("write %s: sync: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}
