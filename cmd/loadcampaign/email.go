package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
)

// emailResult is what the e-mail phase measured: figures (a) and (b).
type emailResult struct {
	conns      int
	base       ceiling // (a): go-mail in a process of its own, as the daemon is
	inProcess  ceiling // (a'): go-mail in the sink's process, for reference
	pool       ceiling // (a"): the daemon's Pool in a process of its own, for reference
	recipients int
	elapsed    time.Duration // from the launch request to the run's "finished"
	planned    time.Duration // from the launch request to the end of planning
	status     campaigns.RunStatus
	check      deliveries
	bytes      float64   // average message size at the sink
	redisBytes int64     // used_memory after the run minus before the launch
	aof        aofGrowth // what the AOF grew by during (b)
	redisCalls string    // Redis commands per message during (b)
	cpu        cpuUse    // CPU time of the processes during (b)
	// rounds holds the (b)/(a) ratio of every round when the phase ran
	// more than one (-email-rounds); the figures are those of round
	// (0-based): the median one, or the first that lost or repeated a
	// message
	rounds []float64
	round  int
}

// ratio is (b)'s rate over (a)'s.
func (r emailResult) ratio() float64 { return r.rate() / r.base.res.rate() }

// pickRound returns the round to report: the first that is not ok (a
// message lost or sent twice must be seen), else the one with the median
// ratio (the lower middle one of an even number).
func pickRound(rounds []emailResult) int {
	for i, r := range rounds {
		if !r.ok() {
			return i
		}
	}
	order := make([]int, len(rounds))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rounds[a].ratio(), rounds[b].ratio()) })
	return order[(len(order)-1)/2]
}

// ceilingKind is what a ceiling sends with, and from where.
type ceilingKind int

const (
	goMailProcess ceilingKind = iota // (a) go-mail's transaction, in a sender process
	goMailHere                       // (a') go-mail's transaction, in the sink's process
	poolProcess                      // (a") workers/email's Pool (pipelined), in a sender process
)

// ceiling is one baseline, summed over its halves.
type ceiling struct {
	kind   ceilingKind
	res    baselineResult
	cpu    cpuUse        // daemon (idle), redis (idle), this tool (the sink)
	sender time.Duration // CPU time of the sender process, when it has one
	tally  tally
	check  deliveries
	bytes  float64 // average message size at the sink
}

// perMessage describes the CPU time of the ceiling's processes per message.
func (c ceiling) perMessage() string {
	n := max(1, c.res.sent)
	if c.sender == 0 {
		return c.cpu.perMessage(n)
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return fmt.Sprintf("%.0f µs (go-mail sender %.0f, sink %.0f, daemon %.0f, redis %.0f)",
		us(c.cpu.total()+c.sender), us(c.sender), us(c.cpu.tool), us(c.cpu.daemon), us(c.cpu.redis))
}

// perMessageUS is the ceiling's CPU time per message, in microseconds.
func (c ceiling) perMessageUS() float64 {
	return float64((c.cpu.total() + c.sender).Microseconds()) / float64(max(1, c.res.sent))
}

func (r emailResult) rate() float64 { return float64(r.status.Counts.Sent) / r.elapsed.Seconds() }

// ok reports whether every recipient of every run got exactly one message
// and the campaign sent to all of them.
func (r emailResult) ok() bool {
	return r.base.check.ok() && r.inProcess.check.ok() && r.pool.check.ok() && r.check.ok() && r.status.State == campaigns.StateFinished &&
		r.status.Counts.Sent == int64(r.recipients)
}

func (r emailResult) rows() []row {
	base := fmt.Sprintf("%.0f msgs/s", r.base.res.rate())
	inProc := fmt.Sprintf("%.0f msgs/s", r.inProcess.res.rate())
	pool := fmt.Sprintf("%.0f msgs/s", r.pool.res.rate())
	return []row{
		{figure: fmt.Sprintf("(a) go-mail process -> sink, %d conns, %s msgs", r.conns, count(r.base.res.sent)),
			measured: fmt.Sprintf("%s (%d dup, %d lost)", base, r.base.check.duplicated, r.base.check.lost),
			result:   check(r.base.check.ok() && r.base.res.errors == 0)},
		{figure: "(a) CPU per message", measured: r.base.perMessage()},
		{figure: fmt.Sprintf("(a') go-mail in the sink's process, %s msgs", count(r.inProcess.res.sent)),
			measured: fmt.Sprintf("%s (%d dup, %d lost)", inProc, r.inProcess.check.duplicated, r.inProcess.check.lost),
			result:   check(r.inProcess.check.ok() && r.inProcess.res.errors == 0)},
		{figure: "(a') CPU per message", measured: r.inProcess.perMessage()},
		{figure: fmt.Sprintf("(a\") daemon's pool process (pipelined), %s msgs", count(r.pool.res.sent)),
			measured: fmt.Sprintf("%s (%d dup, %d lost)", pool, r.pool.check.duplicated, r.pool.check.lost),
			result:   check(r.pool.check.ok() && r.pool.res.errors == 0)},
		{figure: "(a\") CPU per message", measured: r.pool.perMessage()},
		{figure: fmt.Sprintf("(b) campaign %s recipients, launch -> finished", count(r.recipients)),
			measured: fmt.Sprintf("%.0f msgs/s (%s)", r.rate(), secs(r.elapsed)), baseline: base,
			ratio: ratio(r.rate(), r.base.res.rate()), target: fmt.Sprintf(">= %.2f", targetEmailRatio),
			result: verdict(r.rate() >= targetEmailRatio*r.base.res.rate())},
		r.roundsRow(),
		{figure: "(b) vs (a') (no process boundary)", measured: fmt.Sprintf("%.0f msgs/s", r.rate()), baseline: inProc,
			ratio: ratio(r.rate(), r.inProcess.res.rate())},
		{figure: "(b) vs (a\") (same transport, no campaign)", measured: fmt.Sprintf("%.0f msgs/s", r.rate()), baseline: pool,
			ratio: ratio(r.rate(), r.pool.res.rate())},
		{figure: "(b) CPU per message", measured: r.cpu.perMessage(r.recipients),
			baseline: fmt.Sprintf("%.0f µs", r.base.perMessageUS()),
			ratio:    ratio(perMessageUS(r.cpu, r.recipients), r.base.perMessageUS())},
		{figure: "(b) sink: one message per recipient", measured: fmt.Sprintf("%s msgs, %d dup, %d lost, %d extra",
			count(r.check.messages), r.check.duplicated, r.check.lost, r.check.extra),
			target: "exactly " + count(r.recipients), result: check(r.ok())},
		{figure: "(b) message size at the sink", measured: fmt.Sprintf("%.0f B", r.bytes),
			baseline: fmt.Sprintf("%.0f B", r.base.bytes), ratio: ratio(r.bytes, r.base.bytes)},
		{figure: "(b) Redis commands per message", measured: r.redisCalls},
		{figure: "(b) Redis memory per recipient after sending", measured: fmt.Sprintf("%.0f B", float64(r.redisBytes)/float64(r.recipients))},
		{figure: "(b) AOF written per recipient", measured: r.aof.perRecipient(r.recipients)},
	}
}

// roundsRow lists the (b)/(a) ratio of every round; the rows above are
// those of the round marked.
func (r emailResult) roundsRow() row {
	if len(r.rounds) < 2 {
		return row{figure: "(b)/(a) rounds", measured: "1 (-email-rounds)"}
	}
	parts := make([]string, len(r.rounds))
	for i, x := range r.rounds {
		parts[i] = fmt.Sprintf("%.2f", x)
		if i == r.round {
			parts[i] += "*"
		}
	}
	return row{figure: fmt.Sprintf("(b)/(a) in each of %d rounds (* reported)", len(r.rounds)), measured: strings.Join(parts, " ")}
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
	target, err := redisconn.Parse(l.redisURL)
	if err != nil {
		return res, err
	}
	rdb := target.Client()
	defer rdb.Close()
	var rounds []emailResult
	for i := range o.emailRounds {
		if o.emailRounds > 1 {
			fmt.Fprintf(out, "e-mail round %d of %d\n", i+1, o.emailRounds)
		}
		ro := o
		if i > 0 {
			ro.perf = "" // the first round's campaign only
		}
		one, err := emailRound(ctx, ro, l, s, rdb, content, name, out)
		rounds = append(rounds, one)
		if err != nil {
			return one, err
		}
	}
	pick := pickRound(rounds)
	res = rounds[pick]
	res.round = pick
	for i, r := range rounds {
		res.rounds = append(res.rounds, r.ratio())
		if res.aof.rewritten && r.aof.enabled && !r.aof.rewritten {
			// Redis rewrote the AOF during the round reported (it grows
			// by some 40 MB a round); another round's growth is as good
			res.aof, res.aof.round = r.aof, i+1
		}
	}
	return res, nil
}

// emailRound measures (a) and (a') around one campaign (b), each against
// the sink, with a daemon that idles during (a): (a) and (a') run in two
// halves, before and after (b), so that a change of the machine's load
// during the round weighs on every figure alike.
func emailRound(ctx context.Context, o options, l *local, s *sink, rdb redis.UniversalClient, content mailContent, name string, out io.Writer) (emailResult, error) {
	res := emailResult{conns: o.smtpPool, recipients: o.emailRecipients}
	meter := cpuMeter{l: l}
	half := o.baselineMessages / 2
	res.inProcess.kind, res.pool.kind = goMailHere, poolProcess
	ceilings := []*ceiling{&res.base, &res.inProcess, &res.pool}
	for _, c := range ceilings {
		c.tally = tally{byRcpt: map[string]int{}}
		if err := c.run(ctx, s, content, meter, res.conns, 0, half, out); err != nil {
			return res, err
		}
	}
	if err := campaignRun(ctx, o, l, rdb, s, name, &res, out); err != nil {
		return res, err
	}
	t := s.take()
	res.check = checkDeliveries(o.emailRecipients, emailAddress, t.byRcpt, nil, false)
	res.bytes = float64(t.bytes) / float64(max(1, t.messages))
	fmt.Fprintf(out, "  sink: %s\n", res.check)
	for _, c := range ceilings {
		if err := c.run(ctx, s, content, meter, res.conns, half, o.baselineMessages-half, out); err != nil {
			return res, err
		}
		c.check = checkDeliveries(o.baselineMessages, emailAddress, c.tally.byRcpt, nil, false)
		c.bytes = float64(c.tally.bytes) / float64(max(1, c.tally.messages))
		fmt.Fprintf(out, "%s in all: %d sent in %v: %.0f msgs/s, %d errors; sink: %s\n  CPU per message: %s\n",
			c.label(), c.res.sent, c.res.elapsed.Round(time.Millisecond), c.res.rate(), c.res.errors, c.check, c.perMessage())
	}
	return res, nil
}

// label names a ceiling in the output.
func (c *ceiling) label() string {
	switch c.kind {
	case goMailHere:
		return "(a') go-mail in this process"
	case poolProcess:
		return "(a\") the daemon's pool process"
	}
	return "(a) go-mail process"
}

// run sends one half of a ceiling, messages from..from+n-1, in a sender
// process of its own or from this process, next to the sink, and adds its
// figures and what the sink got.
func (c *ceiling) run(ctx context.Context, s *sink, content mailContent, meter cpuMeter, conns, from, n int, out io.Writer) error {
	if n == 0 {
		return nil
	}
	cpu0, err := meter.sample()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s straight to the sink: messages %d..%d over %d connections\n", c.label(), from, from+n-1, conns)
	var b baselineResult
	var sender time.Duration
	if c.kind == goMailHere {
		b, err = runBaseline(ctx, s.Addr, content, conns, from, n)
	} else {
		b, sender, err = runSenderProcess(ctx, s.Addr, content, conns, from, n, c.kind == poolProcess)
	}
	if err != nil {
		return err
	}
	cpu, err := meter.since(cpu0)
	if err != nil {
		return err
	}
	c.res.sent, c.res.errors, c.res.elapsed = c.res.sent+b.sent, c.res.errors+b.errors, c.res.elapsed+b.elapsed
	c.cpu = cpuUse{daemon: c.cpu.daemon + cpu.daemon, redis: c.cpu.redis + cpu.redis, tool: c.cpu.tool + cpu.tool}
	c.sender += sender
	c.tally.add(s.take())
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
	aof0, err := readAOF(ctx, rdb)
	if err != nil {
		return err
	}
	calls0, err := redisCommands(ctx, rdb)
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
	st, err := waitRun(ctx, store, name, run, o.timeout, pollCoarse, func(st campaigns.RunStatus) bool {
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
	aof1, err := readAOF(ctx, rdb)
	if err != nil {
		return err
	}
	res.aof = aof1.since(aof0)
	calls, err := redisCommands(ctx, rdb)
	if err != nil {
		return err
	}
	res.redisCalls = calls.perMessage(calls0, o.emailRecipients)
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

// aofGrowth is what the AOF grew by during a run.
type aofGrowth struct {
	enabled   bool
	bytes     int64
	rewritten bool // a rewrite ran meanwhile: bytes means nothing
	round     int  // 1-based, when taken from another round than the one reported
}

func (g aofGrowth) perRecipient(n int) string {
	switch {
	case !g.enabled:
		return "- (AOF off)"
	case g.rewritten:
		return "- (the AOF was rewritten during the run)"
	}
	s := fmt.Sprintf("%.0f B", float64(g.bytes)/float64(max(1, n)))
	if g.round > 0 {
		s += fmt.Sprintf(" (round %d)", g.round)
	}
	return s
}

// aofState is the AOF part of INFO persistence.
type aofState struct {
	enabled        bool
	size, rewrites int64
}

func (a aofState) since(before aofState) aofGrowth {
	return aofGrowth{enabled: a.enabled, bytes: a.size - before.size, rewritten: a.rewrites != before.rewrites}
}

// readAOF returns whether Redis writes an AOF, its size and how many
// rewrites it has done.
func readAOF(ctx context.Context, rdb redis.UniversalClient) (aofState, error) {
	info, err := rdb.Info(ctx, "persistence").Result()
	if err != nil {
		return aofState{}, fmt.Errorf("redis info persistence: %w", err)
	}
	on, err := infoField(info, "aof_enabled")
	if err != nil || on == 0 {
		return aofState{}, err
	}
	a := aofState{enabled: true}
	if a.size, err = infoField(info, "aof_current_size"); err != nil {
		return aofState{}, err
	}
	if a.rewrites, err = infoField(info, "aof_rewrites"); err != nil {
		return aofState{}, err
	}
	return a, nil
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
