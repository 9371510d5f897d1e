package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shopworks/backoffice/workers/redistest"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of workers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMiddlewareOnRealServer(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)

	var rateLimitedOnce sync.Once
	mux := asynq.NewServeMux()
	Use(mux, logger, metrics, rdb)
	mux.HandleFunc("test:ok", func(ctx context.Context, t *asynq.Task) error {
		LoggerFrom(ctx).Info("inside handler")
		return nil
	})
	mux.HandleFunc("test:fail", func(ctx context.Context, t *asynq.Task) error {
		return errors.New("smtp 451 try later")
	})
	mux.HandleFunc("test:skip", func(ctx context.Context, t *asynq.Task) error {
		return fmt.Errorf("%w: field to: empty", asynq.SkipRetry)
	})
	mux.HandleFunc("test:panic", func(ctx context.Context, t *asynq.Task) error {
		var m map[string]int
		m["boom"]++ // nil map write
		return nil
	})
	mux.HandleFunc("test:limited", func(ctx context.Context, t *asynq.Task) error {
		var err error
		rateLimitedOnce.Do(func() { err = RetryLater(ErrRateLimited, time.Second, true) })
		return err
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:    4,
		Queues:         map[string]int{"default": 1},
		LogLevel:       asynq.FatalLevel,
		RetryDelayFunc: RetryDelay,
		IsFailure:      IsFailure,
		// The rate-limited retry is due after 1s; look for it often.
		DelayedTaskCheckInterval: 100 * time.Millisecond,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	client := asynq.NewClientFromRedisClient(rdb)
	for _, kind := range []string{"test:ok", "test:fail", "test:skip", "test:panic"} {
		if _, err := client.Enqueue(asynq.NewTask(kind, nil), asynq.MaxRetry(0), asynq.TaskID(kind)); err != nil {
			t.Fatalf("enqueue %s: %v", kind, err)
		}
	}
	if _, err := client.Enqueue(asynq.NewTask("test:limited", nil), asynq.MaxRetry(3), asynq.TaskID("limited"), asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}

	count := func(kind, outcome string) float64 {
		return testutil.ToFloat64(metrics.jobs.WithLabelValues(kind, outcome))
	}
	want := map[[2]string]float64{
		{"test:ok", OutcomeSuccess}: 1, {"test:fail", OutcomeRetry}: 1, {"test:skip", OutcomeSkip}: 1,
		{"test:panic", OutcomePanic}: 1, {"test:limited", OutcomeRetry}: 1, {"test:limited", OutcomeSuccess}: 1,
	}
	waitFor(t, "every task to be counted", func() bool {
		for k, n := range want {
			if count(k[0], k[1]) < n {
				return false
			}
		}
		return true
	})
	if n := testutil.CollectAndCount(metrics.duration); n != 5 {
		t.Errorf("duration histogram has %d series, want one per kind (5)", n)
	}

	// The rate-limited attempt did not spend the retry budget.
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	info, err := inspector.GetTaskInfo("default", "limited")
	if err != nil {
		t.Fatal(err)
	}
	if info.Retried != 0 || info.State != asynq.TaskStateCompleted {
		t.Errorf("rate-limited task: Retried=%d State=%v, want 0 and completed", info.Retried, info.State)
	}

	checkLogRecords(t, logs.records(t))
}

func checkLogRecords(t *testing.T, recs []map[string]any) {
	t.Helper()
	done := map[string][]map[string]any{}
	var inside map[string]any
	for _, r := range recs {
		switch r["msg"] {
		case "task done":
			done[r["kind"].(string)] = append(done[r["kind"].(string)], r)
		case "inside handler":
			inside = r
		}
	}
	if inside == nil || inside["task_id"] != "test:ok" || inside["kind"] != "test:ok" || inside["queue"] != "default" {
		t.Errorf("handler's LoggerFrom record = %v, want task_id, kind and queue attached", inside)
	}
	wantOutcome := map[string][2]string{
		"test:ok": {OutcomeSuccess, "INFO"}, "test:fail": {OutcomeRetry, "WARN"},
		"test:skip": {OutcomeSkip, "ERROR"}, "test:panic": {OutcomePanic, "ERROR"},
	}
	for kind, w := range wantOutcome {
		if len(done[kind]) != 1 {
			t.Errorf("%s: %d task done records, want exactly 1", kind, len(done[kind]))
			continue
		}
		r := done[kind][0]
		got := [2]string{fmt.Sprint(r["outcome"]), fmt.Sprint(r["level"])}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s record outcome, level (-want,+got):\n%s", kind, diff)
		}
		for _, attr := range []string{"task_id", "queue", "retry", "max_retry", "duration_ms"} {
			if _, ok := r[attr]; !ok {
				t.Errorf("%s record lacks %s: %v", kind, attr, r)
			}
		}
	}
	if e, _ := done["test:fail"][0]["error"].(string); e != "smtp 451 try later" {
		t.Errorf("test:fail error attr = %q", e)
	}
	if len(done["test:panic"]) == 1 {
		r := done["test:panic"][0]
		if e, _ := r["error"].(string); !strings.Contains(e, "test:panic: handler panicked: assignment to entry in nil map") {
			t.Errorf("panic error attr = %q", e)
		}
		if s, _ := r["stack"].(string); !strings.Contains(s, "middleware_test.go") {
			t.Errorf("panic record stack does not show the handler:\n%s", s)
		}
	}
	if lim := done["test:limited"]; len(lim) != 2 || lim[0]["rate_limited"] != true || lim[0]["level"] != "INFO" {
		t.Errorf("test:limited records = %v, want a rate_limited info record then a success", lim)
	}
}

func TestLoggerFromWithoutMiddleware(t *testing.T) {
	t.Parallel()
	if LoggerFrom(context.Background()) != slog.Default() {
		t.Error("LoggerFrom(empty ctx) is not slog.Default()")
	}
	l := slog.New(slog.DiscardHandler)
	if LoggerFrom(WithLogger(context.Background(), l)) != l {
		t.Error("LoggerFrom(WithLogger(l)) is not l")
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, OutcomeSuccess},
		{errors.New("x"), OutcomeRetry},
		{fmt.Errorf("bad payload: %w", asynq.SkipRetry), OutcomeSkip},
		{asynq.RevokeTask, OutcomeSkip},
		{fmt.Errorf("wrapped: %w", &PanicError{Kind: "k", Value: 1}), OutcomePanic},
		{RetryLater(ErrRateLimited, time.Second, true), OutcomeRetry},
	}
	for _, tt := range tests {
		if got := Outcome(tt.err); got != tt.want {
			t.Errorf("Outcome(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// A task that ends while Redis is down is recorded once Redis is back, not
// left active until its lease runs out and run again (asynq v0.26 gives up
// recording an outcome at the first failure).
func TestTaskEndingDuringARedisOutageIsRecorded(t *testing.T) {
	t.Parallel()
	redisSrv := redistest.Start(t, redistest.Options{AppendOnly: true, Extra: []string{"--appendfsync", "always"}})
	rdb := redisSrv.Client(t)
	var logs syncBuffer
	mux := asynq.NewServeMux()
	Use(mux, slog.New(slog.NewJSONHandler(&logs, nil)), nil, rdb)
	var runs atomic.Int32
	back := make(chan struct{})
	mux.HandleFunc("test:outage", func(context.Context, *asynq.Task) error {
		if runs.Add(1) == 1 {
			redisSrv.Stop() // the task succeeds as Redis goes away
			go func() {
				defer close(back)
				// longer than go-redis's own retries inside asynq's record
				time.Sleep(4 * time.Second)
				redisSrv.Restart(t)
			}()
		}
		return nil
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 1, Queues: map[string]int{"default": 1}, LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("test:outage", nil), asynq.TaskID("outage-1"), asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}
	<-back
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	deadline := time.Now().Add(10 * time.Second) // the lease is 30 s: without the wait it stays active
	var info *asynq.TaskInfo
	var err error
	for time.Now().Before(deadline) {
		if info, err = inspector.GetTaskInfo("default", "outage-1"); err == nil && info.State == asynq.TaskStateCompleted {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || info.State != asynq.TaskStateCompleted {
		t.Fatalf("task after the outage: %+v, %v; want completed", info, err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	var warned bool
	for _, r := range logs.records(t) {
		msg, _ := r["msg"].(string)
		warned = warned || strings.HasPrefix(msg, "task ended while Redis did not answer") && r["task_id"] == "outage-1" && r["redis_back"] == true
	}
	if !warned {
		t.Errorf("no warning about the wait for Redis in the log: %v", logs.records(t))
	}
}
