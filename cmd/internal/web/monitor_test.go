package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestMonitorReadOnlyForViewers: asynqmon is behind our auth, read-only for
// viewers and writable for operators.
func TestMonitorReadOnlyForViewers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, _ := b.callJSON(t, "POST", "/api/jobs/customers:import", operatorSecret,
		strings.NewReader(`{"import_id":"mon-1","path":"/srv/m.csv"}`)); code != http.StatusAccepted {
		t.Fatalf("enqueue = %d", code)
	}
	resp, body := b.call(t, "GET", "/monitor/", viewerSecret, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<html") {
		t.Errorf("GET /monitor/ as viewer = %d, want the asynqmon page", resp.StatusCode)
	}
	resp, body = b.call(t, "GET", "/monitor/api/queues", viewerSecret, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"bulk"`) {
		t.Errorf("GET /monitor/api/queues as viewer = %d %s, want the bulk queue", resp.StatusCode, body)
	}
	pause := "/monitor/api/queues/bulk:pause"
	if resp, _ := b.call(t, "POST", pause, viewerSecret, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s as viewer = %d, want 405 (read-only)", pause, resp.StatusCode)
	}
	if resp, body := b.call(t, "POST", pause, operatorSecret, nil); resp.StatusCode/100 != 2 {
		t.Errorf("POST %s as operator = %d %s, want 2xx", pause, resp.StatusCode, body)
	}
	info, err := b.inspector.GetQueueInfo("bulk")
	if err != nil || !info.Paused {
		t.Errorf("queue bulk after the operator paused it: paused=%v err=%v", info != nil && info.Paused, err)
	}
}
