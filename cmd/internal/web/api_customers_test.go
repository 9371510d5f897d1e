package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopworks/backoffice/workers/customers"
)

func TestShowCustomer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	if _, err := b.store.Upsert(ctx, customers.Customer{ID: "c-42", Name: "Jana Nováková",
		Email: "jana@example.com", Phone: "+421905123456", Language: "sk", Tags: []string{"vip"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, _, err := b.store.AddEvent(ctx, "c-42", customers.Event{At: start.Add(time.Duration(i) * time.Hour),
			Kind: "sms.in", Channel: "sms", Text: fmt.Sprintf("message %d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	for _, ref := range []string{"c-42", "jana@example.com", "JANA@example.com", "+421905123456", "0905 123 456"} {
		resp, raw := b.call(t, "GET", "/api/customers/"+url.PathEscape(ref)+"?events=2", viewerSecret, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /api/customers/%s = %d %s, want 200", ref, resp.StatusCode, raw)
			continue
		}
		var got struct {
			Customer customers.Customer `json:"customer"`
			Events   []customers.Event  `json:"events"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, e := range got.Events {
			texts = append(texts, e.Text)
		}
		if got.Customer.ID != "c-42" || got.Customer.Name != "Jana Nováková" {
			t.Errorf("GET /api/customers/%s customer = %+v, want c-42", ref, got.Customer)
		}
		if diff := cmp.Diff([]string{"message 2", "message 1"}, texts); diff != "" {
			t.Errorf("GET /api/customers/%s?events=2 newest events (-want,+got):\n%s", ref, diff)
		}
	}

	code, body := b.callJSON(t, "GET", "/api/customers/c-42?events=0", viewerSecret, nil)
	if events, _ := body["events"].([]any); code != http.StatusOK || events == nil || len(events) != 0 {
		t.Errorf("GET ?events=0 = %d events %v, want 200 and an empty list", code, body["events"])
	}
}

func TestShowCustomerRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		path      string
		wantCode  int
		wantField string
		wantIn    string
	}{
		{"/api/customers/nobody@example.com", 404, "", "nobody@example.com"},
		{"/api/customers/c-404", 404, "", "c-404"},
		{"/api/customers/c-1?events=501", 400, "events", "0 to 500"},
		{"/api/customers/c-1?events=-1", 400, "events", "0 to 500"},
		{"/api/customers/c-1?events=ten", 400, "events", `"ten"`},
	}
	for _, tt := range tests {
		code, body := b.callJSON(t, "GET", tt.path, viewerSecret, nil)
		msg, _ := body["error"].(string)
		field, _ := body["field"].(string)
		if code != tt.wantCode || field != tt.wantField || !strings.Contains(msg, tt.wantIn) {
			t.Errorf("GET %s = %d field %q error %q; want %d field %q error containing %q",
				tt.path, code, field, msg, tt.wantCode, tt.wantField, tt.wantIn)
		}
	}
}

// TestShowCustomerStoreDownLogsNoRef: when Redis fails, the lookup is
// logged without the e-mail address or phone number it was for.
func TestShowCustomerStoreDownLogsNoRef(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.redis.Stop()
	for _, ref := range []string{"jana@example.com", "+421905123456"} {
		code, body := b.callJSON(t, "GET", "/api/customers/"+url.PathEscape(ref), viewerSecret, nil)
		if msg, _ := body["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, "not reachable") {
			t.Errorf("GET /api/customers/%s with Redis down = %d %v, want 503", ref, code, body)
		}
	}
	logs := b.logs.String()
	if !strings.Contains(logs, "customer lookup") {
		t.Errorf("the failed lookups are not logged:\n%s", logs)
	}
	for _, pii := range []string{"jana@example.com", "421905123456", "jana%40example.com"} {
		if strings.Contains(logs, pii) {
			t.Errorf("the log names %s:\n%s", pii, logs)
		}
	}
}
