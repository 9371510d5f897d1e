package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
)

// The tokens of the test API.
const (
	testOperator = "cli-operator-secret-0123456789"
	testViewer   = "cli-viewer-secret-0123456789ab"
)

// apiBundle is the real HTTP API on its own redis-server, for the CLI to
// talk to.
type apiBundle struct {
	url       string
	store     *customers.Store
	inspector *asynq.Inspector
	dataDir   string
}

func startAPI(t *testing.T) *apiBundle {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	reg := prometheus.NewRegistry()
	b := &apiBundle{store: customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"}),
		inspector: asynq.NewInspectorFromRedisClient(rdb), dataDir: t.TempDir()}
	s, err := web.New(web.Options{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Redis: rdb,
		Client: asynq.NewClientFromRedisClient(rdb), Inspector: b.inspector, Customers: b.store,
		Tokens: []config.Token{
			{Name: "ops", Role: config.RoleOperator, Secret: testOperator},
			{Name: "watcher", Role: config.RoleViewer, Secret: testViewer},
		},
		DataDir: b.dataDir, Gatherer: reg, Registerer: reg,
	})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	b.url = ts.URL
	return b
}

// cliResult is what one run printed.
type cliResult struct {
	code           int
	stdout, stderr string
}

// firstErr is the first line of stderr.
func (r cliResult) firstErr() string {
	line, _, _ := strings.Cut(r.stderr, "\n")
	return line
}

// runCLI runs the CLI in-process against url with env BACKOFFICE_TOKEN set
// to token (empty: unset) and stdin.
func runCLI(t *testing.T, url, token, stdin string, args ...string) cliResult {
	t.Helper()
	return runCLIEnv(t, map[string]string{"BACKOFFICE_URL": url, "BACKOFFICE_TOKEN": token}, stdin, args...)
}

func runCLIEnv(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	code := run(ctx, args, a)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
