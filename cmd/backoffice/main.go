// Command backoffice is the command-line client of the back-office daemon:
// it imports customers, looks up customers, imports and tasks, enqueues
// jobs, and operates campaigns and schedules through the daemon's REST API.
//
// It finds the daemon at $BACKOFFICE_URL (default http://127.0.0.1:8080) and
// authenticates with $BACKOFFICE_TOKEN, or the file named by --token-file
// (default ./var/operator.token, which `make run` creates). --json prints the
// API's JSON for scripts instead of tables.
//
// Exit status: 0 on success, 1 when the command failed, 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

const usage = `usage: backoffice [--json] [--url URL] [--token-file FILE] COMMAND ...

Commands:
  customers import FILE [--source S] [--wait]   upload a CSV of customers and queue its import
  customers show REF [--events N]              a customer (id, e-mail or phone) and its timeline
  inbox [--kind K] [--limit N]                 unanswered customer messages and unfiled input
  inbox resolve ID                             mark an inbox entry as dealt with
  imports show ID                              an import's summary and first row errors
  jobs show TASK_ID                            a task's state in any queue
  jobs enqueue KIND [JSON|@FILE|@-]            queue a job; args as JSON, from a file or stdin
  jobs kinds                                   every job kind, its queue and retries
  campaign list                                every campaign of the schedule files and its latest run
  campaign status NAME [--run ID]              a run's state, counts, send rate and progress
  campaign run NAME                            launch a run now; prints its id
  campaign test NAME --to ADDR [--lang L] [--customer ID] [--wait 60s]
                                               send one test message and show what was sent
  campaign dry-run NAME [--wait 10m]           what a launch now would do, sending nothing
  campaign pause|cancel NAME [--reason TEXT] [--run ID]
                                               stop sending for now, or end a run for good
  campaign resume NAME [--run ID]              let a paused run send again
  campaign retry-failed NAME [--run ID]        a new run of the failed recipients of a run
  schedules list                               the daemon's schedule entries, next tick, last run
  schedules check [DIR]                        check schedule files without a daemon
  version                                      print the version of this program
  help                                         print this text

Environment: BACKOFFICE_URL (default http://127.0.0.1:8080), BACKOFFICE_TOKEN.
Global flags may also follow the command.
`

// commandGroups is the dispatch table: one line per command group.
func commandGroups() map[string]func(ctx context.Context, a *app, args []string) error {
	return map[string]func(ctx context.Context, a *app, args []string) error{
		"campaign":  runCampaign,
		"customers": runCustomers,
		"inbox":     runInbox,
		"imports":   runImports,
		"jobs":      runJobs,
		"schedules": runScheduleGroup,
		"version":   runVersion,
		"help": func(_ context.Context, a *app, _ []string) error {
			_, err := fmt.Fprint(a.stdout, usage)
			return err
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// app is what every command gets: its streams, the environment and the
// global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	globals        globals
	clients        []*client // closed when the command is done
}

// globals are the flags every command accepts, before or after it.
type globals struct {
	json      bool
	url       string
	tokenFile string
}

// addTo defines the global flags on fs.
func (g *globals) addTo(fs *flag.FlagSet) {
	fs.BoolVar(&g.json, "json", g.json, "print the API's JSON instead of tables")
	fs.StringVar(&g.url, "url", g.url, "daemon URL (default $BACKOFFICE_URL, else http://127.0.0.1:8080)")
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "file holding the API token (default $BACKOFFICE_TOKEN, else ./var/operator.token)")
}

// run runs one command line and returns the exit status.
func run(ctx context.Context, args []string, a *app) int {
	fs := newFlagSet("backoffice", a)
	a.globals.addTo(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprint(a.stderr, usage)
		return 2
	}
	name := fs.Arg(0)
	group, ok := commandGroups()[name]
	if !ok {
		fmt.Fprintf(a.stderr, "backoffice: unknown command %q\n\n%s", name, usage)
		return 2
	}
	err := group(ctx, a, fs.Args()[1:])
	for _, c := range a.clients {
		c.http.CloseIdleConnections()
	}
	return report(a, err)
}

// report prints err as one line and turns it into the exit status.
func report(a *app, err error) int {
	var code exitCode
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "backoffice: %s\n%s", ue.msg, ue.usage)
		return 2
	}
	fmt.Fprintf(a.stderr, "backoffice: %v\n", err)
	return 1
}

// exitCode is an exit status of a command that has already printed its own
// messages.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// usageError is a command line that does not fit the command's usage.
type usageError struct {
	msg, usage string
}

func (e *usageError) Error() string { return e.msg }

func usagef(usage, format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...), usage: usage}
}

func newFlagSet(name string, a *app) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	return fs
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (`customers show REF --events 5`), plus the
// global flags, and returns the positional arguments. A bare "--" ends
// the flags.
func parseInterspersed(fs *flag.FlagSet, a *app, usage string, args []string) ([]string, error) {
	a.globals.addTo(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, exitCode(2) // flag has printed the problem and the usage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// subcommand picks the subcommand of a group from a table.
func subcommand(ctx context.Context, a *app, group, usage string, args []string,
	table map[string]func(context.Context, *app, []string) error) error {
	if len(args) == 0 {
		return usagef(usage, "%s: which subcommand?", group)
	}
	run, ok := table[args[0]]
	if !ok {
		names := make([]string, 0, len(table))
		for n := range table {
			names = append(names, n)
		}
		slices.Sort(names)
		return usagef(usage, "%s %s: unknown subcommand (want %s)", group, args[0], strings.Join(names, ", "))
	}
	return run(ctx, a, args[1:])
}
