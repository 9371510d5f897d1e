package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
)

// BenchmarkAuth serves GET /api/kinds in process (no network between
// client and server) with a bearer token and with a session cookie: the
// difference is what the check of the cookie against the revoked sessions
// (one Redis EXISTS on loopback) costs a cookie request. Bearer requests
// do not read Redis.
func BenchmarkAuth(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	reg := prometheus.NewRegistry()
	s, err := web.New(web.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Redis: rdb,
		Client: asynq.NewClientFromRedisClient(rdb), Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Customers: customers.New(rdb, "bo:", customers.Options{}), Tokens: testTokens(), KeyPrefix: "bo:",
		DataDir: b.TempDir(), Gatherer: reg, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	login := httptest.NewRequest("POST", "http://backoffice.test/login",
		strings.NewReader(url.Values{"token": {viewerSecret}}.Encode()))
	login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	login.Header.Set("Origin", "http://backoffice.test")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, login)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) != 1 {
		b.Fatalf("POST /login = %d, cookies %v", rec.Code, cookies)
	}
	for _, bc := range []struct{ name, header, value string }{
		{"bearer", "Authorization", "Bearer " + viewerSecret},
		{"cookie", "Cookie", cookies[0].Name + "=" + cookies[0].Value},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://backoffice.test/api/kinds", nil)
				req.Header.Set(bc.header, bc.value)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET /api/kinds = %d", rec.Code)
				}
			}
		})
	}
}
