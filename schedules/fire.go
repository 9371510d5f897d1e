package schedules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
)

// newCron builds a cron with one entry per enabled entry of s, and
// returns it with the entries' tick queues by name. Cron runs in UTC; each
// schedule carries its own zone. An entry that prev (the queues of the
// cron being replaced, whose set was prevSet) also had, with the same
// expression, starts from prev's pending tick: the replaced cron may be
// stopped before it fires a tick that is due, and the new one would
// otherwise start counting from after it. Both firing it is harmless (one
// task id).
func (r *Runner) newCron(s *Set, prev map[string]*tickQueue, prevSet *Set) (*cron.Cron, map[string]*tickQueue) {
	logger := cronLogger{r.log}
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(logger), cron.WithChain(cron.Recover(logger)))
	queues := map[string]*tickQueue{}
	for _, name := range s.enabledNames() {
		q := &tickQueue{sched: s.specs[name].sched}
		if old, ok := prev[name]; ok && prevSet != nil && prevSet.specs[name].key == s.specs[name].key {
			if tick, ok := old.peek(); ok {
				q.from = tick.Add(-time.Nanosecond)
			}
		}
		c.Schedule(q, tickJob{r: r, set: s, name: name, ticks: q})
		queues[name] = q
	}
	return c, queues
}

// enabledNames returns the names of the entries that fire.
func (s *Set) enabledNames() []string {
	var names []string
	for _, c := range s.Campaigns {
		if c.Enabled {
			names = append(names, c.Campaign.Name)
		}
	}
	for _, j := range s.Jobs {
		if j.Enabled {
			names = append(names, j.Name)
		}
	}
	return names
}

// tickQueue is the schedule of one cron entry. It remembers the ticks it
// hands to cron, in order, so that the job cron runs for a tick (Job.Run
// gets no arguments) learns which scheduled time it is running for. Cron
// asks for the next tick once at start and once after each run, so the
// queue holds at most the tick being run and the one after it.
type tickQueue struct {
	sched cron.Schedule
	mu    sync.Mutex
	ticks []time.Time
	// from, when set, is where the first Next starts instead of "now"
	// (see newCron): a tick after it that is due fires at once.
	from time.Time
}

// Next implements cron.Schedule.
func (q *tickQueue) Next(t time.Time) time.Time {
	q.mu.Lock()
	if !q.from.IsZero() {
		t = minTime(t, q.from)
		q.from = time.Time{}
	}
	q.mu.Unlock()
	next := q.sched.Next(t)
	if !next.IsZero() {
		q.mu.Lock()
		q.ticks = append(q.ticks, next)
		q.mu.Unlock()
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// peek returns the oldest tick handed out and not yet run: the next one
// its cron fires.
func (q *tickQueue) peek() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ticks) == 0 {
		return time.Time{}, false
	}
	return q.ticks[0], true
}

// pop returns the oldest tick handed out and not yet run.
func (q *tickQueue) pop() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ticks) == 0 {
		return time.Time{}, false
	}
	t := q.ticks[0]
	q.ticks = q.ticks[1:]
	return t, true
}

// tickJob is the cron job of one entry.
type tickJob struct {
	r     *Runner
	set   *Set
	name  string
	ticks *tickQueue
}

// Run implements cron.Job.
func (j tickJob) Run() {
	tick, ok := j.ticks.pop()
	if !ok {
		j.r.log.Error("schedules: cron ran an entry without a pending tick", "schedule", j.name)
		return
	}
	ctx, cancel := context.WithDeadline(j.r.ctx, j.set.retryUntil(j.name, tick, j.r.now()))
	defer cancel()
	j.r.fire(ctx, j.set, j.name, tick)
}

// retryUntil is how long the enqueue of entry name's tick is tried: up to
// fireRetryWindow after the tick, never past the entry's next tick (that
// one gets its own tries), and at least fireTimeout from now.
func (s *Set) retryUntil(name string, tick, now time.Time) time.Time {
	until := tick.Add(fireRetryWindow)
	if next := s.specs[name].sched.Next(tick); !next.IsZero() && next.Before(until) {
		until = next
	}
	if floor := now.Add(fireTimeout); until.Before(floor) {
		until = floor
	}
	return until
}

// fire enqueues the task of entry name of s for tick and records the
// outcome. Taken task IDs mean another daemon (or an earlier reload of this
// one) enqueued the tick: that is a duplicate, not an error. An enqueue
// that fails otherwise (Redis restarting, a failover, the network) is
// tried again until ctx is done (enqueue).
func (r *Runner) fire(ctx context.Context, s *Set, name string, tick time.Time) Run {
	run := Run{Run: runID(tick, s.specs[name].seconds), Tick: tick.UTC(), Daemon: r.o.Daemon}
	task, id, err := s.task(name, tick)
	run.TaskID = id
	if err == nil {
		err = r.enqueue(ctx, name, run, task)
	}
	switch {
	case err == nil:
		run.Outcome = OutcomeEnqueued
	case errors.Is(err, asynq.ErrTaskIDConflict):
		run.Outcome, run.Message = OutcomeDuplicate, "enqueued by another daemon"
	default:
		run.Outcome, run.Message = OutcomeError, err.Error()
	}
	run.At = r.now().UTC()
	// The record gets its own time: a tick that used up its tries has none left.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fireTimeout)
	defer cancel()
	r.record(rctx, name, run)
	r.logRun(name, run)
	if r.o.OnTick != nil {
		r.o.OnTick(name, run)
	}
	if r.observe != nil {
		r.observe(run)
	}
	return run
}

// enqueue enqueues the task of run, and while the failure may pass (not a
// taken task ID) tries again with backoff until ctx is done. The first
// failure is recorded at once, so the dashboard shows the tick in trouble.
func (r *Runner) enqueue(ctx context.Context, name string, run Run, task *asynq.Task) error {
	wait := fireRetryFirst
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, fireTimeout)
		_, err := r.o.Client.EnqueueContext(actx, task)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if attempt == 1 {
			r.log.Warn("schedules: tick not enqueued, trying again", "schedule", name, "run", run.Run,
				"task_id", run.TaskID, "error", err)
			trouble := run
			trouble.Outcome, trouble.Message = OutcomeError, "not enqueued yet, trying again: "+err.Error()
			trouble.At = r.now().UTC()
			r.record(ctx, name, trouble)
		}
		if !sleep(ctx, wait) {
			return fmt.Errorf("%w (gave up after %d attempts: %v)", err, attempt, context.Cause(ctx))
		}
		wait = min(2*wait, fireRetryMax)
	}
}

// Retries of a tick's enqueue: the first wait, and the longest.
const (
	fireRetryFirst = 250 * time.Millisecond
	fireRetryMax   = 30 * time.Second
)

// retryable reports whether an enqueue that failed with err may succeed
// when tried again: not when the task exists or the client is closed.
func retryable(err error) bool {
	return !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, redis.ErrClosed)
}

// sleep waits d, or less when ctx is done first; it reports whether it
// waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// record stores run as the record of its tick of entry name; a failure is
// logged (the tick's outcome does not depend on it).
func (r *Runner) record(ctx context.Context, name string, run Run) {
	if err := record(ctx, r.o.Redis, r.o.KeyPrefix, name, run); err != nil {
		r.log.Error("schedules: cannot record a tick", "schedule", name, "run", run.Run, "error", err)
	}
}

func (r *Runner) logRun(name string, run Run) {
	attrs := []any{"schedule", name, "run", run.Run, "task_id", run.TaskID}
	switch run.Outcome {
	case OutcomeEnqueued:
		r.log.Info("schedule fired", attrs...)
	case OutcomeDuplicate:
		r.log.Debug("schedule tick enqueued by another daemon", attrs...)
	default:
		r.log.Error("schedule tick not enqueued", append(attrs, "error", run.Message)...)
	}
}

// cronLogger adapts slog to cron.Logger. Cron's info lines (every wake-up)
// are debug lines here.
type cronLogger struct{ log *slog.Logger }

// Info implements cron.Logger.
func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

// Error implements cron.Logger; it logs recovered panics too.
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append([]any{"error", err}, kv...)...)
}
