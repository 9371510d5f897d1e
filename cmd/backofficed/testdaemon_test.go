package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/cmd/internal/logging"
	"github.com/shopworks/backoffice/workers/redistest"
)

// testOperatorToken is the operator token of every test daemon.
const testOperatorToken = "test-operator-secret-0123456789"

// testDaemon is a daemon started in-process by startTestDaemon.
type testDaemon struct {
	*daemon
	URL    string // http://127.0.0.1:port
	Token  string // an operator token
	Redis  *redistest.Server
	Logs   *syncBuffer
	HTTP   *http.Client
	cancel context.CancelFunc
	done   chan error
}

// startTestDaemon starts a daemon on a fresh redis-server, an ephemeral
// HTTP port and a temp data dir; env overrides or adds BACKOFFICE_*
// settings. It is stopped in t.Cleanup (Stop stops it earlier).
func startTestDaemon(t *testing.T, env map[string]string) *testDaemon {
	t.Helper()
	srv := redistest.Start(t)
	all := map[string]string{
		"BACKOFFICE_REDIS_URL":          srv.URL(),
		"BACKOFFICE_HTTP_ADDR":          "127.0.0.1:0",
		"BACKOFFICE_DATA_DIR":           t.TempDir(),
		"BACKOFFICE_SCHEDULES_DIR":      t.TempDir(),
		"BACKOFFICE_API_TOKENS":         "ops:operator:" + testOperatorToken,
		"BACKOFFICE_SHUTDOWN_TIMEOUT":   "5s",
		"BACKOFFICE_UNSUBSCRIBE_SECRET": "test-unsubscribe-secret-0123456789abcdef",
	}
	for k, v := range env {
		all[k] = v
	}
	cfg, err := config.Load(func(k string) string { return all[k] }, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := newDaemon(ctx, cfg, logging.New(logs, slog.LevelDebug, cfg.Secrets()...))
	if err != nil {
		cancel()
		t.Fatalf("newDaemon: %v", err)
	}
	td := &testDaemon{daemon: d, URL: "http://" + d.addr(), Token: testOperatorToken, Redis: srv, Logs: logs,
		HTTP: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}, cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.serve(ctx) }()
	t.Cleanup(func() { td.Stop(t) })
	return td
}

// Stop cancels the daemon's context, waits for its shutdown and returns
// what serve returned. It is safe to call twice.
func (td *testDaemon) Stop(t *testing.T) error {
	t.Helper()
	td.cancel()
	td.HTTP.CloseIdleConnections()
	select {
	case err, ok := <-td.done:
		if ok {
			close(td.done)
		}
		return err
	case <-time.After(time.Minute):
		t.Fatal("daemon did not shut down within a minute")
		return nil
	}
}

// get requests path with the operator token and returns status and body.
func (td *testDaemon) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, td.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+td.Token)
	resp, err := td.HTTP.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// syncBuffer collects log output written by many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records returns the JSON log records whose msg is msg.
func (s *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond until it holds or 30s pass.
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
