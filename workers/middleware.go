package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Outcomes of a task, the outcome label of backoffice_jobs_total and the
// outcome attribute of the task's log record.
const (
	OutcomeSuccess = "success" // the handler returned nil
	OutcomeRetry   = "retry"   // an error: asynq retries (or archives when out of retries)
	OutcomeSkip    = "skip"    // asynq.SkipRetry (archived) or asynq.RevokeTask (dropped)
	OutcomePanic   = "panic"   // the handler panicked; retried like an error
)

// Use installs the middleware on mux, outermost first: the wait for Redis
// before asynq records the outcome (skipped when rdb is nil), the per-task
// log record, then metrics (skipped when m is nil), then panic recovery, so
// a panic is counted and logged like any other outcome.
func Use(mux *asynq.ServeMux, l *slog.Logger, m *Metrics, rdb redis.UniversalClient) {
	if rdb != nil {
		mux.Use(AwaitRedis(rdb, awaitRedisFor, l))
	}
	mux.Use(Logging(l))
	if m != nil {
		mux.Use(m.Middleware())
	}
	mux.Use(Recover())
}

type loggerKey struct{}

// WithLogger returns ctx carrying l, for LoggerFrom.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger of the task ctx belongs to, which carries
// task_id, kind, queue and retry. Without one it returns slog.Default().
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// Outcome classifies what a handler returned.
func Outcome(err error) string {
	var pe *PanicError
	switch {
	case err == nil:
		return OutcomeSuccess
	case errors.As(err, &pe):
		return OutcomePanic
	case errors.Is(err, asynq.SkipRetry), errors.Is(err, asynq.RevokeTask):
		return OutcomeSkip
	}
	return OutcomeRetry
}

// Logging gives each task a logger with its task_id, kind, queue and retry
// count (LoggerFrom) and writes one record when it ends: outcome, duration
// and error, at info for success, warn for a retry and error otherwise.
func Logging(base *slog.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			l := base.With(taskAttrs(ctx, t)...)
			start := time.Now()
			err := next.ProcessTask(WithLogger(ctx, l), t)
			logOutcome(ctx, l, err, time.Since(start))
			return err
		})
	}
}

func taskAttrs(ctx context.Context, t *asynq.Task) []any {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	return []any{"task_id", id, "kind", t.Type(), "queue", queue, "retry", retry, "max_retry", maxRetry}
}

func logOutcome(ctx context.Context, l *slog.Logger, err error, d time.Duration) {
	outcome := Outcome(err)
	attrs := []any{"outcome", outcome, "duration_ms", float64(d.Microseconds()) / 1000}
	level := slog.LevelInfo
	switch outcome {
	case OutcomeRetry:
		level = slog.LevelWarn
		if IsRateLimited(err) {
			level = slog.LevelInfo
			attrs = append(attrs, "rate_limited", true)
		}
	case OutcomeSkip, OutcomePanic:
		level = slog.LevelError
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	l.Log(ctx, level, "task done", attrs...)
}

// PanicError is what Recover returns for a handler that panicked. asynq
// retries it like any error.
type PanicError struct {
	Kind  string
	Value any
	Stack []byte // the goroutine's stack at the panic, for the log
}

func (e *PanicError) Error() string { return fmt.Sprintf("%s: handler panicked: %v", e.Kind, e.Value) }

// Recover turns a panic in a handler into a *PanicError, so the task is
// retried and the process keeps running.
func Recover() asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Kind: t.Type(), Value: v, Stack: debug.Stack()}
				}
			}()
			return next.ProcessTask(ctx, t)
		})
	}
}

// Metrics counts tasks by kind and outcome and times them.
type Metrics struct {
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers backoffice_jobs_total{kind,outcome} and
// backoffice_job_duration_seconds{kind} with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backoffice_jobs_total",
			Help: "Tasks processed by this daemon, by kind and outcome (success, retry, skip, panic).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "backoffice_job_duration_seconds",
			Help:    "Time a task's handler ran, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10), // 5ms .. about 22m
		}, []string{"kind"}),
	}
	reg.MustRegister(m.jobs, m.duration)
	return m
}

// Middleware counts and times every task.
func (m *Metrics) Middleware() asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			m.duration.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
			m.jobs.WithLabelValues(t.Type(), Outcome(err)).Inc()
			return err
		})
	}
}

// awaitRedisFor bounds AwaitRedis: half of asynq's 30 s task lease, so the
// wait never outlasts the lease and has the task run twice.
const awaitRedisFor = 15 * time.Second

// AwaitRedis holds a task's return, after its handler, while Redis does not
// answer, for up to max. asynq v0.26 records a task's outcome (done, retry,
// archived) with a context it cancels as soon as the first try fails: an
// outcome reached during a Redis outage is lost, the task stays active
// until its lease runs out, and the recoverer runs it again 30 to 90 s
// later (a success runs twice, a held campaign chunk idles). Waiting here
// lets asynq's record succeed once Redis is back. It costs one PING per
// task while Redis answers.
func AwaitRedis(rdb redis.UniversalClient, max time.Duration, l *slog.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			err := next.ProcessTask(ctx, t)
			if waited, ok := awaitRedis(rdb, max); waited > 0 {
				l.Warn("task ended while Redis did not answer: waited for it, so that asynq can record the outcome",
					append(taskAttrs(ctx, t), "waited_ms", waited.Milliseconds(), "redis_back", ok)...)
			}
			return err
		})
	}
}

// awaitRedis pings Redis until it answers or max has passed. It returns how
// long it waited (0 when the first PING was answered) and whether Redis
// answered.
func awaitRedis(rdb redis.UniversalClient, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	for try, wait := 0, 100*time.Millisecond; ; try, wait = try+1, min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			if try == 0 {
				return 0, true
			}
			return time.Since(start), true
		}
		if time.Since(start)+wait > max {
			return time.Since(start), false
		}
		time.Sleep(wait)
	}
}
