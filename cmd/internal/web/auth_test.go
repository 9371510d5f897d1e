package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shopworks/backoffice/cmd/internal/web"
)

// TestRouteRoles checks every authenticated route against every kind of
// caller: none, a wrong token, a malformed header, a viewer, an operator.
// Requests that pass auth carry bodies the handlers refuse cheaply (or
// accept harmlessly), so the status shows that auth let them through.
func TestRouteRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type route struct {
		method, path, body, ctype string
		operatorOnly              bool
	}
	routes := []route{
		{"GET", "/metrics", "", "", false},
		{"GET", "/api/kinds", "", "", false},
		{"GET", "/api/jobs/no-such-task", "", "", false},
		{"GET", "/api/customers/nobody@example.com", "", "", false},
		{"GET", "/api/imports/no-such-import", "", "", false},
		{"GET", "/monitor/api/queues", "", "", false},
		{"POST", "/api/jobs/customers:import", `{"import_id":"x","path":"relative"}`, "application/json", true},
		{"POST", "/api/imports", "", "text/csv", true},
	}
	passed := func(code int) bool { return code != http.StatusUnauthorized && code != http.StatusForbidden }
	for _, r := range routes {
		name := r.method + " " + r.path
		send := func(secret string, header ...string) *http.Response {
			header = append(header, "Content-Type", r.ctype)
			resp, _ := b.call(t, r.method, r.path, secret, strings.NewReader(r.body), header...)
			return resp
		}
		if resp := send(""); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a token = %d (WWW-Authenticate %q), want 401 with the header",
				name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if resp := send("wrong-secret-0123456789abcdef"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token = %d, want 401", name, resp.StatusCode)
		}
		if resp := send("", "Authorization", "Basic "+operatorSecret); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a Basic header = %d, want 401", name, resp.StatusCode)
		}
		viewer := send(viewerSecret)
		switch {
		case r.operatorOnly && viewer.StatusCode != http.StatusForbidden:
			t.Errorf("%s as a viewer = %d, want 403", name, viewer.StatusCode)
		case !r.operatorOnly && !passed(viewer.StatusCode):
			t.Errorf("%s as a viewer = %d, want it let through", name, viewer.StatusCode)
		}
		if resp := send(operatorSecret); !passed(resp.StatusCode) {
			t.Errorf("%s as an operator = %d, want it let through", name, resp.StatusCode)
		}
	}
}

func TestForbiddenNamesTokenAndRole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.callJSON(t, "POST", "/api/jobs/customers:import", viewerSecret, strings.NewReader(`{}`))
	if code != http.StatusForbidden {
		t.Fatalf("POST as viewer = %d, want 403", code)
	}
	if msg, _ := body["error"].(string); !strings.Contains(msg, `"watcher"`) || !strings.Contains(msg, "operator") {
		t.Errorf("403 error = %q, want it to name the token and the role needed", msg)
	}
	if need := body["need_role"]; need != "operator" {
		t.Errorf("403 need_role = %v, want operator", need)
	}
	// A refusal that no other token escapes names no role.
	code, body = b.callJSON(t, "POST", "/api/jobs/sms:inbound", operatorSecret, strings.NewReader(`{}`))
	if _, has := body["need_role"]; code != http.StatusForbidden || has {
		t.Errorf("POST an internal kind = %d %v, want 403 without need_role", code, body)
	}
}

func TestNoTokensRefusesEverything(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *web.Options) { o.Tokens = nil })
	if resp, _ := b.call(t, "GET", "/api/kinds", operatorSecret, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/kinds with no tokens configured = %d, want 401", resp.StatusCode)
	}
	if resp, _ := b.call(t, "GET", "/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with no tokens configured = %d, want 200", resp.StatusCode)
	}
}

// TestLogLineNamesTokenNotSecret checks the request log: the caller's token
// name is there, its secret never.
func TestLogLineNamesTokenNotSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.call(t, "GET", "/api/kinds", viewerSecret, nil)
	b.call(t, "GET", "/api/kinds", "wrong-secret-0123456789abcdef", nil)
	logs := b.logs.String()
	if !strings.Contains(logs, `"caller":"watcher"`) || !strings.Contains(logs, `"route":"GET /api/kinds"`) {
		t.Errorf("logs lack the token name or route:\n%s", logs)
	}
	for _, secret := range []string{viewerSecret, "wrong-secret-0123456789abcdef"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret:\n%s", logs)
		}
	}
}
