package web_test

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/email/smtptest"
)

// chromium is the Debian package `chromium`; `make test` installs it.
const chromium = "/usr/bin/chromium"

// newBrowser starts a headless Chromium with a fresh profile, stopped when
// the test ends, and returns a context for its actions bounded to a minute.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found (Debian package chromium; make test installs it): %v", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser; no timeout on this call
		t.Fatalf("start chromium: %v", err)
	}
	stepCtx, cancelSteps := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelSteps)
	return stepCtx
}

// TestDashboardInBrowser logs in through the form in Chromium, reads the
// queues and recent imports tables, and keeps a screenshot.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for range 3 {
		ids = append(ids, b.uploadSample(t, "/api/imports"))
	}
	done := customers.ImportRequest{ImportID: ids[0], Path: filepath.Join(b.dataDir, "imports", ids[0]+".csv")}
	if _, err := b.store.Import(t.Context(), done); err != nil {
		t.Fatalf("run import %s: %v", ids[0], err)
	}
	if err := b.inspector.ArchiveTask(jobs.QueueBulk, "customers:import:"+ids[2]); err != nil { // never to run
		t.Fatalf("archive the task of import %s: %v", ids[2], err)
	}
	ctx := newBrowser(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(b.ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token-0123456789"),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if err != nil {
		t.Fatalf("login with a wrong token: %v", err)
	}
	if msg := run(t, ctx, chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, "not valid") {
		t.Errorf("login error = %q, want it to say the token is not valid", msg)
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), operatorSecret),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("queues")),
	)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if title := run(t, ctx, chromedp.Title()); title != "Back office" {
		t.Errorf("page title = %q, want Back office", title)
	}
	queues := run(t, ctx, chromedp.Text(chromedp.ID("queues")))
	for _, q := range []string{"critical", "default", "campaigns", "bulk"} {
		if !strings.Contains(queues, q) {
			t.Errorf("queues table lacks queue %s:\n%s", q, queues)
		}
	}
	imports := run(t, ctx, chromedp.Text(chromedp.ID("imports")))
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(ids[0] + `\s+finished\s+2\s+1\s+0\s+1\s`), // rows, imported, updated, rejected
		regexp.MustCompile(ids[1] + `\s+queued\s+not started`),
		regexp.MustCompile(ids[2] + `\s+archived\s+not started`),
	} {
		if !want.MatchString(imports) {
			t.Errorf("recent imports table lacks %s:\n%s", want, imports)
		}
	}

	// No scheduler and no campaign engine here: the sections say so.
	for id, want := range map[string]string{"campaigns-note": "not configured", "schedules-note": "not configured"} {
		if got := run(t, ctx, chromedp.Text(chromedp.ID(id))); !strings.Contains(got, want) {
			t.Errorf("#%s = %q, want it to say %q", id, got, want)
		}
	}
	screenshot(t, ctx, "dashboard")

	if err := chromedp.Do(ctx, chromedp.Navigate(b.ts.URL+"/monitor/"), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if title := run(t, ctx, chromedp.Title()); !strings.Contains(strings.ToLower(title), "asynq") {
		t.Errorf("monitor page title = %q, want asynqmon's", title)
	}

	// Sign out: a copy of the cookie taken before is refused after.
	if err := chromedp.Do(ctx, chromedp.Navigate(b.ts.URL+"/"), chromedp.WaitVisible(chromedp.ID("queues"))); err != nil {
		t.Fatalf("back to the dashboard: %v", err)
	}
	copied := run(t, ctx, sessionCookieValue)
	if resp, _ := b.call(t, "GET", "/api/kinds", "", nil, "Cookie", "bo_session="+copied); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/kinds with the browser's cookie = %d, want 200", resp.StatusCode)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if resp, _ := b.call(t, "GET", "/api/kinds", "", nil, "Cookie", "bo_session="+copied); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/kinds with a copy of the cookie after signing out = %d, want 401", resp.StatusCode)
	}
}

// sessionCookieValue reads the browser's session cookie (HttpOnly: the
// page's scripts cannot).
func sessionCookieValue(ctx context.Context, target *chromedp.Target) (string, error) {
	res, err := cdp.Call(ctx, target, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		return "", err
	}
	for _, c := range res.Cookies {
		if c.Name == "bo_session" {
			return c.Value, nil
		}
	}
	return "", errors.New("the browser has no bo_session cookie")
}

// run runs one browser action that returns a value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// screenshot saves a full-page screenshot as name.png in the test's temp
// dir, and in $BACKOFFICE_KEEP_SCREENSHOTS (a directory) when set, for a
// person to look at; it logs where.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shot := run(t, ctx, chromedp.FullScreenshot(100))
	if len(shot) < 8 || string(shot[1:4]) != "PNG" {
		t.Errorf("screenshot %s is not a PNG (%d bytes)", name, len(shot))
	}
	dirs := []string{t.TempDir()}
	if keep := os.Getenv("BACKOFFICE_KEEP_SCREENSHOTS"); keep != "" {
		dirs = append(dirs, keep)
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, shot, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
}

// signIn opens the dashboard in the browser and signs in with secret.
func signIn(t *testing.T, ctx context.Context, baseURL, secret string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(baseURL+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), secret),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("queues")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
}

// dashboardSchedules is the schedule file of the campaign tests; %[1]s is
// an absolute path for the jobs' import files.
const dashboardSchedules = `timezone: Europe/Bratislava
campaigns:
  - name: spring-sale
    cron: "0 9 * * MON"
    channel: email
    template: promo
    audience: {tags: [newsletter]}
    rate: 50/s
    max_error_ratio: 0.5
    enabled: true
  - name: bounce-check
    cron: "CRON_TZ=UTC 0 10 * * *"
    channel: email
    template: promo
    audience: {tags: [bounce]}
    rate: 50/s
    max_error_ratio: 0.2
    enabled: true
  - name: flash-sale
    cron: "30 8 1 * *"
    channel: email
    template: promo
    audience: {tags: [flash]}
    rate: 10/s
    enabled: false
  - name: autumn-sale
    cron: "0 10 1 9 *"
    channel: sms
    template: promo
    audience: {tags: [newsletter]}
    rate: 5/s
    quiet_hours: "21:00-08:00"
    enabled: false
jobs:
  - name: heartbeat
    cron: "@every 1s"
    kind: customers:import
    args: {import_id: "beat-{run}", path: %[1]s}
    enabled: true
  - name: nightly-import
    cron: "CRON_TZ=UTC 0 2 * * *"
    kind: customers:import
    args: {import_id: "nightly-{run}", path: %[1]s}
    enabled: false
`

// dashBundle is a web server with a real campaign engine sending
// e-mail to a local SMTP server (which refuses every address starting
// with "bad"), and a real scheduler on a schedule directory.
type dashBundle struct {
	*bundle
	engine *campaigns.Engine
	sets   web.Schedules
	smtp   *smtptest.Server
	now    time.Time // the engine's clock, fixed: sends per minute do not drift
}

// scheduleSource builds what a server reads its schedules from: the
// schedule directory, checked against tmpl, on the server's Redis.
type scheduleSource func(t *testing.T, dir string, tmpl *templates.Set, o *web.Options) web.Schedules

// setupDashboard builds a dashBundle whose schedules come from sf.
func setupDashboard(t *testing.T, sf scheduleSource) *dashBundle {
	t.Helper()
	cb := &dashBundle{now: time.Now().UTC().Truncate(time.Second)}
	cb.smtp = smtptest.Start(t, smtptest.Options{Reject: func(rcpt string, _ int) *smtp.SMTPError {
		if strings.HasPrefix(rcpt, "bad") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	pool, err := email.NewPool(email.PoolOptions{URL: cb.smtp.URL(), Size: 2, HELO: "test.local"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	tmpl, err := templates.Load(templates.Options{FallbackLanguage: "en", Shop: templates.ShopData{Name: "Shop", URL: "https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := fmt.Sprintf(dashboardSchedules, filepath.Join(dir, "import.csv"))
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cb.bundle = setup(t, func(o *web.Options) {
		var err error
		cb.engine, err = campaigns.New(campaigns.Config{Redis: o.Redis, KeyPrefix: "bo:", Enqueuer: o.Client,
			Customers: o.Customers, Templates: tmpl, Mail: pool, MailFrom: "Shop <news@shop.example>",
			Unsubscribe: campaigns.Unsubscriber{Secret: []byte(dashUnsubscribeSecret), PublicURL: "https://shop.example"},
			MinAttempts: 4, Now: func() time.Time { return cb.now }})
		if err != nil {
			t.Fatal(err)
		}
		cb.sets = sf(t, dir, tmpl, o)
		o.Campaigns, o.Schedules = cb.engine, cb.sets
	})
	return cb
}

// dashUnsubscribeSecret signs the unsubscribe links of the campaign tests.
const dashUnsubscribeSecret = "dashboard-unsubscribe-secret-0123456789"

// startScheduler starts a real scheduler on dir, stopped when the test ends.
func startScheduler(t *testing.T, dir string, tmpl *templates.Set, o *web.Options) web.Schedules {
	r := schedules.NewRunner(schedules.RunnerOptions{Dir: dir, Options: schedules.Options{HasTemplate: tmpl.Has},
		Client: o.Client, Redis: o.Redis, KeyPrefix: "bo:", Logger: slog.New(slog.DiscardHandler), Daemon: "test"})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	return r
}

// loadedSet serves a schedule directory loaded once, with its last runs
// read from Redis by schedules.View: the scheduler's reading side without
// its cron.
type loadedSet struct {
	set *schedules.Set
	rdb redis.UniversalClient
}

func (l loadedSet) Current() *schedules.Set { return l.set }

func (l loadedSet) View(ctx context.Context, next, runs int) ([]schedules.EntryView, error) {
	return schedules.View(ctx, l.set, l.rdb, "bo:", time.Now(), next, runs)
}

// loadSchedules loads dir once (no cron, so no ticks).
func loadSchedules(t *testing.T, dir string, tmpl *templates.Set, o *web.Options) web.Schedules {
	set, err := schedules.Load(dir, schedules.Options{HasTemplate: tmpl.Has})
	if err != nil {
		t.Fatal(err)
	}
	return loadedSet{set: set, rdb: o.Redis}
}

// customer stores one customer of the campaign tests.
func (cb *dashBundle) customer(t *testing.T, id, addr string, tags ...string) customers.Customer {
	t.Helper()
	c := customers.Customer{ID: id, Name: "Customer " + id, Email: addr, Language: "sk", Tags: tags}
	if _, err := cb.store.Upsert(t.Context(), c); err != nil {
		t.Fatalf("Upsert(%s): %v", id, err)
	}
	return c
}

// launch plans a new run of c at once, as the campaign:launch job does.
func (cb *dashBundle) launch(t *testing.T, c jobs.Campaign) campaigns.RunStatus {
	t.Helper()
	run := campaigns.NewRunID(cb.now)
	if err := cb.engine.HandleLaunch(t.Context(), jobs.CampaignLaunchArgs{Campaign: c, Run: run, Trigger: "manual"}); err != nil {
		t.Fatalf("launch %s/%s: %v", c.Name, run, err)
	}
	return cb.status(t, c.Name, run)
}

// entry returns the definition of the campaign entry name in the files.
func (cb *dashBundle) entry(t *testing.T, name string) jobs.Campaign {
	t.Helper()
	e, ok := cb.sets.Current().Campaign(name)
	if !ok {
		t.Fatalf("no campaign entry %s", name)
	}
	return e.Campaign
}

// sendChunks runs each chunk of a run once, as the campaign:chunk jobs
// would, and returns what each returned.
func (cb *dashBundle) sendChunks(t *testing.T, campaign, run string) []error {
	t.Helper()
	var errs []error
	for n := range cb.status(t, campaign, run).Chunks {
		errs = append(errs, cb.engine.HandleChunk(t.Context(), jobs.CampaignChunkArgs{Campaign: campaign, Run: run, Chunk: n}))
	}
	return errs
}

func (cb *dashBundle) status(t *testing.T, campaign, run string) campaigns.RunStatus {
	t.Helper()
	st, err := cb.engine.Status(t.Context(), campaign, run)
	if err != nil {
		t.Fatalf("Status(%s, %s): %v", campaign, run, err)
	}
	return st
}

// hostileReason is an operator's cancel reason that would run script if
// the page did not escape it.
const hostileReason = `<img src=x onerror="document.title='pwned'"> stop & "check"`

// runCampaigns gives the campaigns of dashboardSchedules their runs:
// spring-sale finished (5 sent, 1 failed, 1 opted out), bounce-check paused
// by max_error_ratio, flash-sale cancelled with hostileReason, old-promo
// (in no file any more) finished with no recipients; autumn-sale never ran.
// It returns the status of each run by campaign.
func (cb *dashBundle) runCampaigns(t *testing.T) map[string]campaigns.RunStatus {
	t.Helper()
	ctx := t.Context()
	for i := 1; i <= 5; i++ {
		cb.customer(t, fmt.Sprintf("n%02d", i), fmt.Sprintf("n%02d@example.sk", i), "newsletter")
	}
	cb.customer(t, "n06", "bad-n06@example.sk", "newsletter")
	out := cb.customer(t, "n07", "n07@example.sk", "newsletter")
	out.Consent = map[customers.Channel]customers.Consent{customers.ChannelEmail: {Status: customers.OptedOut, At: cb.now, Source: "test"}}
	if _, err := cb.store.Upsert(ctx, out); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		addr := fmt.Sprintf("bad%02d@example.sk", i)
		if i <= 2 {
			addr = fmt.Sprintf("ok%02d@example.sk", i)
		}
		cb.customer(t, fmt.Sprintf("b%02d", i), addr, "bounce")
	}
	for i := 1; i <= 3; i++ {
		cb.customer(t, fmt.Sprintf("f%02d", i), fmt.Sprintf("f%02d@example.sk", i), "flash")
	}

	runs := map[string]campaigns.RunStatus{}
	spring := cb.launch(t, cb.entry(t, "spring-sale")).Run
	for n, err := range cb.sendChunks(t, "spring-sale", spring) {
		if err != nil {
			t.Fatalf("spring-sale chunk %d: %v", n, err)
		}
	}
	runs["spring-sale"] = cb.status(t, "spring-sale", spring)
	if st := runs["spring-sale"]; st.State != campaigns.StateFinished || st.Counts.Sent != 5 || st.Counts.Failed != 1 || st.Counts.Skipped != 1 {
		t.Fatalf("spring-sale after sending: %+v, want finished with 5 sent, 1 failed, 1 skipped", st)
	}
	if n := cb.smtp.Count(); n != 5 {
		t.Fatalf("the SMTP server accepted %d messages, want 5", n)
	}

	bounce := cb.launch(t, cb.entry(t, "bounce-check")).Run
	var hold *campaigns.HoldError
	for n, err := range cb.sendChunks(t, "bounce-check", bounce) {
		if !errors.As(err, &hold) {
			t.Fatalf("bounce-check chunk %d = %v, want a hold after the run paused", n, err)
		}
	}
	runs["bounce-check"] = cb.status(t, "bounce-check", bounce)
	if st := runs["bounce-check"]; st.State != campaigns.StatePaused || !strings.Contains(st.Reason, "max_error_ratio") || st.Counts.Pending == 0 {
		t.Fatalf("bounce-check: %+v, want paused by max_error_ratio with recipients left", st)
	}

	flash := cb.launch(t, cb.entry(t, "flash-sale")).Run
	if err := cb.engine.Cancel(ctx, "flash-sale", flash, hostileReason); err != nil {
		t.Fatal(err)
	}
	runs["flash-sale"] = cb.status(t, "flash-sale", flash)

	old := cb.entry(t, "flash-sale")
	old.Name, old.Audience = "old-promo", jobs.Audience{Tags: []string{"nobody"}}
	runs["old-promo"] = cb.launch(t, old)
	if st := runs["old-promo"]; st.State != campaigns.StateFinished || st.Counts.Total != 0 {
		t.Fatalf("old-promo: %+v, want finished at once with no recipients", st)
	}
	return runs
}

// tableCells reads every row of the campaigns and schedules tables: row id
// -> data-col -> the text of that cell (or part of one) as shown,
// whitespace collapsed.
const tableCells = `Object.fromEntries([...document.querySelectorAll('#campaigns tbody tr, #schedules tbody tr')].map(tr =>
  [tr.id, Object.fromEntries([...tr.querySelectorAll('[data-col]')].map(td => [td.dataset.col, td.innerText.replace(/\s+/g, ' ').trim()]))]))`

// rowClasses reads the class attribute of every row of the campaigns table.
const rowClasses = `Object.fromEntries([...document.querySelectorAll('#campaigns tbody tr')].map(tr => [tr.id, tr.className]))`

// TestDashboardCampaignsAndSchedules runs campaigns with the real engine
// and a real scheduler, then reads their rows in Chromium: the state and
// counts of each latest run, a paused run standing out, schedule entries
// with cron, zone, next tick and the ticks the scheduler recorded.
func TestDashboardCampaignsAndSchedules(t *testing.T) {
	t.Parallel()
	cb := setupDashboard(t, startScheduler)
	runs := cb.runCampaigns(t)
	sched := cb.sets.(*schedules.Runner)
	var views []schedules.EntryView
	eventually(t, "the scheduler recorded two heartbeat ticks", func() bool {
		var err error
		views, err = sched.View(t.Context(), 1, 3)
		return err == nil && len(views) == 6 && len(views[4].LastRuns) >= 2
	})
	sched.Stop(t.Context()) // no more ticks: the page shows what views shows
	if views, _ = sched.View(t.Context(), 1, 3); len(views) != 6 {
		t.Fatalf("View() = %d entries, want 6", len(views))
	}

	ctx := newBrowser(t)
	signIn(t, ctx, cb.ts.URL, viewerSecret)
	cells := run(t, ctx, chromedp.Evaluate[map[string]map[string]string](tableCells))
	classes := run(t, ctx, chromedp.Evaluate[map[string]string](rowClasses))

	count := func(n int64) string { return strconv.FormatInt(n, 10) }
	for name, st := range runs {
		row := cells["campaign-"+name]
		c := st.Counts
		want := map[string]string{"state": string(st.State) + " " + st.Reason, "planning": "no",
			"total": count(c.Total), "sent": count(c.Sent), "delivered": count(c.Delivered), "undelivered": count(c.Undelivered),
			"failed": count(c.Failed), "skipped": count(c.Skipped), "rate": count(st.SentPerMinute)}
		got := map[string]string{}
		for k := range want {
			got[k] = row[k]
		}
		want["state"] = strings.TrimSpace(want["state"])
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("campaign row %s (-want,+got):\n%s\nrow: %v", name, diff, row)
		}
		if !strings.HasPrefix(row["run"], st.Run+" manual started "+st.Started.UTC().Format(time.DateTime)) {
			t.Errorf("campaign row %s: run cell %q, want run %s and its start", name, row["run"], st.Run)
		}
	}
	for name, want := range map[string]map[string]*regexp.Regexp{
		"spring-sale": {"name": regexp.MustCompile(`^spring-sale$`), "enabled": regexp.MustCompile(`^enabled$`), "channel": regexp.MustCompile(`^email$`),
			"next": regexp.MustCompile(`^next \d{4}-\d\d-\d\d 09:00 CES?T in \d`), "progress": regexp.MustCompile(`^100% 7 of 7 chunks 1/1$`),
			"run": regexp.MustCompile(`ended \d{4}`)},
		"bounce-check": {"next": regexp.MustCompile(`^next \d{4}-\d\d-\d\d 10:00 UTC in \d`),
			"progress": regexp.MustCompile(`^\d+% \d of 8 chunks 0/1$`)},
		"flash-sale":  {"enabled": regexp.MustCompile(`^disabled$`), "next": regexp.MustCompile(`^$`), "progress": regexp.MustCompile(`^0% 0 of 3`)},
		"old-promo":   {"files": regexp.MustCompile(`^not in the schedule files$`), "progress": regexp.MustCompile(`^no recipients$`)},
		"autumn-sale": {"channel": regexp.MustCompile(`^sms$`), "enabled": regexp.MustCompile(`^disabled$`), "run": regexp.MustCompile(`^never run$`)},
	} {
		for col, re := range want {
			if got := cells["campaign-"+name][col]; !re.MatchString(got) {
				t.Errorf("campaign row %s, %s = %q, want /%s/", name, col, got, re)
			}
		}
	}
	if got := classes["campaign-bounce-check"]; got != "run-paused" {
		t.Errorf("paused run's row class = %q, want run-paused", got)
	}
	for _, name := range []string{"spring-sale", "flash-sale", "old-promo", "autumn-sale"} {
		if strings.Contains(classes["campaign-"+name], "paused") {
			t.Errorf("row %s has class %q; only the paused run stands out", name, classes["campaign-"+name])
		}
	}
	wantAttention := "Campaign bounce-check: run " + runs["bounce-check"].Run + " is paused (" + runs["bounce-check"].Reason + ")."
	if got := run(t, ctx, chromedp.Text(chromedp.ID("attention"))); !strings.Contains(got, wantAttention) {
		t.Errorf("#attention = %q, want it to list %q", got, wantAttention)
	}

	// Schedules: every entry, campaigns first, with the runs the scheduler recorded.
	for _, v := range views {
		row := cells["schedule-"+v.Name]
		want := map[string]string{"type": v.Type, "target": v.Target, "cron": v.Cron, "zone": v.Zone, "enabled": map[bool]string{true: "yes", false: "no"}[v.Enabled]}
		got := map[string]string{}
		for k := range want {
			got[k] = row[k]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("schedule row %s (-want,+got):\n%s", v.Name, diff)
		}
		if want := fmt.Sprintf("shop.yaml:%d", v.Line); row["name"] != v.Name || row["where"] != want {
			t.Errorf("schedule row %s: name %q at %q, want %s at %s", v.Name, row["name"], row["where"], v.Name, want)
		}
		for _, r := range v.LastRuns {
			if !strings.Contains(row["runs"], r.Outcome+" ") || !strings.Contains(row["runs"], r.TaskID) {
				t.Errorf("schedule row %s: last runs %q lack %s %s", v.Name, row["runs"], r.Outcome, r.TaskID)
			}
		}
	}
	beat := cells["schedule-heartbeat"]
	if !regexp.MustCompile(`^enqueued \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? CES?T \((\d+s ago|now)\) schedule:heartbeat:`).MatchString(beat["runs"]) || beat["next"] == "" {
		t.Errorf("heartbeat row = %v, want its last ticks enqueued and a next tick", beat)
	}
	if night := cells["schedule-nightly-import"]; night["runs"] != "none recorded" || night["next"] != "– (disabled)" {
		t.Errorf("nightly-import row = %v, want no runs and no next tick", night)
	}

	// The cancel reason is text, not markup; nothing secret is on the page.
	if title := run(t, ctx, chromedp.Title()); title != "Back office" {
		t.Errorf("page title = %q: the cancel reason ran as script", title)
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img').length`)); n != 0 {
		t.Errorf("%d img elements on the page: the cancel reason was not escaped", n)
	}
	html := run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	for _, secret := range []string{viewerSecret, operatorSecret, dashUnsubscribeSecret} {
		if strings.Contains(html, secret) {
			t.Errorf("the page shows a secret (%.6s...)", secret)
		}
	}
	// Both tables fit a 1280px window: nothing to scroll sideways.
	for _, id := range []string{"campaigns", "schedules"} {
		width := run(t, ctx, chromedp.Evaluate[[]int](`(t => [t.scrollWidth, t.parentElement.clientWidth])(document.getElementById('`+id+`'))`))
		t.Logf("#%s is %dpx wide in %dpx", id, width[0], width[1])
		if width[0] > width[1] {
			t.Errorf("#%s is %dpx wide, its box %dpx: it scrolls sideways in a 1280px window", id, width[0], width[1])
		}
	}
	screenshot(t, ctx, "dashboard-campaigns")
}

// TestDashboardWithoutRedis checks that the page still answers when Redis
// is gone: a problem banner, the schedule entries from the files, and
// campaign rows that say their run could not be read.
func TestDashboardWithoutRedis(t *testing.T) {
	t.Parallel()
	cb := setupDashboard(t, loadSchedules)
	cb.runCampaigns(t)
	cb.redis.Stop()
	start := time.Now()
	resp, body := cb.call(t, "GET", "/", viewerSecret, nil)
	t.Logf("GET / without Redis answered in %s", time.Since(start).Round(time.Millisecond))
	page := string(body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / without Redis = %d, want 200: %s", resp.StatusCode, page)
	}
	for _, want := range []string{
		`id="problem"`, "Redis is not answering", `id="queues-note"`,
		`id="schedule-heartbeat"`, "@every 1s", "not read", `id="campaign-spring-sale"`, "latest run could not be read",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page without Redis lacks %q", want)
		}
	}
}

// TestDashboardFlagsTicksThatFailed runs a scheduler whose enqueues fail
// (its asynq client is closed) and checks that the page lists the failed
// ticks on top and in the entry's row, with no campaign engine configured.
func TestDashboardFlagsTicksThatFailed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := fmt.Sprintf(dashboardSchedules, filepath.Join(dir, "import.csv"))
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl, err := templates.Load(templates.Options{FallbackLanguage: "en"})
	if err != nil {
		t.Fatal(err)
	}
	var sched *schedules.Runner
	b := setup(t, func(o *web.Options) {
		broken := redis.NewClient(&redis.Options{Addr: o.Redis.(*redis.Client).Options().Addr})
		_ = broken.Close()
		o.Client = asynq.NewClientFromRedisClient(broken) // what the scheduler enqueues with
		sched = startScheduler(t, dir, tmpl, o).(*schedules.Runner)
		o.Schedules = sched
	})
	var last schedules.Run
	eventually(t, "the scheduler recorded a failed heartbeat tick", func() bool {
		runs, err := schedules.LastRuns(t.Context(), b.rdb, "bo:", "heartbeat", 1)
		if err != nil || len(runs) == 0 {
			return false
		}
		last = runs[0]
		return true
	})
	sched.Stop(t.Context())
	if runs, _ := schedules.LastRuns(t.Context(), b.rdb, "bo:", "heartbeat", 1); len(runs) == 1 {
		last = runs[0]
	}
	if last.Outcome != schedules.OutcomeError {
		t.Fatalf("heartbeat tick = %+v, want an error outcome", last)
	}

	resp, body := b.call(t, "GET", "/", viewerSecret, nil)
	page := string(body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d: %s", resp.StatusCode, page)
	}
	tick := last.Tick.UTC().Format(time.DateTime)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?s)id="attention".*Schedule heartbeat: the tick of \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? CES?T could not be enqueued \(` + regexp.QuoteMeta(template.HTMLEscapeString(last.Message)) + `\)`),
		regexp.MustCompile(`(?s)id="schedule-heartbeat".*class="outcome outcome-error">error</span>.*` + regexp.QuoteMeta(last.TaskID)),
		regexp.MustCompile(`id="campaigns-note">The campaign engine is not configured`),
		regexp.MustCompile(`(?s)id="campaign-spring-sale".*<td data-col="run" colspan="12" class="muted">–</td>`),
	} {
		if !want.MatchString(page) {
			t.Errorf("page lacks /%s/ (tick %s UTC)", want, tick)
		}
	}
}
