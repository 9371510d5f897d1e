package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
)

// planChunk is the engine's default chunk size (campaigns.Config.ChunkSize),
// which the daemon uses; the bare baseline writes chunks of the same size.
const planChunk = 500

// planResult is what the planning phase measured: figure (c).
type planResult struct {
	recipients  int
	elapsed     time.Duration // from the launch request until planning ended
	chunks      int
	idlePeak    int64 // the daemon's VmHWM before the launch
	peak        int64 // its VmHWM after planning
	redisBytes  int64 // used_memory after planning minus before the launch
	sent        int   // messages that left before the pause took hold
	bare        bareResult
	pausedAfter time.Duration
}

// timeTarget is the planning-time target, scaled to the audience when it is
// not the 1,000,000 (-quick).
func (r planResult) timeTarget() time.Duration {
	return time.Duration(float64(targetPlanTime) * float64(r.recipients) / targetPlanRecips)
}

func (r planResult) rows() []row {
	perRecipient := float64(r.redisBytes) / float64(r.recipients)
	barePer := float64(r.bare.redisBytes) / float64(r.recipients)
	target := "< " + secs(r.timeTarget())
	if r.recipients != targetPlanRecips {
		target += " (scaled)"
	}
	return []row{
		{figure: fmt.Sprintf("(c) launch of %s recipients: all %d chunks planned", count(r.recipients), r.chunks),
			measured: secs(r.elapsed), baseline: secs(r.bare.elapsed) + " bare writes", ratio: ratio(r.elapsed.Seconds(), r.bare.elapsed.Seconds()),
			target: target, result: verdict(r.elapsed < r.timeTarget())},
		{figure: "(c) daemon peak RSS (VmHWM)", measured: mib(r.peak), baseline: mib(r.idlePeak) + " idle",
			ratio: ratio(float64(r.peak), float64(r.idlePeak)), target: "< " + mib(targetPeakRSS), result: verdict(r.peak < targetPeakRSS)},
		{figure: "(c) Redis memory per recipient after planning", measured: fmt.Sprintf("%.0f B", perRecipient),
			baseline: fmt.Sprintf("%.0f B bare", barePer), ratio: ratio(perRecipient, barePer)},
	}
}

// runPlan launches a large audience and pauses the run as soon as it
// exists, so the chunks enqueued during planning only look at the run and
// are held (campaigns.Config.PausePoll): what is measured is planning, not
// sending. The same Redis first takes the bare writes of the baseline.
func runPlan(ctx context.Context, o options, out io.Writer) (res planResult, err error) {
	const name = "bench-plan"
	res = planResult{recipients: o.planRecipients}
	l, err := newLocal(phasePlan)
	if err != nil {
		return res, err
	}
	defer func() { stopLocal(l, out, err != nil || o.keep) }()
	spec := campaignSpec{name: name, channel: jobs.ChannelEmail, rate: o.emailRate}
	if err := prepareCampaign(l, spec, o.planRecipients); err != nil {
		return res, err
	}
	s, err := startSink() // where a message that leaves before the pause goes, counted
	if err != nil {
		return res, err
	}
	defer s.close()
	if err := l.start(ctx, o.daemon, o.aof, []string{"BACKOFFICE_SMTP_URL=" + s.URL(),
		"BACKOFFICE_SMTP_POOL=" + strconv.Itoa(o.smtpPool), "BACKOFFICE_CONCURRENCY=" + strconv.Itoa(o.concurrency)}); err != nil {
		return res, err
	}
	target, err := redisconn.Parse(l.redisURL)
	if err != nil {
		return res, err
	}
	rdb := target.Client()
	defer rdb.Close()
	fmt.Fprintf(out, "plan: redis-server (AOF %v) and backofficed at %s\n", o.aof, l.publicURL)

	if res.bare, err = runBare(ctx, rdb, o.planRecipients, planChunk); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "  baseline: bare pipelined writes of the same ledger and chunks: %v, %.0f Redis bytes per recipient\n",
		res.bare.elapsed.Round(time.Millisecond), float64(res.bare.redisBytes)/float64(o.planRecipients))
	def, err := loadCampaign(l.schedulesDir(), name)
	if err != nil {
		return res, err
	}
	if res.idlePeak, _, err = processMemory(l.daemonPID()); err != nil {
		return res, err
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}
	store := campaigns.NewStore(rdb, "bo:", nil)
	run := "bench-" + randomHex(4)
	fmt.Fprintf(out, "(c) campaign %s run %s: %d recipients from %s, paused as soon as it exists\n", name, run, o.planRecipients, def.Audience.File)
	start := time.Now()
	if err := launch(ctx, l, def, run); err != nil {
		return res, err
	}
	if err := pauseOnSight(ctx, store, name, run, o.timeout); err != nil {
		return res, err
	}
	res.pausedAfter = time.Since(start)
	st, err := waitRun(ctx, store, name, run, o.timeout, pollFine, func(st campaigns.RunStatus) bool { return !st.Planning }, out)
	if err != nil {
		return res, err
	}
	res.elapsed, res.chunks = time.Since(start), st.Chunks
	if res.peak, _, err = processMemory(l.daemonPID()); err != nil {
		return res, err
	}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}
	res.redisBytes = after - before
	res.sent = s.count()
	fmt.Fprintf(out, "  planned in %v (paused after %v, %d messages left before): %s; daemon VmHWM %s (idle %s)\n",
		res.elapsed.Round(time.Millisecond), res.pausedAfter.Round(time.Millisecond), res.sent, progress(st), mib(res.peak), mib(res.idlePeak))
	if c := st.Counts; c.Total != int64(o.planRecipients) || c.Skipped != 0 || c.Failed != 0 {
		return res, fmt.Errorf("campaign %s run %s: %d recipients planned (%d skipped, %d failed), want %d, none skipped or failed",
			name, run, c.Total, c.Skipped, c.Failed, o.planRecipients)
	}
	return res, store.Cancel(ctx, name, run, "loadcampaign: planning measured")
}

// pauseOnSight pauses the run as soon as its launch job has created it.
func pauseOnSight(ctx context.Context, store *campaigns.Store, campaign, run string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := store.Pause(ctx, campaign, run, "loadcampaign: measuring planning only")
		if !errors.Is(err, campaigns.ErrNoRun) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("campaign %s run %s: not created within %v: %w", campaign, run, timeout, errTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// bareResult is what the bare writes took.
type bareResult struct {
	elapsed    time.Duration
	redisBytes int64
}

// runBare writes what planning writes for n file-audience recipients, with
// none of the engine: a ledger hash of "pending|<ms>|" entries and chunk
// lists of "<id>\n<row JSON>" items, chunk by chunk in pipelines, one in
// flight at a time, from one goroutine. It measures the time and the Redis
// memory, then deletes the keys. It is the floor of planning on this Redis.
func runBare(ctx context.Context, rdb redis.UniversalClient, n, chunk int) (bareResult, error) {
	prefix := "loadcampaign:{bare-" + randomHex(4) + "}:"
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return bareResult{}, err
	}
	start := time.Now()
	chunks := 0
	now := strconv.FormatInt(start.UnixMilli(), 10)
	for first := 0; first < n; first += chunk {
		items := make([]any, 0, chunk)
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := first; i < min(first+chunk, n); i++ {
				id := emailAddress(i)
				p.HSetNX(ctx, prefix+"ledger", id, "pending|"+now+"|")
				items = append(items, fmt.Sprintf(`%s
{"l":%d,"e":%q,"n":"Zákazník %d","g":%q}`, id, i+2, id, i, benchLanguage))
			}
			p.RPush(ctx, prefix+"chunk:"+strconv.Itoa(chunks), items...)
			p.HIncrBy(ctx, prefix+"run", "pending", int64(len(items)))
			return nil
		})
		if err != nil {
			return bareResult{}, fmt.Errorf("bare writes: %w", err)
		}
		chunks++
	}
	res := bareResult{elapsed: time.Since(start)}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}
	res.redisBytes = after - before
	keys := []string{prefix + "ledger", prefix + "run"}
	for c := range chunks {
		keys = append(keys, prefix+"chunk:"+strconv.Itoa(c))
	}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		if err := rdb.Del(ctx, batch...).Err(); err != nil {
			return res, fmt.Errorf("bare writes: delete: %w", err)
		}
		keys = keys[len(batch):]
	}
	return res, nil
}
