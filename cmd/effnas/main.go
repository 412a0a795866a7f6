// Command effnas searches an EfficientNet baseline in the MnasNet space,
// grid-searches its compound-scaling coefficients and exports the family.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"golang.org/x/term"

	"github.com/effnas/effnas/search"
)

func main() {
	// Go's garbage collector lets the heap grow to twice what is live
	// before it collects, and a training's steps leave garbage: over a
	// long training a process could hold about twice what the memory
	// budget (search.MemoryBudget) counts. A soft limit near the memory
	// this process may use makes the collector work harder there instead
	// of letting the kernel kill the sweep. GOMEMLIMIT, when set, wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(softMemoryLimit * float64(search.MachineMemory())))
	}
	search.ReportOutages(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &Env{
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Terminal: term.IsTerminal(int(os.Stdout.Fd())),
	}
	err := Run(ctx, env, os.Args[1:])
	stop()
	if err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintf(os.Stderr, "effnas: %v\n", err)
		}
		var u *usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		if errors.Is(err, errInterrupted) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

// softMemoryLimit is the share of the memory this process may use at
// which the garbage collector starts to work harder.
const softMemoryLimit = 0.9

// Env is what a subcommand may touch of the outside world; tests inject it.
type Env struct {
	Stdout   io.Writer
	Stderr   io.Writer
	Terminal bool // stdout is a terminal: show progress bars instead of log lines
}

type command struct {
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands is filled by register calls in each subcommand's file.
var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, env *Env, args []string) error) {
	if _, dup := commands[name]; dup {
		panic("effnas: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errSilent is returned when the message was already printed (e.g. -h).
var errSilent = errors.New("silent")

// Run runs the effnas command line with args (without the program name).
func Run(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(env.Stdout)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return usagef("unknown command %q; run 'effnas help' for the list of commands", args[0])
	}
	err := c.run(ctx, env, args[1:])
	if err != nil && !errors.Is(err, errSilent) {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return err
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "effnas searches an EfficientNet baseline (B0) in the MnasNet space, grid-searches")
	fmt.Fprintln(w, "alpha, beta and gamma at phi = 1, and exports B0, the coefficients and the family.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: effnas <command> [flags]   (effnas <command> -h for its flags)")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
}
