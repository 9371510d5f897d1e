package web_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/email/smtptest"
)

// campaignSchedule is the schedule file of the campaign tests: two
// campaigns that never fire on their own and a job that ticks every
// second (its tasks go to the bulk queue, which no test worker runs).
const campaignSchedule = `timezone: Europe/Bratislava
campaigns:
  - name: spring-sale
    cron: "0 9 * * MON"
    channel: email
    template: promo
    audience: {tags: [newsletter]}
    rate: 500/s
    enabled: false
  - name: vip-news
    cron: "0 9 1 * *"
    channel: email
    template: promo
    audience: {tags: [vip]}
    rate: 500/s
    enabled: false
jobs:
  - name: heartbeat
    cron: "@every 1s"
    kind: customers:import
    args: {import_id: "beat-{run}", path: /nonexistent/beat.csv}
    enabled: true
`

// campaignAPI is the API of a daemon in miniature: a campaign engine on
// real Redis sending through a real SMTP server (which refuses
// bounce@example.sk for good), the schedule files of a temp dir run by a
// real schedules.Runner and, with workers, an asynq server running the
// campaign jobs of the default and campaigns queues.
type campaignAPI struct {
	*bundle
	engine *campaigns.Engine
	smtp   *smtptest.Server
	runner *schedules.Runner
}

func startCampaignAPI(t *testing.T, withWorkers bool, moreSchedules ...string) *campaignAPI {
	t.Helper()
	c := &campaignAPI{smtp: smtptest.Start(t, smtptest.Options{Reject: func(rcpt string, _ int) *smtp.SMTPError {
		if strings.HasPrefix(rcpt, "bounce@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
		}
		return nil
	}})}
	tset, err := templates.Load(templates.Options{FallbackLanguage: "en", Shop: templates.ShopData{Name: "Shop", URL: "https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := email.NewPool(email.PoolOptions{URL: c.smtp.URL(), Size: 2, HELO: "test.local"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(campaignSchedule), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, more := range moreSchedules {
		if err := os.WriteFile(filepath.Join(dir, "more"+strconv.Itoa(i)+".yaml"), []byte(more), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var deps workers.Deps
	c.bundle = setup(t, func(o *web.Options) {
		if c.engine, err = campaigns.New(campaigns.Config{Redis: o.Redis, KeyPrefix: "bo:", Enqueuer: o.Client, Customers: o.Customers,
			Templates: tset, Mail: pool, MailFrom: "Shop <news@shop.example>", ChunkSize: 2, PausePoll: time.Second,
			Unsubscribe: campaigns.Unsubscriber{Secret: []byte("0123456789abcdef0123456789abcdef"), PublicURL: "https://shop.example"},
		}); err != nil {
			t.Fatal(err)
		}
		c.runner = schedules.NewRunner(schedules.RunnerOptions{Dir: dir, Options: schedules.Options{HasTemplate: tset.Has},
			Client: o.Client, Redis: o.Redis, KeyPrefix: "bo:", Logger: slog.New(slog.DiscardHandler), Daemon: "test"})
		if err := c.runner.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.runner.Stop(t.Context()) })
		o.Campaigns, o.Schedules = c.engine, c.runner
		deps = workers.Deps{Redis: o.Redis, KeyPrefix: "bo:", Client: o.Client, Logger: slog.New(slog.DiscardHandler),
			Campaigns: c.engine, Customers: o.Customers}
	})
	for _, cu := range []customers.Customer{
		{ID: "anna", Name: "Anna", Email: "anna@example.sk", Language: "sk", Tags: []string{"newsletter"}},
		{ID: "boris", Name: "Boris", Email: "boris@example.cz", Language: "cs", Tags: []string{"newsletter"}},
		{ID: "cyril", Name: "Cyril", Email: "bounce@example.sk", Language: "en", Tags: []string{"newsletter"}},
		{ID: "dana", Name: "Dana", Email: "dana@example.sk", Language: "sk", Tags: []string{"newsletter"},
			Consent: map[customers.Channel]customers.Consent{customers.ChannelEmail: {Status: customers.OptedOut, At: time.Now(), Source: "test"}}},
		{ID: "eva", Name: "Eva", Email: "eva@example.sk", Language: "sk", Tags: []string{"vip"}},
	} {
		if _, err := c.store.Upsert(t.Context(), cu); err != nil {
			t.Fatal(err)
		}
	}
	if withWorkers {
		srv := asynq.NewServerFromRedisClient(c.rdb, asynq.Config{Concurrency: 4, LogLevel: asynq.FatalLevel,
			Queues: map[string]int{jobs.QueueDefault: 1, jobs.QueueCampaigns: 1}, IsFailure: workers.IsFailure,
			DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 50 * time.Millisecond,
			RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
				if _, ok := workers.RetryAfter(err); ok {
					return workers.RetryDelay(n, err, t)
				}
				return 0
			}})
		mux := asynq.NewServeMux()
		workers.Register(mux, deps)
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	return c
}

// do sends a JSON request (body "" sends none) and decodes the answer.
func (c *campaignAPI) do(t *testing.T, method, path, secret, body string) (int, map[string]any) {
	t.Helper()
	return c.callJSON(t, method, path, secret, strings.NewReader(body), "Content-Type", "application/json")
}

// status reads the status of a run over the API.
func (c *campaignAPI) status(t *testing.T, name, run string) campaigns.RunStatus {
	t.Helper()
	st, ok := c.tryStatus(t, name, run)
	if !ok {
		t.Fatalf("GET status of %s/%s: no such run", name, run)
	}
	return st
}

// tryStatus reads the status of a run over the API; false while the run
// does not exist (its launch job has not started yet).
func (c *campaignAPI) tryStatus(t *testing.T, name, run string) (campaigns.RunStatus, bool) {
	t.Helper()
	resp, raw := c.call(t, http.MethodGet, "/api/campaigns/"+name+"?run="+url.QueryEscape(run), viewerSecret, nil)
	if resp.StatusCode == http.StatusNotFound && strings.Contains(string(raw), "no such run") {
		return campaigns.RunStatus{}, false
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET status of %s/%s = %d %s", name, run, resp.StatusCode, raw)
	}
	var v struct {
		Status *campaigns.RunStatus `json:"status"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Status == nil {
		t.Fatalf("status of %s/%s: %v: %s", name, run, err, raw)
	}
	return *v.Status, true
}

// waitState polls the API until the run exists and is in state.
func (c *campaignAPI) waitState(t *testing.T, name, run string, state campaigns.State) campaigns.RunStatus {
	t.Helper()
	var st campaigns.RunStatus
	eventually(t, name+"/"+run+" "+string(state), func() bool {
		var ok bool
		st, ok = c.tryStatus(t, name, run)
		return ok && st.State == state && !st.Planning
	})
	return st
}

// job polls GET /api/jobs/{id} until the task completed and returns it.
func (c *campaignAPI) job(t *testing.T, id string) map[string]any {
	t.Helper()
	var task map[string]any
	eventually(t, "task "+id+" completed", func() bool {
		code, m := c.callJSON(t, http.MethodGet, "/api/jobs/"+url.PathEscape(id), viewerSecret, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /api/jobs/%s = %d %v", id, code, m)
		}
		if m["state"] == "retry" || m["state"] == "archived" {
			t.Fatalf("task %s failed: %v", id, m)
		}
		task = m
		return m["state"] == "completed"
	})
	return task
}

func TestCampaignRoutesAuthAndConfiguration(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, false)
	for _, r := range []struct {
		method, path string
	}{
		{"GET", "/api/schedules"}, {"GET", "/api/campaigns"}, {"GET", "/api/campaigns/spring-sale"},
		{"GET", "/api/campaigns/spring-sale/runs"}, {"POST", "/api/campaigns/spring-sale/run"},
		{"POST", "/api/campaigns/spring-sale/test"}, {"POST", "/api/campaigns/spring-sale/dry-run"},
		{"POST", "/api/campaigns/spring-sale/pause"}, {"POST", "/api/campaigns/spring-sale/resume"},
		{"POST", "/api/campaigns/spring-sale/cancel"}, {"POST", "/api/campaigns/spring-sale/retry-failed"},
	} {
		if code, m := c.do(t, r.method, r.path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token = %d %v, want 401", r.method, r.path, code, m)
		}
		if r.method == http.MethodPost {
			if code, m := c.do(t, r.method, r.path, viewerSecret, ""); code != http.StatusForbidden ||
				!strings.Contains(m["error"].(string), "operator") {
				t.Errorf("%s %s with a viewer token = %d %v, want 403", r.method, r.path, code, m)
			}
		} else if code, m := c.do(t, r.method, r.path, viewerSecret, ""); code != http.StatusOK {
			t.Errorf("%s %s with a viewer token = %d %v, want 200", r.method, r.path, code, m)
		}
	}

	// A daemon without engine or scheduler answers 503, naming what is missing.
	bare := setup(t)
	for _, p := range []string{"/api/schedules", "/api/campaigns", "/api/campaigns/spring-sale"} {
		code, m := bare.callJSON(t, http.MethodGet, p, viewerSecret, nil)
		if code != http.StatusServiceUnavailable || !strings.Contains(m["error"].(string), "not configured") {
			t.Errorf("GET %s without engine and scheduler = %d %v, want 503", p, code, m)
		}
	}
	engineOnly := setup(t, func(o *web.Options) { o.Campaigns = c.engine })
	if code, m := engineOnly.callJSON(t, http.MethodPost, "/api/campaigns/spring-sale/run", operatorSecret, nil); code != http.StatusServiceUnavailable ||
		m["error"] != "schedules: not configured on this daemon" {
		t.Errorf("POST run without scheduler = %d %v, want 503", code, m)
	}
}

func TestCampaignRoutesRefuseBadRequests(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, false)
	tests := []struct {
		name, method, path, body string
		code                     int
		field, errPart           string
	}{
		{"unknown campaign", "GET", "/api/campaigns/nope", "", 404, "", `no campaign "nope" in the schedule files`},
		{"unknown campaign runs", "GET", "/api/campaigns/nope/runs", "", 404, "", `no campaign "nope"`},
		{"malformed name", "GET", "/api/campaigns/NOPE%7B", "", 404, "", `no campaign "NOPE{"`},
		{"launch unknown", "POST", "/api/campaigns/nope/run", "", 404, "", `no campaign "nope"`},
		{"test unknown", "POST", "/api/campaigns/nope/test", `{"to":"a@b.sk"}`, 404, "", `no campaign "nope"`},
		{"pause unknown", "POST", "/api/campaigns/nope/pause", "", 404, "", `no campaign "nope"`},
		{"never run: pause", "POST", "/api/campaigns/vip-news/pause", "", 404, "", "never launched"},
		{"never run: resume", "POST", "/api/campaigns/vip-news/resume", "", 404, "", "never launched"},
		{"never run: cancel", "POST", "/api/campaigns/vip-news/cancel", "", 404, "", "never launched"},
		{"never run: retry", "POST", "/api/campaigns/vip-news/retry-failed", "", 404, "", "never launched"},
		{"no such run", "GET", "/api/campaigns/vip-news?run=r1", "", 404, "", "no such run"},
		{"no such run: pause", "POST", "/api/campaigns/vip-news/pause?run=r1", "", 404, "", "no such run"},
		{"malformed run", "GET", "/api/campaigns/vip-news?run=a%7Db", "", 400, "run", "run: must be a run id"},
		{"malformed run: cancel", "POST", "/api/campaigns/vip-news/cancel?run=..", "", 400, "run", "run: must be a run id"},
		{"test without to", "POST", "/api/campaigns/spring-sale/test", `{}`, 400, "to", "field to:"},
		{"test to a phone", "POST", "/api/campaigns/spring-sale/test", `{"to":"+421905111111"}`, 400, "to", "must be an e-mail address"},
		{"test to of the wrong type", "POST", "/api/campaigns/spring-sale/test", `{"to":5}`, 400, "to", "field to: must be string"},
		{"test unknown field", "POST", "/api/campaigns/spring-sale/test", `{"to":"a@b.sk","campaign":{}}`, 400, "campaign", "unknown field"},
		{"test long language", "POST", "/api/campaigns/spring-sale/test", `{"to":"a@b.sk","language":"` + strings.Repeat("x", 17) + `"}`, 400, "language", "language code"},
		{"test not JSON", "POST", "/api/campaigns/spring-sale/test", `to=a@b.sk`, 400, "", "invalid JSON"},
		{"test trailing data", "POST", "/api/campaigns/spring-sale/test", `{"to":"a@b.sk"} {}`, 400, "", "trailing data"},
		{"test trailing brace", "POST", "/api/campaigns/spring-sale/test", `{"to":"a@b.sk"}}`, 400, "", "trailing data after the JSON body"},
		{"test trailing bracket", "POST", "/api/campaigns/spring-sale/test", `{"to":"a@b.sk"}]`, 400, "", "trailing data after the JSON body"},
		{"test trailing word", "POST", "/api/campaigns/spring-sale/test", "{\"to\":\"a@b.sk\"}\n x", 400, "", "trailing data after the JSON body"},
		{"pause trailing brace", "POST", "/api/campaigns/spring-sale/pause", `{"reason":"x"}}`, 400, "", "trailing data after the JSON body"},
		{"dry-run with args", "POST", "/api/campaigns/spring-sale/dry-run", `{"audience":{}}`, 400, "audience", "unknown field"},
		{"run with args", "POST", "/api/campaigns/spring-sale/run", `{"run":"mine"}`, 400, "run", "unknown field"},
		{"pause reason of two lines", "POST", "/api/campaigns/spring-sale/pause", `{"reason":"a\nb"}`, 400, "reason", "one line"},
		{"pause reason with a line separator", "POST", "/api/campaigns/spring-sale/pause", `{"reason":"a\u2028b"}`, 400, "reason", "one line"},
		{"pause reason with a paragraph separator", "POST", "/api/campaigns/spring-sale/pause", `{"reason":"a\u2029b"}`, 400, "reason", "one line"},
		{"cancel reason with a bidi override", "POST", "/api/campaigns/spring-sale/cancel", `{"reason":"a\u202eb"}`, 400, "reason", "one line"},
		{"pause reason too long", "POST", "/api/campaigns/spring-sale/pause", `{"reason":"` + strings.Repeat("é", 201) + `"}`, 400, "reason", "at most 200"},
		{"cancel reason not a string", "POST", "/api/campaigns/spring-sale/cancel", `{"reason":true}`, 400, "reason", "must be string"},
		{"resume with a reason", "POST", "/api/campaigns/spring-sale/resume", `{"reason":"x"}`, 400, "reason", "unknown field"},
	}
	for _, tt := range tests {
		code, m := c.do(t, tt.method, tt.path, operatorSecret, tt.body)
		msg, _ := m["error"].(string)
		field, _ := m["field"].(string)
		if code != tt.code || field != tt.field || !strings.Contains(msg, tt.errPart) {
			t.Errorf("%s: %s %s = %d %v; want %d, field %q, error containing %q", tt.name, tt.method, tt.path, code, m, tt.code, tt.field, tt.errPart)
		}
	}
	// Nothing was enqueued or recorded by the refused requests.
	if runs, err := c.engine.Store().Campaigns(t.Context()); err != nil || len(runs) != 0 {
		t.Errorf("campaigns with runs after refused requests = %v, %v", runs, err)
	}
	for _, q := range []string{jobs.QueueDefault, jobs.QueueCampaigns} {
		if info, err := c.inspector.GetQueueInfo(q); err == nil && info.Size > 0 {
			t.Errorf("queue %s holds %d tasks after refused requests", q, info.Size)
		}
	}
}

// launchByHand runs the launch task that POST .../run enqueued through the
// engine's handler, with no worker for the chunks: the run stays running.
func (c *campaignAPI) launchByHand(t *testing.T, name, run string) {
	t.Helper()
	id := "campaign:" + name + ":" + run + ":launch"
	info, err := c.inspector.GetTaskInfo(jobs.QueueCampaigns, id)
	if err != nil {
		t.Fatalf("launch task %s: %v", id, err)
	}
	var a jobs.CampaignLaunchArgs
	if err := jobs.Unmarshal(asynq.NewTask(info.Type, info.Payload), &a); err != nil {
		t.Fatal(err)
	}
	if a.Trigger != "manual" || a.Campaign.Name != name || a.Run != run {
		t.Fatalf("launch args = %+v", a)
	}
	if err := c.engine.HandleLaunch(t.Context(), a); err != nil {
		t.Fatalf("HandleLaunch: %v", err)
	}
}

func TestCampaignPauseResumeCancel(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, false)
	code, m := c.do(t, "POST", "/api/campaigns/spring-sale/run", operatorSecret, "")
	run, _ := m["run"].(string)
	if code != http.StatusAccepted || m["campaign"] != "spring-sale" || !jobs.ValidRun(run) ||
		m["status_url"] != "/api/campaigns/spring-sale?run="+run {
		t.Fatalf("POST run = %d %v", code, m)
	}
	c.launchByHand(t, "spring-sale", run)
	st := c.status(t, "spring-sale", run)
	if st.State != campaigns.StateRunning || st.Trigger != "manual" || st.Counts.Total != 4 || st.Counts.Pending != 3 ||
		st.Counts.Skipped != 1 || st.Chunks != 2 || st.ChunksDone != 0 || st.Planning {
		t.Fatalf("after launch: %+v", st)
	}

	// Each action answers the run's status after it; a repeated one is a 409.
	steps := []struct {
		path, body string
		code       int
		state      campaigns.State
		reason     string
	}{
		{"pause", `{"reason":"checking the offer"}`, 200, campaigns.StatePaused, "checking the offer"},
		{"pause", "", 409, "", ""},
		{"resume", "", 200, campaigns.StateRunning, ""},
		{"resume", "", 409, "", ""},
		{"pause", "", 200, campaigns.StatePaused, "paused by an operator"},
		{"cancel", `{"reason":"wrong prices"}`, 200, campaigns.StateCancelled, "wrong prices"},
		{"cancel", "", 409, "", ""},
		{"resume", "", 409, "", ""},
		{"pause", "", 409, "", ""},
	}
	for i, s := range steps {
		path := "/api/campaigns/spring-sale/" + s.path
		if i%2 == 1 {
			path += "?run=" + run // the latest run, named or not
		}
		code, m := c.do(t, "POST", path, operatorSecret, s.body)
		if code != s.code {
			t.Fatalf("step %d: POST %s = %d %v, want %d", i, path, code, m, s.code)
		}
		if code == http.StatusConflict {
			if !strings.Contains(m["error"].(string), "cannot move from") {
				t.Errorf("step %d: 409 says %q", i, m["error"])
			}
			continue
		}
		if m["run"] != run || m["state"] != string(s.state) || m["reason"] != orNil(s.reason) {
			t.Errorf("step %d: POST %s = %v; want run %s, state %s, reason %q", i, path, m, run, s.state, s.reason)
		}
	}
	// A cancelled run with nothing failed has nothing to retry.
	code, m = c.do(t, "POST", "/api/campaigns/spring-sale/retry-failed", operatorSecret, "")
	if code != http.StatusConflict || !strings.Contains(m["error"].(string), "no failed recipients") {
		t.Errorf("retry-failed of a cancelled run without failures = %d %v, want 409", code, m)
	}
	if st := c.status(t, "spring-sale", run); st.Counts.Sent != 0 || c.smtp.Count() != 0 {
		t.Errorf("a run with no worker sent %d (SMTP got %d)", st.Counts.Sent, c.smtp.Count())
	}
}

// orNil is what a JSON map holds for an omitempty string.
func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestCampaignRunToFinishAndRetryFailed(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, true)

	code, m := c.do(t, "GET", "/api/campaigns", viewerSecret, "")
	want := []any{
		map[string]any{"name": "spring-sale", "channel": "email", "template": "promo", "cron": "0 9 * * MON", "enabled": false,
			"file": c.runner.Current().Files[0], "line": float64(3), "latest": nil},
		map[string]any{"name": "vip-news", "channel": "email", "template": "promo", "cron": "0 9 1 * *", "enabled": false,
			"file": c.runner.Current().Files[0], "line": float64(10), "latest": nil},
	}
	if diff := cmp.Diff(want, m["campaigns"]); code != 200 || diff != "" {
		t.Errorf("GET /api/campaigns before any run = %d (-want,+got):\n%s", code, diff)
	}
	code, m = c.do(t, "GET", "/api/campaigns/vip-news", viewerSecret, "")
	if code != 200 || m["status"] != nil || m["entry"].(map[string]any)["name"] != "vip-news" {
		t.Errorf("GET a campaign that never ran = %d %v, want its entry and a null status", code, m)
	}
	if code, m = c.do(t, "GET", "/api/campaigns/vip-news/runs", viewerSecret, ""); code != 200 || len(m["runs"].([]any)) != 0 {
		t.Errorf("GET runs of a campaign that never ran = %d %v", code, m)
	}

	// A disabled entry launches on demand, and the run finishes.
	code, m = c.do(t, "POST", "/api/campaigns/spring-sale/run", operatorSecret, "")
	run, _ := m["run"].(string)
	if code != http.StatusAccepted || run == "" {
		t.Fatalf("POST run = %d %v", code, m)
	}
	st := c.waitState(t, "spring-sale", run, campaigns.StateFinished)
	wantCounts := campaigns.Counts{Total: 4, Sent: 2, Failed: 1, Skipped: 1}
	if st.Counts != wantCounts || st.ChunksDone != st.Chunks || st.Chunks != 2 || st.Finished.IsZero() || st.Definition.Name != "spring-sale" {
		t.Errorf("finished run: %+v, want counts %+v", st, wantCounts)
	}
	var to []string
	for _, msg := range c.smtp.Messages() {
		to = append(to, msg.To...)
	}
	if n := len(to); n != 2 || !strings.Contains(strings.Join(to, ","), "anna@example.sk") || !strings.Contains(strings.Join(to, ","), "boris@example.cz") {
		t.Errorf("SMTP received mail to %v, want anna and boris", to)
	}
	code, m = c.do(t, "GET", "/api/campaigns", viewerSecret, "")
	list := m["campaigns"].([]any)
	if latest, _ := list[0].(map[string]any)["latest"].(map[string]any); code != 200 || latest["run"] != run || latest["state"] != "finished" ||
		list[1].(map[string]any)["latest"] != nil {
		t.Errorf("GET /api/campaigns after the run = %d %v", code, m)
	}
	if code, m = c.do(t, "POST", "/api/campaigns/spring-sale/pause", operatorSecret, ""); code != http.StatusConflict ||
		!strings.Contains(m["error"].(string), "cannot move from finished to paused") {
		t.Errorf("pause of a finished run = %d %v, want 409", code, m)
	}

	// retry-failed makes a new run of the one failed recipient; asking again
	// names the same run.
	code, m = c.do(t, "POST", "/api/campaigns/spring-sale/retry-failed", operatorSecret, "")
	retry, _ := m["run"].(string)
	if code != http.StatusAccepted || retry == "" || retry == run || m["retry_of"] != run || m["campaign"] != "spring-sale" {
		t.Fatalf("POST retry-failed = %d %v", code, m)
	}
	rst := c.waitState(t, "spring-sale", retry, campaigns.StateFinished)
	if rst.Trigger != "retry-failed" || rst.RetryOf != run || rst.Counts != (campaigns.Counts{Total: 1, Failed: 1}) {
		t.Errorf("retry run: %+v", rst)
	}
	if code, m = c.do(t, "POST", "/api/campaigns/spring-sale/retry-failed?run="+run, operatorSecret, ""); code != http.StatusAccepted || m["run"] != retry {
		t.Errorf("second retry-failed of %s = %d %v, want the same run %s", run, code, m, retry)
	}
	if st := c.status(t, "spring-sale", run); st.RetriedBy != retry {
		t.Errorf("original run's retried_by = %q, want %q", st.RetriedBy, retry)
	}
	code, m = c.do(t, "GET", "/api/campaigns/spring-sale/runs", viewerSecret, "")
	var ids []any
	for _, r := range m["runs"].([]any) {
		ids = append(ids, r.(map[string]any)["run"])
	}
	if diff := cmp.Diff([]any{retry, run}, ids); code != 200 || diff != "" {
		t.Errorf("GET runs = %d, runs (-want,+got):\n%s", code, diff)
	}
	code, m = c.do(t, "GET", "/api/campaigns/spring-sale", viewerSecret, "")
	if code != 200 || m["status"].(map[string]any)["run"] != retry {
		t.Errorf("GET campaign without ?run = %d %v, want the latest run %s", code, m, retry)
	}

	// A run where everything went out has nothing to retry.
	code, m = c.do(t, "POST", "/api/campaigns/vip-news/run", operatorSecret, "")
	vip, _ := m["run"].(string)
	if code != http.StatusAccepted {
		t.Fatalf("POST vip-news/run = %d %v", code, m)
	}
	if st := c.waitState(t, "vip-news", vip, campaigns.StateFinished); st.Counts != (campaigns.Counts{Total: 1, Sent: 1}) {
		t.Errorf("vip-news run: %+v", st)
	}
	if code, m = c.do(t, "POST", "/api/campaigns/vip-news/retry-failed", operatorSecret, ""); code != http.StatusConflict ||
		!strings.Contains(m["error"].(string), "no failed recipients") {
		t.Errorf("retry-failed with nothing failed = %d %v, want 409", code, m)
	}
}

func TestCampaignRemovedFromFilesStaysVisible(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, false)
	old := jobs.Campaign{Name: "old-promo", Channel: jobs.ChannelEmail, Template: "promo", RatePerSecond: 10,
		Timezone: "Europe/Bratislava", Audience: jobs.Audience{Tags: []string{"vip"}}}
	if err := c.engine.HandleLaunch(t.Context(), jobs.CampaignLaunchArgs{Campaign: old, Run: "r1", Trigger: "manual"}); err != nil {
		t.Fatal(err)
	}
	code, m := c.do(t, "GET", "/api/campaigns/old-promo", viewerSecret, "")
	if st, _ := m["status"].(map[string]any); code != 200 || m["entry"] != nil || st["run"] != "r1" || st["state"] != "running" {
		t.Errorf("GET a campaign removed from the files = %d %v, want no entry and its run", code, m)
	}
	if code, m = c.do(t, "POST", "/api/campaigns/old-promo/cancel", operatorSecret, `{"reason":"entry deleted"}`); code != 200 || m["state"] != "cancelled" {
		t.Errorf("cancel of a run of a removed campaign = %d %v", code, m)
	}
	for _, action := range []string{"run", "test", "dry-run"} {
		if code, m = c.do(t, "POST", "/api/campaigns/old-promo/"+action, operatorSecret, `{"to":"a@b.sk"}`); code != 404 {
			t.Errorf("POST %s of a removed campaign = %d %v, want 404: its definition is gone", action, code, m)
		}
	}
}

func TestCampaignTestAndDryRunJobs(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, true)
	code, m := c.do(t, "POST", "/api/campaigns/spring-sale/test", operatorSecret, `{"to":" qa@shop.example ","language":"cs","customer_id":"anna"}`)
	id, _ := m["task_id"].(string)
	if code != http.StatusAccepted || id == "" || m["kind"] != jobs.KindCampaignTest {
		t.Fatalf("POST test = %d %v", code, m)
	}
	task := c.job(t, id)
	var args jobs.CampaignTestArgs
	raw, _ := json.Marshal(task["payload"])
	if err := json.Unmarshal(raw, &args); err != nil || args.To != "qa@shop.example" || args.CustomerID != "anna" || args.Campaign.Name != "spring-sale" {
		t.Errorf("test task payload = %s (%v)", raw, err)
	}
	var res campaigns.TestResult
	raw, _ = json.Marshal(task["result"])
	if err := json.Unmarshal(raw, &res); err != nil || res.To != "qa@shop.example" || res.Language != "cs" ||
		!strings.HasPrefix(res.Subject, "[TEST] Jarní výprodej") || res.Ref == "" || !strings.Contains(res.Body, "JARO30") {
		t.Errorf("test task result = %s (%v)", raw, err)
	}
	msgs := c.smtp.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "qa@shop.example" {
		t.Errorf("SMTP received %d messages, want one to qa@shop.example: %+v", len(msgs), msgs)
	}

	code, m = c.do(t, "POST", "/api/campaigns/spring-sale/dry-run", operatorSecret, "")
	id, _ = m["task_id"].(string)
	if code != http.StatusAccepted || id == "" || m["kind"] != jobs.KindCampaignDryRun {
		t.Fatalf("POST dry-run = %d %v", code, m)
	}
	var rep struct {
		Campaign   string           `json:"campaign"`
		Recipients int64            `json:"recipients"`
		Skipped    map[string]int64 `json:"skipped"`
		Languages  map[string]int64 `json:"languages"`
		Failures   []string         `json:"failures"`
	}
	raw, _ = json.Marshal(c.job(t, id)["result"])
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Campaign != "spring-sale" || rep.Recipients != 3 ||
		!cmp.Equal(rep.Skipped, map[string]int64{campaigns.ReasonOptedOut: 1}) ||
		!cmp.Equal(rep.Languages, map[string]int64{"sk": 1, "cs": 1, "en": 1}) || len(rep.Failures) != 0 {
		t.Errorf("dry-run result = %s (%v)", raw, err)
	}
	if n := len(c.smtp.Messages()); n != 1 {
		t.Errorf("a dry run sent mail: SMTP has %d messages", n)
	}
}

func TestSchedulesRoute(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, false)
	var entries []schedules.EntryView
	eventually(t, "heartbeat has a recorded run", func() bool {
		resp, raw := c.call(t, http.MethodGet, "/api/schedules", viewerSecret, nil)
		var v struct {
			Entries []schedules.EntryView `json:"entries"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(raw, &v) != nil {
			t.Fatalf("GET /api/schedules = %d %s", resp.StatusCode, raw)
		}
		entries = v.Entries
		return len(entries) == 3 && len(entries[2].LastRuns) > 0
	})
	var names []string
	for _, e := range entries {
		names = append(names, e.Type+":"+e.Name)
	}
	if diff := cmp.Diff([]string{"campaign:spring-sale", "campaign:vip-news", "job:heartbeat"}, names); diff != "" {
		t.Errorf("entries (-want,+got):\n%s", diff)
	}
	beat := entries[2]
	if beat.Target != "customers:import" || !beat.Enabled || len(beat.Next) != 3 || !beat.Next[0].After(time.Now().Add(-time.Second)) ||
		beat.LastRuns[0].Outcome != schedules.OutcomeEnqueued || len(beat.LastRuns) > 5 {
		t.Errorf("heartbeat entry = %+v", beat)
	}
	if sale := entries[0]; sale.Enabled || len(sale.Next) != 0 || sale.Campaign == nil || sale.Campaign.Template != "promo" ||
		sale.Zone != "Europe/Bratislava" || len(sale.LastRuns) != 0 {
		t.Errorf("spring-sale entry = %+v", sale)
	}
}

// TestTestSendSMSToALocalNumber: an SMS test goes to a number written as
// customers' numbers may be (0903 123 456, read in the phone region), sent
// in E.164; a string that is no number is refused naming the field.
func TestTestSendSMSToALocalNumber(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, false, `timezone: Europe/Bratislava
campaigns:
  - name: sms-news
    cron: "0 9 * * MON"
    channel: sms
    template: promo
    audience: {tags: [newsletter]}
    rate: 10/s
    enabled: false
`)
	code, m := c.do(t, "POST", "/api/campaigns/sms-news/test", operatorSecret, `{"to":"0903 123 456"}`)
	id, _ := m["task_id"].(string)
	if code != http.StatusAccepted || id == "" {
		t.Fatalf("POST sms-news/test to a local number = %d %v, want 202", code, m)
	}
	info, err := c.inspector.GetTaskInfo(jobs.QueueDefault, id)
	if err != nil {
		t.Fatal(err)
	}
	var args jobs.CampaignTestArgs
	if err := json.Unmarshal(info.Payload, &args); err != nil || args.To != "+421903123456" {
		t.Errorf("the test task's to = %q (%v), want +421903123456", args.To, err)
	}
	code, m = c.do(t, "POST", "/api/campaigns/sms-news/test", operatorSecret, `{"to":"call me"}`)
	if msg, _ := m["error"].(string); code != http.StatusBadRequest || m["field"] != "to" || !strings.Contains(msg, `"call me"`) {
		t.Errorf("POST sms-news/test to %q = %d %v, want 400 naming to", "call me", code, m)
	}
}

// TestRunCancelledBeforePlanning: a run cancelled before its launch job
// planned it says so on the dashboard, instead of "planning" for good.
func TestRunCancelledBeforePlanning(t *testing.T) {
	t.Parallel()
	c := startCampaignAPI(t, false) // no workers: the launch job never runs
	code, m := c.do(t, "POST", "/api/campaigns/vip-news/run", operatorSecret, "")
	if code != http.StatusAccepted {
		t.Fatalf("POST vip-news/run = %d %v", code, m)
	}
	if code, m = c.do(t, "POST", "/api/campaigns/vip-news/cancel", operatorSecret, `{"reason":"launched by mistake"}`); code != http.StatusOK {
		t.Fatalf("POST vip-news/cancel = %d %v", code, m)
	}
	resp, body := c.call(t, "GET", "/", viewerSecret, nil)
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<td data-col="planning">stopped</td>`) ||
		!strings.Contains(page, "cancelled before planning") {
		t.Errorf("dashboard after a cancel before planning = %d, want planning stopped:\n%s", resp.StatusCode, page)
	}
}
