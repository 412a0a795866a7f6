package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/store"
)

func init() {
	register("export", "export B0, the coefficients and the B1..B7 family as json, tf, timm or a md report", runExport)
}

var exportFormats = []string{"json", "tf", "timm", "md"}

// runExport writes B0, the coefficients and the family. Which studies:
// --study names a search study (its newest complete compound grid gives the
// coefficients) or a compound grid study (B0 is its base); by default the
// newest compound grid study, else the newest search study with the
// paper's coefficients. How it chose is said on stderr.
//
// json, tf and timm go to stdout or --out. md needs --out: the report links
// its PNG plots, written beside it (report.md -> report-search.png,
// report-grid.png). Every file is written atomically, and nothing is
// written when anything fails.
func runExport(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("export", env.Stderr)
	db := dbFlag(fs, "effnas.db", "database file or postgres:// URL; it is only read")
	studyFlag := fs.String("study", "", "search or compound grid study id (default: the newest grid study, else the newest search study)")
	format := fs.String("format", "json", "output format: json, tf (TF efficientnet_builder), timm, or md (report with PNG plots); default: md for --out FILE.md, else json")
	out := fs.String("out", "", "output file (default stdout); required for md, whose PNG plots are written beside it")
	top := fs.Int("top", export.DefaultTop, "how many of the best search trials to list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var id int64
	set, formatSet := false, false
	fs.Visit(func(f *flag.Flag) {
		set = set || f.Name == "study"
		formatSet = formatSet || f.Name == "format"
	})
	if !formatSet {
		// The file's name says what the user wants.
		switch strings.ToLower(filepath.Ext(*out)) {
		case ".md":
			*format = "md"
		case ".py":
			return usagef("--out %q: a Python file can hold the tf or the timm definitions; give --format tf or --format timm", *out)
		}
	}
	if set {
		n, err := strconv.ParseInt(*studyFlag, 10, 64)
		if err != nil || n < 1 {
			return usagef("--study %q: want a study id, a whole number from 1 (effnas list%s shows them)", *studyFlag, db.Flag())
		}
		id = n
	}
	known := false
	for _, f := range exportFormats {
		known = known || *format == f
	}
	if !known {
		return usagef("--format %q: unknown; want one of %s", *format, strings.Join(exportFormats, ", "))
	}
	if *top < 1 || *top > 10000 {
		return usagef("--top %d: must be 1 to 10000", *top)
	}
	if *format == "md" && *out == "" {
		return usagef("--format md needs --out FILE.md: the report links PNG plots that are written beside it")
	}
	if *out != "" {
		if err := checkOut(*out, *format, db.Raw()); err != nil {
			return err
		}
	}

	s, err := openForReading(ctx, db)
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := export.Build(ctx, s, export.Options{Study: id, Top: *top})
	switch {
	case errors.Is(err, store.ErrNotFound) && id != 0:
		return usagef("--study %d: no such study in %s; %s", id, db, studyIDs(ctx, s, db))
	case errors.Is(err, export.ErrNothing):
		return fmt.Errorf("%s: %w", db, err)
	case err != nil:
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(env.Stderr, "note: %s\n", n)
	}

	var data []byte
	switch *format {
	case "json":
		if data, err = rep.JSON(); err != nil {
			return err
		}
	case "tf":
		data = rep.TF()
	case "timm":
		data = rep.Timm()
	case "md":
		files, err := rep.MarkdownFiles(*out)
		if err != nil {
			return err
		}
		if err := export.WriteFiles(files); err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintf(env.Stderr, "wrote %s\n", f.Path)
		}
		return nil
	}
	if *out == "" {
		_, err := env.Stdout.Write(data)
		return err
	}
	if err := export.WriteFile(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "wrote %s\n", *out)
	return nil
}

// checkOut refuses an --out that cannot be written before the database is
// opened: a missing directory, a directory given as the file, or the
// database itself (or, for md, a plot path that is the database).
func checkOut(out, format, db string) error {
	shown := redact(db)
	paths := []string{out}
	if format == "md" {
		s, g := export.PlotPaths(out)
		paths = append(paths, s, g)
	}
	if dbInfo, err := os.Stat(db); err == nil {
		for _, p := range paths {
			if fi, err := os.Stat(p); err == nil && os.SameFile(fi, dbInfo) {
				return usagef("--out %q: %s is the database %s; write the export elsewhere", out, p, shown)
			}
		}
	}
	if strings.HasSuffix(out, string(filepath.Separator)) {
		return usagef("--out %q: is a directory; want a file path, e.g. --out %sfamily.%s", out, out, extFor(format))
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return usagef("--out %q: is a directory; want a file path, e.g. --out %s", out, filepath.Join(out, "family."+extFor(format)))
	}
	// A missing directory is created when the export is written; one of
	// its parents being a file is a mistake.
	for dir := filepath.Dir(out); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return usagef("--out %q: %s is a file, not a directory; write elsewhere", out, dir)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return usagef("--out %q: %v", out, err)
		}
		if next := filepath.Dir(dir); next == dir {
			return nil
		}
	}
}

func extFor(format string) string {
	switch format {
	case "tf", "timm":
		return "py"
	}
	return format
}
