// Command loadcampaign measures the campaign engine end to end, each figure
// against a baseline measured in the same run (the machine is shared and
// noisy, so ratios mean more than absolute numbers):
//
//   - email: go-mail sending straight to an in-process SMTP sink over N
//     connections from a process of its own, as the daemon is (the ceiling
//     (a); half before and half after the campaign; go-mail's transaction
//     waits for each reply), the same from this process next to the sink
//     for reference (a'), the daemon's own sender (workers/email's Pool,
//     which pipelines MAIL, RCPT and DATA where the server offers
//     PIPELINING, as the sink does) from a process of its own without the
//     campaign around it, for reference (a"), and a campaign of the
//     same message to -email-recipients addresses through backofficed
//     (BACKOFFICE_SMTP_POOL=N) into the same sink, from the launch to the
//     run's state "finished" (b); afterwards every recipient must have got
//     exactly one message. The CPU time of the sender or daemon, its
//     redis-server and this process (the sink) is reported per message,
//     and the Redis commands and AOF bytes the campaign wrote per recipient.
//     The round runs -email-rounds times (3), each with a campaign run of its
//     own; the figures are those of the round with the median (b)/(a), and
//     every round's ratio is listed: on a shared machine one round's ratio
//     moves by ±0.1 with the load of the host.
//   - plan: the launch of a -plan-recipients audience, the run paused as soon
//     as it exists so that only planning runs: time until every chunk is
//     planned, the daemon's peak RSS, and Redis memory per recipient, against
//     bare pipelined writes of the same ledger shape.
//   - sms: an SMS campaign at -sms-rate against a local Twilio Messages API
//     (workers/sms/twiliotest), first without failures, then answering 429
//     and 500 to a share of the requests: the achieved rate against the
//     configured one, and no recipient sent to twice or lost.
//
// Each phase starts its own redis-server and backofficed on free loopback
// ports, in a temporary directory that is removed afterwards (kept when the
// phase failed). Campaigns are defined in a schedule file the daemon loads
// and launched with POST /api/jobs/campaign:launch. What `make
// bench-campaign` runs:
//
//	loadcampaign -daemon bin/backofficed
//	loadcampaign -daemon bin/backofficed -quick    # a few minutes
//	loadcampaign -daemon bin/backofficed -phases email -perf /tmp/daemon.perf
//
// It prints a table of every figure with its baseline, ratio, target and
// PASS/MISS, and exits 1 when a message was lost or sent twice or a phase
// could not be measured. Missed performance targets are reported, not
// enforced.
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
	"time"
)

// Phases of a run, in the order they run.
const (
	phaseEmail = "email"
	phasePlan  = "plan"
	phaseSMS   = "sms"
)

var allPhases = []string{phaseEmail, phasePlan, phaseSMS}

// options are the command-line flags.
type options struct {
	daemon           string
	phases           []string
	quick            bool
	aof              bool
	keep             bool
	smtpPool         int
	concurrency      int
	emailRecipients  int
	emailRounds      int
	baselineMessages int
	emailRate        float64
	planRecipients   int
	smsRecipients    int
	smsRate          float64
	sms429, sms500   float64
	smsClean         bool
	smsTimeout       time.Duration
	seed             uint64
	perf             string
	timeout          time.Duration
}

// quickDefaults are the values -quick uses for the flags not given explicitly.
var quickDefaults = map[string]string{
	"email-recipients": "10000", "baseline-messages": "10000", "email-rounds": "1",
	"plan-recipients": "100000", "sms-recipients": "6000", "sms-timeout": "2m",
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var phases string
	fs := flag.NewFlagSet("loadcampaign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.daemon, "daemon", "", "backofficed binary to start, with a private redis-server, for each phase (required)")
	fs.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run, comma-separated: email (figures a, b), plan (c), sms (d)")
	fs.BoolVar(&o.quick, "quick", false, "smaller runs: 10,000 mails in one round, 100,000 planned, 6,000 SMS cut after 2m (flags given explicitly win)")
	fs.BoolVar(&o.aof, "aof", true, "run redis-server with AOF (appendfsync everysec), as in production")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directories (logs, AOF) after a successful run")
	fs.IntVar(&o.smtpPool, "smtp-pool", 8, "SMTP connections: BACKOFFICE_SMTP_POOL and the baseline's (1..64); 8 = the daemon's default")
	fs.IntVar(&o.concurrency, "concurrency", 40, "BACKOFFICE_CONCURRENCY of the daemon (3..1000); 40 = the daemon's default")
	fs.IntVar(&o.emailRecipients, "email-recipients", 100_000, "recipients of the e-mail campaign (b)")
	fs.IntVar(&o.baselineMessages, "baseline-messages", 100_000, "messages go-mail sends straight to the sink (a)")
	fs.IntVar(&o.emailRounds, "email-rounds", 3, "rounds of (a) around (b), each with a campaign of its own; the round with the median (b)/(a) is reported (1..9)")
	fs.Float64Var(&o.emailRate, "email-rate", 10_000, "rate of the e-mail campaign, per second (at most 10000, the engine's limit)")
	fs.IntVar(&o.planRecipients, "plan-recipients", 1_000_000, "audience of the planning run (c)")
	fs.IntVar(&o.smsRecipients, "sms-recipients", 12_000, "recipients of the SMS campaign (d); at -sms-rate, 12,000 is a minute")
	fs.Float64Var(&o.smsRate, "sms-rate", 200, "rate of the SMS campaign, per second")
	fs.Float64Var(&o.sms429, "sms-429", 0.05, "share of Twilio requests answered 429 (code 20429, Retry-After: 1)")
	fs.Float64Var(&o.sms500, "sms-500", 0.01, "share of Twilio requests answered 500 (HTML body)")
	fs.BoolVar(&o.smsClean, "sms-clean", true, "first run the SMS campaign without injected failures, for comparison")
	fs.DurationVar(&o.smsTimeout, "sms-timeout", 5*time.Minute, "cancel an SMS run not finished after this long and report what it did")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the injected Twilio failures")
	fs.StringVar(&o.perf, "perf", "", "record the daemon with perf record -g into this `file` during the e-mail campaign (b); perf report -i file shows where its time went")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "longest a campaign run may take to finish")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickDefaults {
			if !set[name] {
				_ = fs.Set(name, v) // the values are valid integers
			}
		}
	}
	var err error
	if o.phases, err = parsePhases(phases); err != nil {
		return o, err
	}
	return o, o.check(fs)
}

// parsePhases parses -phases: known names, each once, run in the usual order.
func parsePhases(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		switch {
		case !slices.Contains(allPhases, p):
			return nil, fmt.Errorf("-phases: unknown phase %q, want some of %s", p, strings.Join(allPhases, ","))
		case slices.Contains(out, p):
			return nil, fmt.Errorf("-phases: %q given twice", p)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(allPhases, a) - slices.Index(allPhases, b) })
	return out, nil
}

func (o options) check(fs *flag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.daemon == "":
		return errors.New("-daemon is required: the backofficed binary to measure")
	case o.smtpPool < 1 || o.smtpPool > 64:
		return fmt.Errorf("-smtp-pool: want 1..64 (BACKOFFICE_SMTP_POOL's range), got %d", o.smtpPool)
	case o.concurrency < 3 || o.concurrency > 1000:
		return fmt.Errorf("-concurrency: want 3..1000 (BACKOFFICE_CONCURRENCY's range), got %d", o.concurrency)
	case o.emailRecipients < 1 || o.emailRecipients > maxAudience:
		return fmt.Errorf("-email-recipients: want 1..%d, got %d", maxAudience, o.emailRecipients)
	case o.emailRounds < 1 || o.emailRounds > 9:
		return fmt.Errorf("-email-rounds: want 1..9, got %d", o.emailRounds)
	case o.baselineMessages < 1:
		return fmt.Errorf("-baseline-messages: want 1 or more, got %d", o.baselineMessages)
	case o.emailRate <= 0 || o.emailRate > 10000:
		return fmt.Errorf("-email-rate: want above 0 and at most 10000, got %v", o.emailRate)
	case o.planRecipients < 1 || o.planRecipients > maxAudience:
		return fmt.Errorf("-plan-recipients: want 1..%d, got %d", maxAudience, o.planRecipients)
	case o.smsRecipients < 1 || o.smsRecipients > maxPhones:
		return fmt.Errorf("-sms-recipients: want 1..%d, got %d", maxPhones, o.smsRecipients)
	case o.smsRate <= 0 || o.smsRate > 10000:
		return fmt.Errorf("-sms-rate: want above 0 and at most 10000, got %v", o.smsRate)
	case o.sms429 < 0 || o.sms500 < 0 || o.sms429+o.sms500 >= 1:
		return fmt.Errorf("-sms-429 and -sms-500: want shares >= 0 that sum below 1, got %v and %v", o.sms429, o.sms500)
	case o.timeout <= 0 || o.smsTimeout <= 0:
		return fmt.Errorf("-timeout and -sms-timeout: must be positive, got %v and %v", o.timeout, o.smsTimeout)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) == 2 && os.Args[1] == senderArg {
		os.Exit(senderMain(ctx, os.Stdin, os.Stdout))
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadcampaign:", err)
		os.Exit(2)
	}
	ok, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadcampaign:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}
