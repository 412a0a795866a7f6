package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlagSet returns a flag set that reports errors instead of exiting, and
// prints its usage to w only when asked with -h.
func newFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}

// parseOnly, given as a command's Env.Stderr, stops the command right
// after its flags parse, before it checks their values or touches anything:
// parseFlags returns errParseOnly. Tests run the command lines of deploy/
// through the real flag sets with it, so that a renamed flag fails them.
type parseOnly struct{ io.Writer }

// errParseOnly is what a command run with parseOnly returns once its flags
// have parsed.
var errParseOnly = errors.New("flags parsed; stopped there (parse only)")

// parseFlags parses args; -h prints the usage and returns errSilent, and any
// other mistake (unknown flag, bad number, stray argument) is a usage error.
// A flag set whose output is parseOnly returns errParseOnly once parsed.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	_, only := out.(parseOnly)
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(out)
		fmt.Fprintf(out, "Usage of effnas %s:\n", fs.Name())
		fs.PrintDefaults()
		return errSilent
	}
	if err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if only {
		return errParseOnly
	}
	return nil
}
