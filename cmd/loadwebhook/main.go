// Command loadwebhook measures the Twilio incoming-SMS webhook: it posts
// signed requests from many connections on loopback for a fixed time,
// reports requests/s and p50/p99 latency, then waits for the daemon to
// process the queue and checks that every request answered 200 produced
// exactly one timeline entry. In the same run it measures a bare asynq
// enqueue loop against the same Redis, the ceiling the webhook is compared
// with.
//
// It sends as wrk does, so that on a small machine it measures the daemon
// and not itself: each connection is a raw keep-alive HTTP/1.1 connection
// that gets a whole request in one write, its form and signature built
// into reused buffers. It reports the CPU time per request of itself, the
// daemon and redis-server (these two when it started them) and how many
// cores all processes of the machine kept busy, to show whether the daemon
// had the machine to itself.
//
// Against a running daemon (Twilio auth token T, public URL = the URL
// called):
//
//	loadwebhook -url http://127.0.0.1:8080/webhooks/twilio/sms -token T -redis redis://127.0.0.1:6379/0
//
// Self-contained (what `make bench-webhook` runs): start a private
// redis-server and the given backofficed binary on free loopback ports:
//
//	loadwebhook -daemon bin/backofficed -duration 20s
//
// It exits 1 when a message was lost or duplicated, or a request failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	url          string
	signURL      string
	token        string
	redisURL     string
	prefix       string
	region       string
	daemon       string
	aof          bool
	keep         bool
	duration     time.Duration
	warmup       time.Duration
	baseline     time.Duration
	concurrency  int
	rate         float64
	phones       int
	replayRatio  float64
	drainTimeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadwebhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "webhook URL to post to, http:// (with -daemon: chosen)")
	fs.StringVar(&o.signURL, "sign-url", "", "URL to sign, when the daemon's BACKOFFICE_PUBLIC_URL differs from -url (default -url)")
	fs.StringVar(&o.token, "token", os.Getenv("BACKOFFICE_TWILIO_AUTH_TOKEN"), "Twilio auth token the daemon checks (default $BACKOFFICE_TWILIO_AUTH_TOKEN)")
	fs.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/0", "the daemon's Redis, for the check and the baseline (with -daemon: chosen)")
	fs.StringVar(&o.prefix, "prefix", "bo:", "the daemon's BACKOFFICE_KEY_PREFIX")
	fs.StringVar(&o.region, "region", "SK", "the daemon's BACKOFFICE_PHONE_REGION")
	fs.StringVar(&o.daemon, "daemon", "", "backofficed binary to start with a private redis-server (then -url, -token and -redis are chosen)")
	fs.BoolVar(&o.aof, "aof", true, "with -daemon: run redis-server with AOF (appendfsync everysec), as in production")
	fs.BoolVar(&o.keep, "keep", false, "with -daemon: keep the temporary directory (logs, AOF) after a successful run")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long to post webhooks")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "send for this long first, untimed (connections open, caches fill); checked like the rest")
	fs.DurationVar(&o.baseline, "baseline", 5*time.Second, "how long to run the bare asynq enqueue loop (0: skip)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "requests in flight at most (connections)")
	fs.Float64Var(&o.rate, "rate", 0, "send this many requests per second, whatever the answers (open loop; 0: each connection sends when answered)")
	fs.IntVar(&o.phones, "phones", 1000, "distinct sender numbers (customers)")
	fs.Float64Var(&o.replayRatio, "replay", 0.05, "share of requests that repeat an earlier one, as Twilio's retries do")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Minute, "how long to wait for the daemon to process the queue")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.daemon == "" && (o.url == "" || o.token == ""):
		return o, errors.New("-url and -token are required without -daemon")
	case o.daemon == "" && !strings.HasPrefix(o.url, "http://"):
		return o, fmt.Errorf("-url %q: want http://host[:port]/path (the generator speaks plain HTTP/1.1)", o.url)
	case o.concurrency < 1 || o.concurrency > 4096:
		return o, fmt.Errorf("-concurrency: want 1..4096, got %d", o.concurrency)
	case o.phones < 1 || o.phones > 900000:
		return o, fmt.Errorf("-phones: want 1..900000, got %d", o.phones)
	case o.replayRatio < 0 || o.replayRatio >= 1:
		return o, fmt.Errorf("-replay: want 0 <= r < 1, got %v", o.replayRatio)
	case o.rate < 0:
		return o, fmt.Errorf("-rate: must not be negative, got %v", o.rate)
	case o.warmup < 0:
		return o, fmt.Errorf("-warmup: must not be negative, got %v", o.warmup)
	case o.duration <= 0:
		return o, fmt.Errorf("-duration: must be positive, got %v", o.duration)
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadwebhook:", err)
		os.Exit(2)
	}
	ok, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadwebhook:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}
