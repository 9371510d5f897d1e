package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The tokens of every test server.
const (
	operatorSecret = "operator-secret-0123456789abcdef"
	viewerSecret   = "viewer-secret-0123456789abcdef"
)

func testTokens() []config.Token {
	return []config.Token{
		{Name: "ops", Role: config.RoleOperator, Secret: operatorSecret},
		{Name: "watcher", Role: config.RoleViewer, Secret: viewerSecret},
	}
}

// bundle is one web server on its own redis-server.
type bundle struct {
	ts        *httptest.Server
	redis     *redistest.Server
	rdb       *redis.Client
	inspector *asynq.Inspector
	store     *customers.Store
	dataDir   string
	logs      *syncBuffer
}

// setup starts a redis-server and a web server on it; change adjusts the
// options before New.
func setup(t *testing.T, change ...func(*web.Options)) *bundle {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	b := &bundle{redis: srv, rdb: rdb, inspector: asynq.NewInspectorFromRedisClient(rdb),
		store: customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"}), dataDir: t.TempDir(), logs: logs}
	opts := web.Options{
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Redis: rdb,
		Client: asynq.NewClientFromRedisClient(rdb), Inspector: b.inspector, Customers: b.store,
		Tokens: testTokens(), KeyPrefix: "bo:", DataDir: b.dataDir, Gatherer: reg, Registerer: reg,
	}
	for _, c := range change {
		c(&opts)
	}
	s, err := web.New(opts)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	b.ts = httptest.NewServer(s.Handler())
	t.Cleanup(b.ts.Close)
	return b
}

// call sends one request with an optional bearer secret and returns the
// status and body.
func (b *bundle) call(t *testing.T, method, path, secret string, body io.Reader, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, out
}

// callJSON is call with a JSON answer decoded into a map.
func (b *bundle) callJSON(t *testing.T, method, path, secret string, body io.Reader, header ...string) (int, map[string]any) {
	t.Helper()
	resp, raw := b.call(t, method, path, secret, body, header...)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want JSON; body %s", method, path, ct, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, raw)
	}
	return resp.StatusCode, m
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// syncBuffer is a log sink safe for concurrent writes.
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

// eventually polls cond until it is true or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
