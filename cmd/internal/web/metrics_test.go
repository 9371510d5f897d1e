package web_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestMetricsServeHTTPAndAsynq(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, body := b.callJSON(t, "POST", "/api/jobs/customers:import", operatorSecret,
		strings.NewReader(`{"import_id":"m-1","path":"/srv/m.csv"}`)); code != http.StatusAccepted {
		t.Fatalf("enqueue = %d %v", code, body)
	}
	b.call(t, "GET", "/healthz", "", nil)
	b.call(t, "GET", "/nowhere", "", nil)
	resp, raw := b.call(t, "GET", "/metrics", viewerSecret, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	body := string(raw)
	for _, want := range []string{
		`backoffice_http_requests_total{code="202",route="POST /api/jobs/{kind}"} 1`,
		`backoffice_http_requests_total{code="200",route="GET /healthz"} 1`,
		`backoffice_http_requests_total{code="404",route="unmatched"} 1`,
		`backoffice_http_request_duration_seconds_count{route="GET /healthz"} 1`,
		`asynq_tasks_enqueued_total{queue="bulk",state="pending"} 1`,
		`asynq_queue_size{queue="bulk"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("GET /metrics:\n%s", body)
	}
}
