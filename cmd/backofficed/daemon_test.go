package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/redistest"
)

// TestDaemonLifecycle starts the daemon in-process, checks the probes and
// /metrics, has it process a task and shuts it down: serve returns nil,
// Redis is closed and no goroutine is left behind. It does not run in
// parallel, so goleak sees only the daemon's goroutines.
func TestDaemonLifecycle(t *testing.T) {
	td := startTestDaemon(t, nil)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := td.get(t, path); code != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200", path, code, body)
		}
	}
	for _, dir := range []string{td.cfg.DataDir, td.cfg.OutboxDir()} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("directory %s not made at start: %v", dir, err)
		}
	}

	// A task of a kind nobody handles still runs through the middleware on
	// the configured queues: it fails, is counted and archived.
	task := asynq.NewTask("daemontest:unknown", nil, asynq.Queue(jobs.QueueBulk), asynq.MaxRetry(0), asynq.TaskID("t1"))
	if _, err := td.client.EnqueueContext(t.Context(), task); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	waitFor(t, "the task to be archived", func() bool {
		info, err := td.inspector.GetTaskInfo(jobs.QueueBulk, "t1")
		return err == nil && info.State == asynq.TaskStateArchived
	})
	_, metrics := td.get(t, "/metrics")
	for _, want := range []string{
		`backoffice_jobs_total{kind="daemontest:unknown",outcome="retry"} 1`,
		`backoffice_job_duration_seconds_count{kind="daemontest:unknown"} 1`,
		"go_goroutines",
		"process_open_fds",
		`asynq_tasks_enqueued_total{queue="bulk",state="archived"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := td.Stop(t); err != nil {
		t.Errorf("serve returned %v after cancel, want nil", err)
	}
	if err := td.rdb.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Ping after shutdown = %v, want redis.ErrClosed", err)
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(td.URL, "http://")); err == nil {
		t.Errorf("HTTP still accepts connections after shutdown")
	}
	checkStartAndStopLogged(t, td)
}

func checkStartAndStopLogged(t *testing.T, td *testDaemon) {
	t.Helper()
	start := td.Logs.records(t, "backofficed starting")
	if len(start) != 1 || start[0]["http_addr"] != strings.TrimPrefix(td.URL, "http://") {
		t.Errorf("start records = %v, want one with http_addr %s", start, td.URL)
	} else if cfg, _ := start[0]["config"].(map[string]any); cfg["BACKOFFICE_API_TOKENS"] != "ops:operator:<redacted>" {
		t.Errorf("logged config = %v, want the tokens redacted", cfg)
	}
	if len(td.Logs.records(t, "stopped")) != 1 {
		t.Error(`no "stopped" record`)
	}
	done := td.Logs.records(t, "task done")
	if len(done) != 1 || done[0]["kind"] != "daemontest:unknown" || done[0]["queue"] != "bulk" {
		t.Errorf("task done records = %v, want one for daemontest:unknown on bulk", done)
	}
	for _, secret := range []string{testOperatorToken, td.cfg.UnsubscribeSecret} {
		if strings.Contains(td.Logs.String(), secret) {
			t.Errorf("the log shows a secret %q", secret)
		}
	}
}

func TestDaemonRedisUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			"BACKOFFICE_REDIS_URL": "redis://:hunter2-pw@" + addr + "/0?dial_timeout=1s",
			"BACKOFFICE_DATA_DIR":  t.TempDir(),
			"BACKOFFICE_HTTP_ADDR": "127.0.0.1:0",
		}[k]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newDaemon(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "redis at "+addr+" is not reachable: ") {
		t.Errorf("newDaemon() = %v, want an error naming %s", err, addr)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestEnsureWritable: the data dir and the outbox must take a file at
// start-up. As root every permission is granted, so the directory that
// refuses one is /proc/self (it exists, nothing can be created in it).
func TestEnsureWritable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var", "outbox")
	if err := ensureWritable(dir); err != nil {
		t.Fatalf("ensureWritable(new dir) = %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("ensureWritable left %v behind", left)
	}
	if err := ensureWritable("/proc/self"); err == nil || !strings.Contains(err.Error(), "/proc/self is not writable") {
		t.Errorf("ensureWritable(/proc/self) = %v, want it not writable", err)
	}
}

// TestDaemonDeliveryError: a template directory that cannot be read stops
// the start with an error naming it (it panicked: newDelivery's cleanup
// closed the nil delivery its error return had set).
func TestDaemonDeliveryError(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "no-templates")
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			"BACKOFFICE_REDIS_URL":     redistest.Start(t).URL(),
			"BACKOFFICE_DATA_DIR":      t.TempDir(),
			"BACKOFFICE_HTTP_ADDR":     "127.0.0.1:0",
			"BACKOFFICE_TEMPLATES_DIR": missing,
		}[k]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var d *daemon
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("newDaemon() panicked: %v", v)
			}
		}()
		d, err = newDaemon(t.Context(), cfg, slog.New(slog.DiscardHandler))
	}()
	if d != nil || err == nil || !strings.HasPrefix(err.Error(), "templates: ") || !strings.Contains(err.Error(), missing) {
		t.Errorf("newDaemon() = %v, %v; want an error naming %s", d, err, missing)
	}
	if err != nil && strings.Contains(err.Error(), "templates: templates: ") {
		t.Errorf("newDaemon() = %v; want each problem prefixed once", err)
	}
}

func TestDaemonHTTPAddrInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv := redistest.Start(t).URL()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			"BACKOFFICE_REDIS_URL": srv,
			"BACKOFFICE_DATA_DIR":  t.TempDir(),
			"BACKOFFICE_HTTP_ADDR": l.Addr().String(),
		}[k]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newDaemon(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "http: listen on "+l.Addr().String()) {
		t.Errorf("newDaemon() = %v, want a listen error naming the address", err)
	}
}

func TestRealMain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"check prints redacted config", []string{"-check"},
			map[string]string{"BACKOFFICE_API_TOKENS": "ops:operator:0123456789abcdef-secret", "BACKOFFICE_DATA_DIR": dir},
			0, []string{"BACKOFFICE_API_TOKENS", "ops:operator:<redacted>", "warning: no SMTP relay"}, nil},
		{"bad config lists every error", []string{"-check"},
			map[string]string{"BACKOFFICE_CONCURRENCY": "abc", "BACKOFFICE_PHONE_REGION": "XX"},
			2, nil, []string{"invalid configuration:\n  BACKOFFICE_CONCURRENCY: must be a whole number between 3 and 1000, got \"abc\"\n  BACKOFFICE_PHONE_REGION: "}},
		{"each problem on an indented line", []string{"-check"},
			map[string]string{"BACKOFFICE_SMTP_POOL": "0", "BACKOFFICE_PHONE_REGION": "XX", "BACKOFFICE_PUBLC_URL": "x"},
			2, nil, []string{"\n  BACKOFFICE_PHONE_REGION: ", "\n  BACKOFFICE_SMTP_POOL: ", "\n  BACKOFFICE_PUBLC_URL: unknown variable"}},
		{"misspelt variable", []string{"-check"},
			map[string]string{"BACKOFFICE_PUBLC_URL": "https://bo.example.com"},
			2, nil, []string{"BACKOFFICE_PUBLC_URL: unknown variable; did you mean BACKOFFICE_PUBLIC_URL?"}},
		{"help", []string{"-h"}, nil, 0, []string{"Usage: backofficed", "BACKOFFICE_REDIS_URL"}, nil},
		{"unknown flag", []string{"-nope"}, nil, 2, nil, []string{"flag provided but not defined: -nope"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		var environ []string
		for k, v := range tt.env {
			environ = append(environ, k+"="+v)
		}
		code := realMain(tt.args, func(k string) string { return tt.env[k] }, environ, &stdout, &stderr)
		if code != tt.wantCode {
			t.Errorf("%s: exit %d, want %d; stderr:\n%s", tt.name, code, tt.wantCode, stderr.String())
		}
		for _, want := range tt.wantStdout {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: stdout lacks %q:\n%s", tt.name, want, stdout.String())
			}
		}
		for _, want := range tt.wantStderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tt.name, want, stderr.String())
			}
		}
		if strings.Contains(stdout.String()+stderr.String(), "0123456789abcdef-secret") {
			t.Errorf("%s: output shows a token secret", tt.name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "unsubscribe.secret")); err == nil {
		t.Error("-check generated a secret: it must not change anything")
	}
}

// TestTuneGC: without GOGC the daemon collects at defaultGOGC; an
// operator's GOGC is left to the runtime. Not parallel: the collector's
// target belongs to the whole test process.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Errorf("GC percent without GOGC = %d, want %d", got, defaultGOGC)
	}
	tuneGC(func(k string) string { return map[string]string{"GOGC": "50"}[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC set = %d, want it untouched (100)", got)
	}
}

// TestEveryKindHasAHandler checks the wiring: each kind of the jobs
// catalogue reaches a handler of the daemon's mux, not asynq's "not found".
func TestEveryKindHasAHandler(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, nil)
	for _, spec := range jobs.Kinds() {
		if _, pattern := td.mux.Handler(asynq.NewTask(spec.Kind, nil)); pattern != spec.Kind {
			t.Errorf("kind %s: no handler registered (pattern %q)", spec.Kind, pattern)
		}
	}
}
