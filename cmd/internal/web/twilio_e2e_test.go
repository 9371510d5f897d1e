package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/inbox"
	"github.com/shopworks/backoffice/workers/redistest"
	"github.com/shopworks/backoffice/workers/sms"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// smsBundle is the SMS side of a daemon in miniature: the real web handler
// on a loopback port that is also its public URL, a real asynq server
// running the sms:* handlers on real Redis with the real customer store,
// inbox, templates and SMS outbox, and a campaign engine sending through a
// local Twilio whose status callbacks come back to the webhook.
type smsBundle struct {
	url       string // the web server, also BACKOFFICE_PUBLIC_URL
	token     string // the Twilio auth token the webhooks check
	rdb       redis.UniversalClient
	client    *asynq.Client
	customers *customers.Store
	inbox     *inbox.Store
	engine    *campaigns.Engine
	twilio    *twiliotest.Server
	outbox    string // the SMS outbox directory (HELP replies)
	inspector *asynq.Inspector
	templates *templates.Set
	deps      workers.Deps
}

func startSMS(t *testing.T) *smsBundle {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	b := &smsBundle{rdb: rdb, client: asynq.NewClientFromRedisClient(rdb), inspector: asynq.NewInspectorFromRedisClient(rdb),
		customers: customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"}), inbox: inbox.New(rdb, "bo:"),
		twilio: twiliotest.Start(t), outbox: t.TempDir()}
	b.token = b.twilio.AuthToken
	ts := httptest.NewUnstartedServer(nil)
	b.url = "http://" + ts.Listener.Addr().(*net.TCPAddr).String()
	var err error
	if b.templates, err = templates.Load(templates.Options{FallbackLanguage: "en",
		Shop: templates.ShopData{Name: "Obchod", SupportPhone: "+421233000000"}}); err != nil {
		t.Fatal(err)
	}
	tw, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: b.twilio.AccountSID, AuthToken: b.twilio.AuthToken,
		From: "+421233000000", APIURL: b.twilio.URL})
	if err != nil {
		t.Fatal(err)
	}
	if b.engine, err = campaigns.New(campaigns.Config{Redis: rdb, KeyPrefix: "bo:", Enqueuer: b.client, Customers: b.customers,
		Templates: b.templates, SMS: tw, SMSStatusCallback: b.url + statusPath, ChunkSize: 10}); err != nil {
		t.Fatal(err)
	}
	outbox, err := sms.NewOutbox(b.outbox)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), Redis: rdb, Client: b.client, Inspector: b.inspector,
		Customers: b.customers, Inbox: b.inbox, Tokens: testTokens(), DataDir: t.TempDir(), PublicURL: b.url,
		TwilioAuthToken: b.token, Gatherer: reg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	b.deps = workers.Deps{Redis: rdb, KeyPrefix: "bo:", Client: b.client, Logger: slog.New(slog.DiscardHandler),
		Campaigns: b.engine, Customers: b.customers, Inbox: b.inbox, SMS: outbox, Templates: b.templates}
	b.startWorkers(t, map[string]int{jobs.QueueCritical: 6, jobs.QueueDefault: 3})
	return b
}

// startWorkers runs an asynq server on queues, stopped in t.Cleanup.
func (b *smsBundle) startWorkers(t *testing.T, queues map[string]int) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{Concurrency: 4, Queues: queues, LogLevel: asynq.FatalLevel,
		IsFailure: workers.IsFailure, DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 0 }})
	mux := asynq.NewServeMux()
	workers.Register(mux, b.deps)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

// sid returns a MessageSid for test message n.
func sid(n int) string { return fmt.Sprintf("SM%032x", n) }

// text posts an incoming SMS to the webhook, signed as Twilio signs it,
// and checks the empty TwiML answer.
func (b *smsBundle) text(t *testing.T, msgSID, from, body string, extra ...string) url.Values {
	t.Helper()
	form := inboundForm(msgSID, from, body)
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	if code, answer := twiliotest.PostSigned(t, b.url+smsPath, b.token, form); code != http.StatusOK || answer != emptyTwiML {
		t.Fatalf("POST %s %q from %s = %d %q, want 200 and empty TwiML", smsPath, body, from, code, answer)
	}
	return form
}

// idle waits until the sms:* queues have nothing pending, running or to
// retry: every request answered so far has been processed.
func (b *smsBundle) idle(t *testing.T) {
	t.Helper()
	waitUntil(t, "sms queues empty", func() bool {
		for _, q := range []string{jobs.QueueCritical, jobs.QueueDefault} {
			info, err := b.inspector.GetQueueInfo(q)
			if err != nil {
				continue // a queue nothing was enqueued to yet
			}
			if info.Pending+info.Active+info.Retry+info.Scheduled > 0 {
				return false
			}
		}
		return true
	})
}

// events returns customer id's timeline events of kind with ref.
func (b *smsBundle) events(t *testing.T, id, kind, ref string) []customers.Event {
	t.Helper()
	all, err := b.customers.Timeline(t.Context(), id, 1000)
	if err != nil {
		t.Fatalf("timeline of %s: %v", id, err)
	}
	var out []customers.Event
	for _, e := range all {
		if e.Kind == kind && (ref == "" || e.Ref == ref) {
			out = append(out, e)
		}
	}
	return out
}

func (b *smsBundle) consent(t *testing.T, id string) customers.ConsentStatus {
	t.Helper()
	c, err := b.customers.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("customer %s: %v", id, err)
	}
	return c.Consent[customers.ChannelSMS].Status
}

// outboxLines returns the SMS written to the outbox.
func (b *smsBundle) outboxLines(t *testing.T) []sms.OutboxLine {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.outbox, sms.OutboxFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []sms.OutboxLine
	complete, _, _ := cutLast(string(raw), "\n") // a line being written has no newline yet
	for _, line := range strings.Split(complete, "\n") {
		if line == "" {
			continue
		}
		var l sms.OutboxLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("outbox line %q: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return "", s, false
}

// deleteTask removes a finished task, as asynq does when its retention
// ends: a webhook retried after that is enqueued again.
func (b *smsBundle) deleteTask(t *testing.T, queue, id string) {
	t.Helper()
	if err := b.inspector.DeleteTask(queue, id); err != nil {
		t.Fatalf("delete task %s: %v", id, err)
	}
}

func (b *smsBundle) upsert(t *testing.T, c customers.Customer) {
	t.Helper()
	if _, err := b.customers.Upsert(t.Context(), c); err != nil {
		t.Fatalf("upsert %s: %v", c.ID, err)
	}
}

// get reads path with the viewer token and returns the body of a 200.
func (b *smsBundle) get(t *testing.T, path string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+viewerSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, raw)
	}
	return string(raw)
}

// apiInbox reads GET /api/inbox with the viewer token.
func (b *smsBundle) apiInbox(t *testing.T) (messages, unmatched []inbox.Entry) {
	t.Helper()
	raw := b.get(t, "/api/inbox")
	var v struct {
		Messages  []inbox.Entry `json:"messages"`
		Unmatched []inbox.Entry `json:"unmatched"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("GET /api/inbox: %v: %s", err, raw)
	}
	return v.Messages, v.Unmatched
}

// waitUntil polls cond until it holds or 30s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func entryIDs(es []inbox.Entry) map[string]inbox.Entry {
	m := map[string]inbox.Entry{}
	for _, e := range es {
		m[e.ID] = e
	}
	return m
}

// launchPlanned plans a run of camp at once, leaving its chunks queued
// (no worker reads the campaigns queue until startWorkers is called).
func (b *smsBundle) launchPlanned(t *testing.T, ctx context.Context, camp jobs.Campaign, run string) {
	t.Helper()
	if err := b.engine.HandleLaunch(ctx, jobs.CampaignLaunchArgs{Campaign: camp, Run: run, Trigger: "manual"}); err != nil {
		t.Fatalf("launch %s/%s: %v", camp.Name, run, err)
	}
	st, err := b.engine.Status(ctx, camp.Name, run)
	if err != nil || st.Planning || st.Chunks == 0 || st.Counts.Pending == 0 {
		t.Fatalf("run %s/%s after launch: %+v, %v; want planned chunks, still pending", camp.Name, run, st, err)
	}
}

func (b *smsBundle) waitFinished(t *testing.T, campaign, run string) campaigns.RunStatus {
	t.Helper()
	var st campaigns.RunStatus
	waitUntil(t, "run "+campaign+"/"+run+" finished", func() bool {
		var err error
		st, err = b.engine.Status(t.Context(), campaign, run)
		return err == nil && st.State == campaigns.StateFinished
	})
	return st
}

func (b *smsBundle) entry(t *testing.T, campaign, run, recipient string) campaigns.Entry {
	t.Helper()
	e, err := b.engine.Store().Entry(t.Context(), campaign, run, recipient)
	if err != nil {
		t.Fatalf("ledger %s/%s %s: %v", campaign, run, recipient, err)
	}
	return e
}

// sentTo returns the SIDs of the messages the local Twilio accepted for to.
func (b *smsBundle) sentTo(to string) []string {
	var out []string
	for _, m := range b.twilio.Messages() {
		if m.To == to {
			out = append(out, m.SID)
		}
	}
	return out
}
