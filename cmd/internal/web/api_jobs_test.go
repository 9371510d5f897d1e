package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shopworks/backoffice/jobs"
)

func TestEnqueueJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.callJSON(t, "POST", "/api/jobs/customers:import", operatorSecret,
		strings.NewReader(`{"import_id":"crm-11","path":"/srv/crm.csv","source":"import:crm"}`))
	want := map[string]any{"task_id": "customers:import:crm-11", "kind": "customers:import", "queue": "bulk"}
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/jobs/customers:import = %d %v, want 202", code, body)
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("POST /api/jobs/customers:import answer (-want,+got):\n%s", diff)
	}
	info, err := b.inspector.GetTaskInfo("bulk", "customers:import:crm-11")
	if err != nil {
		t.Fatalf("the task is not in queue bulk: %v", err)
	}
	var args jobs.CustomersImportArgs
	if err := json.Unmarshal(info.Payload, &args); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jobs.CustomersImportArgs{ImportID: "crm-11", Path: "/srv/crm.csv", Source: "import:crm"}, args); diff != "" {
		t.Errorf("task payload (-want,+got):\n%s", diff)
	}

	code, body = b.callJSON(t, "POST", "/api/jobs/customers:import", operatorSecret,
		strings.NewReader(`{"import_id":"crm-11","path":"/srv/other.csv"}`))
	if code != http.StatusConflict || body["task_id"] != "customers:import:crm-11" {
		t.Errorf("second POST with the same import_id = %d %v, want 409 naming task customers:import:crm-11", code, body)
	}
}

func TestEnqueueJobRefusesBadArgs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name, kind, body string
		wantCode         int
		wantField        string
		wantIn           string
	}{
		{"relative path", "customers:import", `{"import_id":"a","path":"crm.csv"}`, 400, "path", "absolute"},
		{"missing import_id", "customers:import", `{"path":"/srv/crm.csv"}`, 400, "import_id", "import_id"},
		{"wrong type", "customers:import", `{"import_id":7,"path":"/a"}`, 400, "import_id", "string"},
		{"unknown field", "customers:import", `{"import_id":"a","path":"/a","sauce":"x"}`, 400, "sauce", "unknown field"},
		{"not JSON", "customers:import", `{"import_id":`, 400, "", "invalid JSON"},
		{"trailing data", "customers:import", `{"import_id":"a","path":"/a"} {}`, 400, "", "trailing"},
		{"trailing brace", "customers:import", `{"import_id":"a","path":"/a"}}`, 400, "", "trailing data after the JSON object"},
		{"trailing bracket", "customers:import", `{"import_id":"a","path":"/a"}]`, 400, "", "trailing data after the JSON object"},
		{"unknown kind", "no:such", `{}`, 404, "", "unknown job kind"},
		{"incoming SMS: only the signed webhook files one", "sms:inbound",
			`{"message_sid":"SM0123456789abcdef0123456789abcdef","from":"+421905123456","to":"+421905000000","body":"STOP","received_at":"2026-12-04T10:00:00Z"}`,
			403, "", "queued by the daemon itself"},
		{"delivery report: only the signed webhook", "sms:status", `{"message_sid":"SM0123456789abcdef0123456789abcdef","status":"delivered","received_at":"2026-12-04T10:00:00Z"}`,
			403, "", "queued by the daemon itself"},
		{"campaign chunk: only a launch", "campaign:chunk", `{"campaign":"spring","run":"r1","chunk":0}`, 403, "", "queued by the daemon itself"},
		{"too big", "customers:import", `{"import_id":"a","path":"/` + strings.Repeat("a", 1<<20) + `"}`, 413, "", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := b.callJSON(t, "POST", "/api/jobs/"+tt.kind, operatorSecret, strings.NewReader(tt.body))
			msg, _ := body["error"].(string)
			field, _ := body["field"].(string)
			if code != tt.wantCode || field != tt.wantField || !strings.Contains(msg, tt.wantIn) {
				t.Errorf("POST /api/jobs/%s %.60s = %d field %q error %q; want %d field %q error containing %q",
					tt.kind, tt.body, code, field, msg, tt.wantCode, tt.wantField, tt.wantIn)
			}
		})
	}
	if qs, _ := b.inspector.Queues(); len(qs) != 0 {
		t.Errorf("refused requests created queues %v", qs)
	}
}

func TestShowJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _ := b.callJSON(t, "POST", "/api/jobs/customers:import", operatorSecret,
		strings.NewReader(`{"import_id":"crm-12","path":"/srv/crm.csv"}`))
	if code != http.StatusAccepted {
		t.Fatalf("enqueue = %d", code)
	}
	code, body := b.callJSON(t, "GET", "/api/jobs/customers:import:crm-12", viewerSecret, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/jobs/customers:import:crm-12 = %d %v", code, body)
	}
	want := map[string]any{
		"id": "customers:import:crm-12", "kind": "customers:import", "queue": "bulk", "state": "pending",
		"retried": 0.0, "max_retry": 5.0, "payload": map[string]any{"import_id": "crm-12", "path": "/srv/crm.csv"},
	}
	delete(body, "next_process_at") // a time; pending tasks have one
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("GET /api/jobs/{id} (-want,+got):\n%s", diff)
	}

	code, body = b.callJSON(t, "GET", "/api/jobs/customers:import:nope", viewerSecret, nil)
	if msg, _ := body["error"].(string); code != http.StatusNotFound || !strings.Contains(msg, "customers:import:nope") {
		t.Errorf("GET unknown task = %d %v, want 404 naming the id", code, body)
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.callJSON(t, "GET", "/api/kinds", viewerSecret, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/kinds = %d", code)
	}
	list, _ := body["kinds"].([]any)
	var got, gotInternal []string
	for _, k := range list {
		m := k.(map[string]any)
		got = append(got, m["kind"].(string))
		if m["internal"] == true {
			gotInternal = append(gotInternal, m["kind"].(string))
		}
	}
	var want []string
	for _, s := range jobs.Kinds() {
		want = append(want, s.Kind)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/kinds kinds (-want,+got):\n%s", diff)
	}
	wantInternal := []string{jobs.KindSMSInbound, jobs.KindSMSStatus, jobs.KindCampaignChunk}
	if diff := cmp.Diff(wantInternal, gotInternal, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("GET /api/kinds internal kinds (-want,+got):\n%s", diff)
	}
}
