package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
)

// smsFrom is the daemon's BACKOFFICE_TWILIO_FROM in the bench.
const smsFrom = "+421233000000"

// smsRun is what one run of the SMS campaign did.
type smsRun struct {
	recipients int
	rate       float64 // configured, per second
	p429, p500 float64
	accepted   int // messages the Twilio server accepted (201)
	twilio     twilioTally
	elapsed    time.Duration // from the launch request to the end of the run
	timedOut   bool          // cancelled by the tool after -sms-timeout
	status     campaigns.RunStatus
	check      deliveries
}

// achieved is the accepted messages per second between the first and the
// last accepted.
func (r smsRun) achieved() float64 {
	return rateBetween(r.twilio.passed, r.twilio.first, r.twilio.last)
}

// ok reports whether no recipient was sent to twice or lost.
func (r smsRun) ok() bool { return r.check.ok() && r.twilio.passed == r.accepted }

// withinRate reports whether the achieved rate is within the tolerance of
// the configured one, over a run that finished.
func (r smsRun) withinRate() bool {
	return !r.timedOut && math.Abs(r.achieved()-r.rate) <= targetSMSTolerance*r.rate
}

func (r smsRun) label() string {
	if r.p429 == 0 && r.p500 == 0 {
		return "no failures injected"
	}
	return fmt.Sprintf("%.0f%% 429 + %.0f%% 500", 100*r.p429, 100*r.p500)
}

func (r smsRun) rows() []row {
	measured := fmt.Sprintf("%.1f/s (run %s)", r.achieved(), secs(r.elapsed))
	if r.timedOut {
		measured = fmt.Sprintf("%.1f/s (cut at %s, %s unsent)", r.achieved(), secs(r.elapsed), count(r.check.unsent))
	}
	return []row{
		{figure: fmt.Sprintf("(d) SMS %s recipients at %v/s, %s", count(r.recipients), r.rate, r.label()),
			measured: measured, baseline: fmt.Sprintf("%v/s configured", r.rate), ratio: ratio(r.achieved(), r.rate),
			target: fmt.Sprintf("within %.0f%%", 100*targetSMSTolerance), result: verdict(r.withinRate())},
		{figure: "    Twilio: one message per recipient", measured: fmt.Sprintf("%s accepted, %d dup, %d lost, %d failed",
			count(r.accepted), r.check.duplicated, r.check.lost, r.check.failed),
			target: "0 dup, 0 lost", result: check(r.ok())},
		{figure: "    Twilio requests", measured: fmt.Sprintf("%s: %s answered 429, %s answered 500",
			count(r.twilio.requests), count(r.twilio.throttled), count(r.twilio.errors))},
	}
}

// smsResult is what the SMS phase measured: figure (d), and the same
// campaign without injected failures first, when asked.
type smsResult struct {
	clean  *smsRun
	faulty smsRun
}

func (r smsResult) ok() bool { return (r.clean == nil || r.clean.ok()) && r.faulty.ok() }

func (r smsResult) rows() []row {
	var rows []row
	if r.clean != nil {
		rows = append(rows, r.clean.rows()...)
	}
	return append(rows, r.faulty.rows()...)
}

// runSMS sends an SMS campaign through the daemon to a local Twilio API,
// first without failures (with -sms-clean), then failing a share of the
// requests, and checks every recipient was accepted exactly once or
// recorded as failed.
func runSMS(ctx context.Context, o options, out io.Writer) (res smsResult, err error) {
	const name = "bench-sms"
	l, err := newLocal(phaseSMS)
	if err != nil {
		return res, err
	}
	defer func() { stopLocal(l, out, err != nil || !res.ok() || o.keep) }()
	spec := campaignSpec{name: name, channel: jobs.ChannelSMS, rate: o.smsRate}
	if err := prepareCampaign(l, spec, o.smsRecipients); err != nil {
		return res, err
	}
	tw := startTwilio(o.seed)
	defer tw.stop()
	if err := l.start(ctx, o.daemon, o.aof, []string{"BACKOFFICE_TWILIO_ACCOUNT_SID=" + tw.AccountSID,
		"BACKOFFICE_TWILIO_AUTH_TOKEN=" + tw.AuthToken, "BACKOFFICE_TWILIO_FROM=" + smsFrom,
		"BACKOFFICE_TWILIO_API_URL=" + tw.URL, "BACKOFFICE_CONCURRENCY=" + strconv.Itoa(o.concurrency)}); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "sms: Twilio API at %s; redis-server (AOF %v) and backofficed at %s\n", tw.URL, o.aof, l.publicURL)
	target, err := redisconn.Parse(l.redisURL)
	if err != nil {
		return res, err
	}
	rdb := target.Client()
	defer rdb.Close()
	def, err := loadCampaign(l.schedulesDir(), name)
	if err != nil {
		return res, err
	}
	c := smsCampaign{o: o, l: l, store: campaigns.NewStore(rdb, "bo:", nil), tw: tw, def: def, out: out}
	if o.smsClean {
		r, err := c.run(ctx, 0, 0)
		res.clean = &r
		if err != nil {
			return res, err
		}
	}
	res.faulty, err = c.run(ctx, o.sms429, o.sms500)
	return res, err
}

// smsCampaign runs the bench's SMS campaign on one daemon and Twilio server.
type smsCampaign struct {
	o     options
	l     *local
	store *campaigns.Store
	tw    *twilioFake
	def   jobs.Campaign
	out   io.Writer
}

// run launches a run with the given shares of failures, waits for it to
// finish (cancelling it after -sms-timeout) and checks what Twilio got.
func (c smsCampaign) run(ctx context.Context, p429, p500 float64) (smsRun, error) {
	o, name := c.o, c.def.Name
	r := smsRun{recipients: o.smsRecipients, rate: o.smsRate, p429: p429, p500: p500}
	mark := c.tw.begin(p429, p500)
	run := "bench-" + randomHex(4)
	fmt.Fprintf(c.out, "(d) campaign %s run %s: %d recipients from %s, rate %v/s, %s\n",
		name, run, o.smsRecipients, c.def.Audience.File, c.def.RatePerSecond, r.label())
	start := time.Now()
	if err := launch(ctx, c.l, c.def, run); err != nil {
		return r, err
	}
	st, err := waitRun(ctx, c.store, name, run, o.smsTimeout, pollFine, func(st campaigns.RunStatus) bool {
		return st.State == campaigns.StateFinished || st.State == campaigns.StateCancelled
	}, c.out)
	r.elapsed = time.Since(start)
	if errors.Is(err, errTimeout) {
		r.timedOut = true
		fmt.Fprintf(c.out, "  not finished after %v: cancelling the run\n", o.smsTimeout)
		st, err = c.cancel(ctx, name, run)
	}
	r.status = st
	if err != nil {
		return r, err
	}
	ledger, err := ledgerStates(ctx, c.store, name, run)
	if err != nil {
		return r, err
	}
	msgs := c.tw.Messages()[mark:]
	byTo := make(map[string]int, len(msgs))
	for _, m := range msgs {
		byTo[m.To]++
	}
	r.accepted, r.twilio = len(msgs), c.tw.tally()
	r.check = checkDeliveries(o.smsRecipients, phoneNumber, byTo, ledger, r.timedOut)
	fmt.Fprintf(c.out, "  %s after %v: %.1f/s between the first and the last accepted (%.1f/s with the limiter's burst of one second's worth); Twilio: %s\n",
		progress(st), r.elapsed.Round(time.Millisecond), r.achieved(), burstRate(o.smsRecipients, o.smsRate), r.check)
	span := 5 // seconds per average: at most about 40 of them
	for len(r.twilio.perSecond) > 40*span {
		span *= 2
	}
	fmt.Fprintf(c.out, "  accepted per second, %d-second averages: %s\n", span, r.twilio.timeline(span))
	if r.twilio.passed != r.accepted {
		fmt.Fprintf(c.out, "  warning: %d requests passed the injected failures but %d were accepted: the rate counts the former\n", r.twilio.passed, r.accepted)
	}
	return r, nil
}

// cancel cancels a run the tool gave up waiting for, and waits until no
// recipient is being sent any more, so that what Twilio got is final.
func (c smsCampaign) cancel(ctx context.Context, name, run string) (campaigns.RunStatus, error) {
	if err := c.store.Cancel(ctx, name, run, "loadcampaign: -sms-timeout"); err != nil && !errors.Is(err, campaigns.ErrState) {
		return campaigns.RunStatus{}, err
	}
	return waitRun(ctx, c.store, name, run, time.Minute, pollFine, func(st campaigns.RunStatus) bool { return st.Counts.Sending == 0 }, c.out)
}

// ledgerStates returns the ledger state of every recipient of a run.
func ledgerStates(ctx context.Context, store *campaigns.Store, campaign, run string) (map[string]campaigns.EntryState, error) {
	states := map[string]campaigns.EntryState{}
	var cursor uint64
	for {
		p, err := store.Entries(ctx, campaign, run, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range p.Entries {
			states[e.Recipient] = e.State
		}
		if cursor = p.Cursor; cursor == 0 {
			return states, nil
		}
	}
}

// burstRate is the rate to expect of n messages at rate per second under
// the campaign limiter, which lets one second's worth through at once
// (workers/campaigns/limiter.go): n over the time the other n-burst take.
func burstRate(n int, rate float64) float64 {
	burst := max(1, int(rate))
	if n <= burst {
		return 0
	}
	return float64(n) / (float64(n-burst) / rate)
}
