package web_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, body := b.call(t, "GET", "/healthz", "", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
}

func TestReadyzFollowsRedis(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, body := b.call(t, "GET", "/readyz", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz with Redis up = %d %q, want 200", resp.StatusCode, body)
	}

	b.redis.Stop()
	resp, body = b.call(t, "GET", "/readyz", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz with Redis stopped = %d %q, want 503", resp.StatusCode, body)
	}
	if !strings.HasPrefix(string(body), "redis: ") {
		t.Errorf("GET /readyz reason = %q, want it to start with \"redis: \"", body)
	}
	if strings.Contains(string(body), b.redis.Addr) {
		t.Errorf("GET /readyz reason %q reveals the Redis address", body)
	}

	b.redis.Restart(t)
	eventually(t, "readyz answers 200 after Redis restarted", func() bool {
		resp, _ := b.call(t, "GET", "/readyz", "", nil)
		return resp.StatusCode == http.StatusOK
	})
}
