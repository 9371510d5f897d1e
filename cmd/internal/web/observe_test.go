package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/workers/campaigns"
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

// The request log never shows a one-click unsubscribe token: whoever reads
// it could opt the customer out, and its payload names the customer or
// address. The line still names the route, and the path keeps its prefix.
func TestRequestLogHidesUnsubscribeToken(t *testing.T) {
	t.Parallel()
	unsub := campaigns.Unsubscriber{Secret: []byte("unsubscribe-secret-0123456789abcdef"), PublicURL: "https://shop.example"}
	b := setup(t, func(o *web.Options) { o.Unsubscribe = unsub })
	const address = "hidden.customer@example.sk"
	token := unsub.Token("email:"+address, "spring", "email")
	path := "/u/" + token
	if got := strings.TrimPrefix(unsub.AddressURL(address, "spring"), "https://shop.example"); got != path {
		t.Fatalf("AddressURL path %q, want %q", got, path)
	}

	if resp, body := b.call(t, "GET", path, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	if resp, body := b.call(t, "POST", path, "", strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded"); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	// neither a method the route lacks nor a path the mux only redirects
	// logs the token
	if resp, _ := b.call(t, "PUT", path, "", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d, want 405", resp.StatusCode)
	}
	if resp, _ := b.call(t, "GET", "/x/.."+path, "", nil); resp.StatusCode/100 != 3 {
		t.Errorf("GET of an unclean path: %d, want a redirect", resp.StatusCode)
	}

	logs := b.logs.String()
	payload, sig, _ := strings.Cut(token, ".")
	for _, secret := range []string{token, payload, sig, address, "hidden.customer"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q of the token:\n%s", secret, logs)
		}
	}
	for i := 0; i+8 <= len(token); i++ {
		if part := token[i : i+8]; strings.Contains(logs, part) {
			t.Fatalf("the log contains %q, a part of the token:\n%s", part, logs)
		}
	}

	routes := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "http request" {
			continue
		}
		if rec["path"] != "/u/…" {
			t.Errorf("request logged with path %v, want /u/…: %s", rec["path"], line)
		}
		routes[rec["method"].(string)+" "+rec["route"].(string)] = true
	}
	for _, want := range []string{"GET GET /u/{token}", "POST POST /u/{token}"} {
		if !routes[want] {
			t.Errorf("no request line for method and route %q; got %v", want, routes)
		}
	}
}

// The request log does not name the customer a lookup was for: the ref of
// GET /api/customers/{ref} is an e-mail address or a phone number as often
// as an id. The line names the route and the caller.
func TestRequestLogHidesCustomerRef(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, ref := range []string{"hidden.customer@example.sk", "+421905111222", "c-hidden-42"} {
		if resp, body := b.call(t, "GET", "/api/customers/"+url.PathEscape(ref)+"?events=0", viewerSecret, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET customer %s: %d %s, want 404", ref, resp.StatusCode, body)
		}
	}
	if resp, _ := b.call(t, "GET", "/x/../api/customers/hidden.customer@example.sk", viewerSecret, nil); resp.StatusCode/100 != 3 {
		t.Errorf("GET of an unclean path: %d, want a redirect", resp.StatusCode)
	}
	logs := b.logs.String()
	for _, private := range []string{"hidden.customer", "905111222", "c-hidden-42"} {
		if strings.Contains(logs, private) {
			t.Errorf("the log contains %q of a customer ref:\n%s", private, logs)
		}
	}
	lookups := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "http request" && rec["route"] == "GET /api/customers/{ref}" {
			if rec["path"] != "/api/customers/…" {
				t.Errorf("lookup logged with path %v, want /api/customers/…: %s", rec["path"], line)
			}
			if rec["status"] == 404.0 && rec["caller"] == "watcher" {
				lookups++
			}
		}
	}
	if lookups != 3 {
		t.Errorf("%d request lines for the lookups name the caller, want 3:\n%s", lookups, logs)
	}
}
