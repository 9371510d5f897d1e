// Command backofficed is the back-office daemon: asynq workers on Redis, the
// schedules of cron entries, and the HTTP dashboard, API, webhooks and
// /metrics, configured by BACKOFFICE_* variables and flags.
//
//	backofficed -check    print the effective configuration and exit
//	backofficed -h        list every setting
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/cmd/internal/logging"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr))
}

// realMain runs the daemon and returns the exit status: 0 after a clean
// shutdown or -check, 1 when the daemon fails, 2 for a bad configuration.
// Logs (JSON) go to stdout; configuration problems to stderr. environ
// (os.Environ) is checked for misspelt BACKOFFICE_* names.
func realMain(args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(getenv, args)
	if errors.Is(err, flag.ErrHelp) {
		config.Usage(stdout)
		return 0
	}
	err = errors.Join(err, config.CheckNames(environ))
	if err != nil {
		fmt.Fprintln(stderr, "backofficed: invalid configuration:")
		for _, e := range splitErrors(err) {
			fmt.Fprintln(stderr, "  "+e.Error())
		}
		return 2
	}
	if cfg.Check {
		cfg.WriteTable(stdout)
		for _, w := range warnings(cfg) {
			fmt.Fprintln(stdout, "warning: "+w)
		}
		return 0
	}
	// SIGHUP's default action ends the process. The scheduler reloads on it
	// while it runs; before it starts and after it stops, while tasks in
	// flight finish, a SIGHUP (a log rotation, a reload sent at the wrong
	// moment) must not cut the start or the shutdown short: it is dropped.
	hangup := make(chan os.Signal, 1)
	signal.Notify(hangup, syscall.SIGHUP)
	defer signal.Stop(hangup)
	if err := cfg.EnsureSecrets(); err != nil {
		fmt.Fprintln(stderr, "backofficed: "+err.Error())
		return 1
	}
	log := logging.New(stdout, cfg.LogLevel, cfg.Secrets()...)
	tuneGC(getenv)
	redis.SetLogger(logging.RedisLogger(log)) // go-redis's pool messages, as JSON

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("backofficed stopped", "error", err)
		return 1
	}
	return 0
}

// defaultGOGC is the garbage collector's target when GOGC is not set.
// The daemon keeps little live (about 10 MiB during a campaign) and
// allocates about 20 KiB per message: at Go's default of 100 it collected
// 89 times in a 40,000-message campaign, about 6 ms of CPU each; at 400,
// 21 times (~11 µs of CPU less per message). The heap may grow to five
// times what is live: a 1,000,000-recipient launch peaks at about 56 MiB
// instead of 37 (make bench-campaign).
const defaultGOGC = 400

// tuneGC sets the collector's target to defaultGOGC unless the operator
// set GOGC (the runtime already applied theirs, as it does GOMEMLIMIT).
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
}

// splitErrors returns the errors joined in err, flattened: the problems
// of the configuration and of the environment's names are joins inside a
// join, and each problem is printed on a line of its own.
func splitErrors(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, splitErrors(e)...)
	}
	return out
}
