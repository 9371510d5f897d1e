package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// Targets of the issue on a 2-core machine: reported, not enforced (a
// benchmark asserts no wall-clock time; lost and duplicated messages fail).
const (
	targetRate = 5000.0
	targetP99  = 50 * time.Millisecond
)

// run does the whole measurement and reports it on out. ok is false when a
// message was lost or duplicated or a request failed.
func run(ctx context.Context, o options, out io.Writer) (ok bool, err error) {
	var meter cpuMeter
	if o.daemon != "" {
		l, err := startLocal(ctx, o.daemon, o.aof)
		if err != nil {
			return false, err
		}
		defer func() {
			keep := !ok || o.keep
			if keep {
				fmt.Fprintf(out, "logs kept in %s\n", l.dir)
			}
			l.stop(keep)
		}()
		o.url, o.token, o.redisURL, o.prefix, o.region = l.url, l.token, l.redisURL, "bo:", "SK"
		meter = cpuMeter{daemonPID: l.stack.DaemonPID(), redisPID: l.stack.RedisPID()}
		fmt.Fprintf(out, "started redis-server (AOF %v) and %s at %s\n", map[bool]string{true: "everysec", false: "off"}[o.aof], o.daemon, l.publicURL)
	}
	if o.signURL == "" {
		o.signURL = o.url
	}
	target, err := redisconn.Parse(o.redisURL)
	if err != nil {
		return false, fmt.Errorf("-redis: %w", err)
	}
	rdb := target.Client()
	defer rdb.Close()
	meter.processed = processedTasks(rdb)
	l, err := newLoad(o, meter)
	if err != nil {
		return false, err
	}

	var base stats
	if o.baseline > 0 {
		var cpu cpuUse
		if base, cpu, err = runBaseline(ctx, rdb, o.concurrency, o.baseline, meter); err != nil {
			return false, err
		}
		fmt.Fprintf(out, "baseline: bare asynq enqueue loop, %d goroutines, same Redis\n  %s\n  %s\n",
			o.concurrency, base.summary(), cpu.line("enqueue", base.calls))
	}
	pace := "each sends when answered"
	if o.rate > 0 {
		pace = fmt.Sprintf("%.0f requests/s scheduled, latency from when due", o.rate)
	}
	fmt.Fprintf(out, "webhook: POST %s, %d keep-alive connections (%s), %v after %v warm-up, %d senders, %.0f%% replays\n",
		o.url, o.concurrency, pace, o.duration, o.warmup, o.phones, 100*o.replayRatio)
	res := l.runLoad(ctx)
	fmt.Fprintf(out, "  %s\n  answers by status (warm-up included): %s; replays sent %d\n", res.summary(), statusLine(res.statuses), res.replays)
	if ctx.Err() == nil {
		fmt.Fprintf(out, "  %s\n", res.cpu.line("request", res.calls))
		if res.cpu.tasks >= 0 {
			fmt.Fprintf(out, "  meanwhile the daemon's workers processed %d tasks of queue %s (%.0f/s); their CPU is in the daemon's\n",
				res.cpu.tasks, jobs.QueueCritical, float64(res.cpu.tasks)/max(res.cpu.wall.Seconds(), 1e-9))
		}
	}
	if o.rate > 0 {
		slices.Sort(res.service.lat)
		fmt.Fprintf(out, "  from when sent (without the load generator's own delays): p50 %v, p99 %v\n",
			round(res.service.percentile(50)), round(res.service.percentile(99)))
	}
	if base.calls > 0 {
		fmt.Fprintf(out, "  webhook rate / bare enqueue rate: %.2f\n", res.rate()/base.rate())
	}
	met := res.rate() >= targetRate && res.percentile(99) < targetP99
	fmt.Fprintf(out, "  target %.0f/s with p99 < %v: %s\n", targetRate, targetP99, map[bool]string{true: "met", false: "NOT met"}[met])
	if per := len(res.accepted) / o.phones; per > 4000 {
		fmt.Fprintf(out, "  warning: %d messages per sender; timelines keep 10000 events: raise -phones\n", per)
	}
	v, err := verifyRun(ctx, rdb, o, res, out)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "check: %d messages answered 200; exactly one timeline entry: %d; lost %d; duplicated %d; archived tasks %d (drained in %v)\n",
		v.messages, v.found, v.lost, v.duplicated, v.archived, v.drained.Round(time.Millisecond))
	return v.lost == 0 && v.duplicated == 0 && res.errors == 0, nil
}

// processedTasks returns a function that reads how many tasks of the
// queue of sms:inbound the daemon's workers have processed since it was
// created (asynq's all-time counter).
func processedTasks(rdb redis.UniversalClient) func() (int64, error) {
	insp := asynq.NewInspectorFromRedisClient(rdb)
	return func() (int64, error) {
		q, err := insp.GetQueueInfo(jobs.QueueCritical)
		if err != nil {
			return 0, err
		}
		return int64(q.ProcessedTotal), nil
	}
}

// verifyRun waits for the daemon to process the queue, then checks every
// accepted message's timeline entry.
func verifyRun(ctx context.Context, rdb redis.UniversalClient, o options, res loadResult, out io.Writer) (verdict, error) {
	if len(res.accepted) == 0 {
		return verdict{}, nil
	}
	drained, archived, err := drain(ctx, rdb, o.drainTimeout, out)
	if err != nil {
		return verdict{}, err
	}
	store := customers.New(rdb, o.prefix, customers.Options{DefaultRegion: o.region})
	v, err := check(ctx, store, res.accepted)
	v.drained, v.archived = drained, archived
	return v, err
}

// statusLine lists the answers by status, e.g. "200: 1000, 503: 2".
func statusLine(m map[int]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(m)) {
		name := fmt.Sprint(s)
		if s == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, m[s]))
	}
	return strings.Join(parts, ", ")
}
