package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// An accepted webhook is logged at debug only (its task logs it), a refused
// one at info with its status, so a burst of Twilio traffic does not flood
// the log while a forged request still shows.
func TestWebhookRequestLogLevels(t *testing.T) {
	t.Parallel()
	b := setup(t, withTwilio)
	form := inboundForm("SM0123456789abcdef0123456789abcd01", "+421905123456", "hello")
	if code, _ := b.postSigned(t, smsPath, publicURL+smsPath, twilioToken, form); code != http.StatusOK {
		t.Fatalf("signed POST = %d, want 200", code)
	}
	if code, _ := b.postSigned(t, smsPath, publicURL+smsPath, "", form); code != http.StatusForbidden {
		t.Fatalf("unsigned POST = %d, want 403", code)
	}
	var statuses []float64
	for _, line := range strings.Split(strings.TrimSpace(b.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "http request" && rec["path"] == smsPath {
			if rec["level"] != "INFO" {
				t.Errorf("webhook request logged at %v, want INFO: %s", rec["level"], line)
			}
			statuses = append(statuses, rec["status"].(float64))
		}
	}
	if len(statuses) != 1 || statuses[0] != http.StatusForbidden {
		t.Errorf("webhook request lines at info have statuses %v, want only the refused request's 403", statuses)
	}
}
