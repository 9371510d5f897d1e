package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
)

// emailResult is what the e-mail phase measured: figures (a) and (b).
type emailResult struct {
	conns      int
	base       baselineResult
	baseCheck  deliveries
	baseBytes  float64 // average message size at the sink
	recipients int
	elapsed    time.Duration // from the launch request to the run's "finished"
	planned    time.Duration // from the launch request to the end of planning
	status     campaigns.RunStatus
	check      deliveries
	bytes      float64 // average message size at the sink
	redisBytes int64   // used_memory after the run minus before the launch
	baseCPU    cpuUse  // CPU time of the processes during (a)
	cpu        cpuUse  // and during (b)
}

func (r emailResult) rate() float64 { return float64(r.status.Counts.Sent) / r.elapsed.Seconds() }

// ok reports whether every recipient of both runs got exactly one message
// and the run sent to all of them.
func (r emailResult) ok() bool {
	return r.baseCheck.ok() && r.check.ok() && r.status.State == campaigns.StateFinished &&
		r.status.Counts.Sent == int64(r.recipients)
}

func (r emailResult) rows() []row {
	base := fmt.Sprintf("%.0f msgs/s", r.base.rate())
	return []row{
		{figure: fmt.Sprintf("(a) go-mail -> sink, %d conns, %s msgs", r.conns, count(r.base.sent)),
			measured: fmt.Sprintf("%s (%d dup, %d lost)", base, r.baseCheck.duplicated, r.baseCheck.lost),
			result:   check(r.baseCheck.ok() && r.base.errors == 0)},
		{figure: "(a) CPU per message", measured: r.baseCPU.perMessage(r.base.sent)},
		{figure: fmt.Sprintf("(b) campaign %s recipients, launch -> finished", count(r.recipients)),
			measured: fmt.Sprintf("%.0f msgs/s (%s)", r.rate(), secs(r.elapsed)), baseline: base,
			ratio: ratio(r.rate(), r.base.rate()), target: fmt.Sprintf(">= %.2f", targetEmailRatio),
			result: verdict(r.rate() >= targetEmailRatio*r.base.rate())},
		{figure: "(b) CPU per message", measured: r.cpu.perMessage(r.recipients),
			baseline: fmt.Sprintf("%.0f µs", perMessageUS(r.baseCPU, r.base.sent)),
			ratio:    ratio(perMessageUS(r.cpu, r.recipients), perMessageUS(r.baseCPU, r.base.sent))},
		{figure: "(b) sink: one message per recipient", measured: fmt.Sprintf("%s msgs, %d dup, %d lost, %d extra",
			count(r.check.messages), r.check.duplicated, r.check.lost, r.check.extra),
			target: "exactly " + count(r.recipients), result: check(r.ok())},
		{figure: "(b) message size at the sink", measured: fmt.Sprintf("%.0f B", r.bytes),
			baseline: fmt.Sprintf("%.0f B", r.baseBytes), ratio: ratio(r.bytes, r.baseBytes)},
		{figure: "(b) Redis memory per recipient after sending", measured: fmt.Sprintf("%.0f B", float64(r.redisBytes)/float64(r.recipients))},
	}
}

// runEmail measures the go-mail ceiling (a) and the campaign (b) against
// the same sink, with a daemon that idles during (a).
func runEmail(ctx context.Context, o options, out io.Writer) (res emailResult, err error) {
	const name = "bench-email"
	res = emailResult{conns: o.smtpPool, recipients: o.emailRecipients}
	l, err := newLocal(phaseEmail)
	if err != nil {
		return res, err
	}
	defer func() { stopLocal(l, out, err != nil || !res.ok() || o.keep) }()
	spec := campaignSpec{name: name, channel: jobs.ChannelEmail, rate: o.emailRate}
	if err := prepareCampaign(l, spec, o.emailRecipients); err != nil {
		return res, err
	}
	s, err := startSink()
	if err != nil {
		return res, err
	}
	defer s.close()
	if err := l.start(ctx, o.daemon, o.aof, []string{"BACKOFFICE_SMTP_URL=" + s.URL(),
		"BACKOFFICE_SMTP_POOL=" + strconv.Itoa(o.smtpPool), "BACKOFFICE_CONCURRENCY=" + strconv.Itoa(o.concurrency)}); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "email: sink at %s; redis-server (AOF %v) and backofficed at %s (BACKOFFICE_SMTP_POOL=%d, BACKOFFICE_CONCURRENCY=%d)\n",
		s.Addr, o.aof, l.publicURL, o.smtpPool, o.concurrency)

	content, err := renderContent(l, name)
	if err != nil {
		return res, err
	}
	// (a) runs in two halves, before and after (b), so that a change of
	// the machine's load during the phase weighs on both figures alike.
	meter := cpuMeter{l: l}
	half := o.baselineMessages / 2
	baseTally := tally{byRcpt: map[string]int{}}
	if err := res.baseline(ctx, s, content, meter, 0, half, &baseTally, out); err != nil {
		return res, err
	}
	target, err := redisconn.Parse(l.redisURL)
	if err != nil {
		return res, err
	}
	rdb := target.Client()
	defer rdb.Close()
	if err := campaignRun(ctx, o, l, rdb, s, name, &res, out); err != nil {
		return res, err
	}
	t := s.take()
	res.check = checkDeliveries(o.emailRecipients, emailAddress, t.byRcpt, nil, false)
	res.bytes = float64(t.bytes) / float64(max(1, t.messages))
	fmt.Fprintf(out, "  sink: %s\n", res.check)
	if err := res.baseline(ctx, s, content, meter, half, o.baselineMessages-half, &baseTally, out); err != nil {
		return res, err
	}
	res.baseCheck = checkDeliveries(o.baselineMessages, emailAddress, baseTally.byRcpt, nil, false)
	res.baseBytes = float64(baseTally.bytes) / float64(max(1, baseTally.messages))
	fmt.Fprintf(out, "(a) in all: %d sent in %v: %.0f msgs/s, %d errors; sink: %s\n  CPU per message: %s\n",
		res.base.sent, res.base.elapsed.Round(time.Millisecond), res.base.rate(), res.base.errors, res.baseCheck,
		res.baseCPU.perMessage(res.base.sent))
	return res, nil
}

// baseline runs one part of (a), messages from..from+n-1, adds its
// figures to r and what the sink got to acc.
func (r *emailResult) baseline(ctx context.Context, s *sink, content mailContent, meter cpuMeter, from, n int, acc *tally, out io.Writer) error {
	if n == 0 {
		return nil
	}
	cpu0, err := meter.sample()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "(a) go-mail straight to the sink: messages %d..%d over %d connections\n", from, from+n-1, r.conns)
	b, err := runBaseline(ctx, s, content, r.conns, from, n)
	if err != nil {
		return err
	}
	cpu, err := meter.since(cpu0)
	if err != nil {
		return err
	}
	r.base.sent, r.base.errors, r.base.elapsed = r.base.sent+b.sent, r.base.errors+b.errors, r.base.elapsed+b.elapsed
	r.baseCPU = cpuUse{daemon: r.baseCPU.daemon + cpu.daemon, redis: r.baseCPU.redis + cpu.redis, tool: r.baseCPU.tool + cpu.tool}
	acc.add(s.take())
	fmt.Fprintf(out, "  %d sent in %v: %.0f msgs/s, %d errors\n", b.sent, b.elapsed.Round(time.Millisecond), b.rate(), b.errors)
	return nil
}

// campaignRun launches the campaign through the API and waits for its
// run to finish: figure (b).
func campaignRun(ctx context.Context, o options, l *local, rdb redis.UniversalClient, s *sink, name string, res *emailResult, out io.Writer) error {
	def, err := loadCampaign(l.schedulesDir(), name)
	if err != nil {
		return err
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	store := campaigns.NewStore(rdb, "bo:", nil)
	run := "bench-" + randomHex(4)
	meter := cpuMeter{l: l}
	cpu0, err := meter.sample()
	if err != nil {
		return err
	}
	if o.perf != "" {
		stop, err := perfRecord(ctx, o.perf, l.daemonPID(), out)
		if err != nil {
			return err
		}
		defer stop()
	}
	fmt.Fprintf(out, "(b) campaign %s run %s: %d recipients from %s, rate %v/s, through POST /api/jobs/%s\n",
		name, run, o.emailRecipients, def.Audience.File, def.RatePerSecond, jobs.KindCampaignLaunch)
	start := time.Now()
	if err := launch(ctx, l, def, run); err != nil {
		return err
	}
	st, err := waitRun(ctx, store, name, run, o.timeout, func(st campaigns.RunStatus) bool {
		if !st.Planning && res.planned == 0 {
			res.planned = time.Since(start)
		}
		return st.State == campaigns.StateFinished || st.State == campaigns.StateCancelled
	}, out)
	res.status = st
	if err != nil {
		return err
	}
	res.elapsed = time.Since(start)
	if !st.Finished.IsZero() && st.Finished.After(start) {
		res.elapsed = st.Finished.Sub(start) // recorded by the last chunk, to the millisecond
	}
	if res.cpu, err = meter.since(cpu0); err != nil {
		return err
	}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	res.redisBytes = after - before
	fmt.Fprintf(out, "  %s after %v (planned after %v): %.0f msgs/s; sink got %d\n  CPU per message: %s\n",
		progress(st), res.elapsed.Round(time.Millisecond), res.planned.Round(time.Millisecond), res.rate(), s.count(),
		res.cpu.perMessage(o.emailRecipients))
	return nil
}

// usedMemory returns Redis's used_memory in bytes.
func usedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info memory: %w", err)
	}
	return infoField(info, "used_memory")
}

// stopLocal stops a phase's servers, keeping its directory when asked.
func stopLocal(l *local, out io.Writer, keep bool) {
	if keep {
		fmt.Fprintf(out, "  logs kept in %s\n", l.dir)
	}
	l.stop(keep)
}

// perMessageUS is the CPU time of c per message, in microseconds.
func perMessageUS(c cpuUse, n int) float64 {
	return float64(c.total().Microseconds()) / float64(max(1, n))
}
