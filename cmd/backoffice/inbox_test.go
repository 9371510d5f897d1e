package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/inbox"
	"github.com/shopworks/backoffice/workers/redistest"
)

// inboxAt is when the entries of the inbox tests arrived.
var inboxAt = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// startInboxAPI is the real API with an inbox holding entries.
func startInboxAPI(t *testing.T, entries ...inbox.Entry) string {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	box := inbox.New(rdb, "bo:")
	for _, e := range entries {
		if _, err := box.Add(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	s, err := web.New(web.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Redis: rdb,
		Client: asynq.NewClientFromRedisClient(rdb), Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Customers: customers.New(rdb, "bo:", customers.Options{}), Inbox: box,
		Tokens: []config.Token{{Name: "ops", Role: config.RoleOperator, Secret: testOperator},
			{Name: "watcher", Role: config.RoleViewer, Secret: testViewer}},
		DataDir: t.TempDir(), Gatherer: reg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestInboxCommands(t *testing.T) {
	t.Parallel()
	url := startInboxAPI(t,
		inbox.Entry{ID: "sms:SM1", Kind: inbox.KindMessage, Channel: "sms", CustomerID: "anna", From: "+421905111111",
			Body: "Balík prišiel\tpoškodený", MediaURLs: []string{"https://api.twilio.com/m/1"}, At: inboxAt},
		inbox.Entry{ID: "sms-status:SM9", Kind: inbox.KindUnmatched, Channel: "sms", Reason: "unknown message sid",
			Detail: "delivered", At: inboxAt.Add(time.Minute)})

	r := runCLI(t, url, testViewer, "", "inbox")
	for _, want := range []string{
		`(?m)^Unanswered messages \(1 open\):$`,
		`(?m)^2026-03-01 09:00:00Z +sms:SM1 +anna +\+421905111111 +- +Balík prišiel poškodený \[1 media\]$`,
		`(?m)^Unmatched input \(1 open\):$`,
		`(?m)^2026-03-01 09:01:00Z +sms-status:SM9 +unknown message sid +- +delivered$`,
		`(?m)^  unmatched:unknown message sid +1$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("backoffice inbox output lacks %s:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	r = runCLI(t, url, testViewer, "", "--json", "inbox", "--kind", "unmatched")
	var v inboxAnswer
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || len(v.Unmatched) != 1 || len(v.Messages) != 0 {
		t.Errorf("backoffice --json inbox --kind unmatched = %d %q (%v)", r.code, r.stdout, err)
	}

	if r = runCLI(t, url, testViewer, "", "inbox", "resolve", "sms:SM1"); r.code != 1 || !strings.Contains(r.stderr, "operator") {
		t.Errorf("inbox resolve with a viewer token = %d %q, want refused", r.code, r.stderr)
	}
	r = runCLI(t, url, testOperator, "", "inbox", "resolve", "sms:SM1")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sms:SM1 resolved by ops at ") {
		t.Errorf("inbox resolve = %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r = runCLI(t, url, testViewer, "", "inbox"); !strings.Contains(r.stdout, "Unanswered messages (0 open)") {
		t.Errorf("after resolve, backoffice inbox =\n%s", r.stdout)
	}
	if r = runCLI(t, url, testOperator, "", "inbox", "resolve", "sms:nope"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("inbox resolve of an unknown id = %d %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"inbox", "extra"}, {"inbox", "resolve"}} {
		if r = runCLI(t, url, testViewer, "", args...); r.code != 2 {
			t.Errorf("backoffice %s = exit %d, want 2 (usage)", strings.Join(args, " "), r.code)
		}
	}
	for _, args := range [][]string{{"--kind", "spam"}, {"--limit", "0"}, {"--limit", "1001"}} {
		if r = runCLI(t, url, testViewer, "", append([]string{"inbox"}, args...)...); r.code != 2 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("inbox %s = %d %q, want a usage error (2) naming %s", strings.Join(args, " "), r.code, r.stderr, args[0])
		}
	}
}

// A customer's message is shown, never obeyed: escape sequences (clear the
// screen, set the window title) and bidirectional overrides in what a
// sender wrote reach the staff member's terminal as visible text.
func TestInboxShowsControlCharactersEscaped(t *testing.T) {
	t.Parallel()
	url := startInboxAPI(t,
		inbox.Entry{ID: "sms:SM1", Kind: inbox.KindMessage, Channel: "sms", CustomerID: "anna", From: "+421905111111",
			Body: "hi\x1b[2J\x1b]0;owned\x07 \u202egnp.exe\u009b", At: inboxAt},
		inbox.Entry{ID: "sms:SM2", Kind: inbox.KindUnmatched, Channel: "sms", Reason: "malformed number", From: "\x1b[31m+1",
			Detail: "phone number \"\\x1b\": bad\x08", At: inboxAt})

	r := runCLI(t, url, testViewer, "", "inbox")
	if r.code != 0 {
		t.Fatalf("backoffice inbox = %d %q", r.code, r.stderr)
	}
	for _, bad := range []string{"\x1b", "\x07", "\x08", "\u202e", "\u009b"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("backoffice inbox printed %q raw:\n%q", bad, r.stdout)
		}
	}
	for _, want := range []string{`hi\x1b[2J\x1b]0;owned\x07 \u202egnp.exe\u009b`, `\x1b[31m+1`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("backoffice inbox output lacks %s:\n%s", want, r.stdout)
		}
	}
}
