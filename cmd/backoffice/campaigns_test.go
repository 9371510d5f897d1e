package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"github.com/shopworks/backoffice/workers/redistest"
)

// cliSchedule has three campaigns that never fire on their own and a job
// that ticks every second into the bulk queue, which no test worker runs.
const cliSchedule = `timezone: Europe/Bratislava
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
  - name: sms-news
    cron: "0 10 * * *"
    channel: sms
    template: promo
    audience: {tags: [vip]}
    rate: 10/s
    quiet_hours: "21:00-08:00"
    enabled: false
jobs:
  - name: heartbeat
    cron: "@every 1s"
    kind: customers:import
    args: {import_id: "beat-{run}", path: /nonexistent/beat.csv}
    enabled: true
`

// campaignDaemon is the real API of a daemon with a campaign engine on
// real Redis sending through a real SMTP server (bounce@ is refused for
// good), the schedule file above run by a real schedules.Runner and, with
// workers, an asynq server for the campaign jobs.
type campaignDaemon struct {
	url       string
	engine    *campaigns.Engine
	inspector *asynq.Inspector
	smtp      *smtptest.Server
	runner    *schedules.Runner
	schedDir  string
}

// runnerReloads reports the runner's refused reloads, as the daemon does.
type runnerReloads struct{ *schedules.Runner }

func (r runnerReloads) RejectedReloads() []web.Rejected { return web.RejectedSchedules(r.Rejected()) }

func startCampaignDaemon(t *testing.T, withWorkers bool) *campaignDaemon {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	client := asynq.NewClientFromRedisClient(rdb)
	d := &campaignDaemon{inspector: asynq.NewInspectorFromRedisClient(rdb),
		smtp: smtptest.Start(t, smtptest.Options{Reject: func(rcpt string, _ int) *smtp.SMTPError {
			if strings.HasPrefix(rcpt, "bounce@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
			}
			return nil
		}})}
	store := customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"})
	for _, c := range []customers.Customer{
		{ID: "anna", Email: "anna@example.sk", Language: "sk", Tags: []string{"newsletter"}},
		{ID: "boris", Email: "boris@example.cz", Language: "cs", Tags: []string{"newsletter"}},
		{ID: "cyril", Email: "bounce@example.sk", Language: "en", Tags: []string{"newsletter"}},
		{ID: "dana", Email: "dana@example.sk", Language: "sk", Tags: []string{"newsletter"},
			Consent: map[customers.Channel]customers.Consent{customers.ChannelEmail: {Status: customers.OptedOut, At: time.Now(), Source: "test"}}},
		{ID: "eva", Email: "eva@example.sk", Phone: "+421905123456", Language: "sk", Tags: []string{"vip"}},
	} {
		if _, err := store.Upsert(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	tset, err := templates.Load(templates.Options{FallbackLanguage: "en", Shop: templates.ShopData{Name: "Shop", URL: "https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := email.NewPool(email.PoolOptions{URL: d.smtp.URL(), Size: 2, HELO: "test.local"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	if d.engine, err = campaigns.New(campaigns.Config{Redis: rdb, KeyPrefix: "bo:", Enqueuer: client, Customers: store,
		Templates: tset, Mail: pool, MailFrom: "Shop <news@shop.example>", ChunkSize: 2, PausePoll: time.Second,
		Unsubscribe: campaigns.Unsubscriber{Secret: []byte("0123456789abcdef0123456789abcdef"), PublicURL: "https://shop.example"},
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(cliSchedule), 0o644); err != nil {
		t.Fatal(err)
	}
	runner := schedules.NewRunner(schedules.RunnerOptions{Dir: dir, Options: schedules.Options{HasTemplate: tset.Has},
		Client: client, Redis: rdb, KeyPrefix: "bo:", Logger: slog.New(slog.DiscardHandler), Daemon: "test"})
	if err := runner.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Stop(t.Context()) })
	d.runner, d.schedDir = runner, dir
	reg := prometheus.NewRegistry()
	s, err := web.New(web.Options{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Redis: rdb, Client: client, Inspector: d.inspector,
		Customers: store, Campaigns: d.engine, Schedules: runner, Reloads: runnerReloads{runner},
		Tokens: []config.Token{
			{Name: "ops", Role: config.RoleOperator, Secret: testOperator},
			{Name: "watcher", Role: config.RoleViewer, Secret: testViewer},
		},
		DataDir: t.TempDir(), Gatherer: reg, Registerer: reg,
	})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	d.url = ts.URL
	if withWorkers {
		srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 4, LogLevel: asynq.FatalLevel,
			Queues: map[string]int{jobs.QueueDefault: 1, jobs.QueueCampaigns: 1}, IsFailure: workers.IsFailure,
			DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 50 * time.Millisecond,
			RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
				if _, ok := workers.RetryAfter(err); ok {
					return workers.RetryDelay(n, err, t)
				}
				return time.Minute // a failed test send stays in retry while the CLI looks
			}})
		mux := asynq.NewServeMux()
		workers.Register(mux, workers.Deps{Redis: rdb, KeyPrefix: "bo:", Client: client, Logger: slog.New(slog.DiscardHandler),
			Campaigns: d.engine, Customers: store})
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	return d
}

// waitFor runs the CLI until out matches re, for at most 10 seconds.
func waitFor(t *testing.T, what string, re *regexp.Regexp, cli func() cliResult) cliResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := cli()
		if re.MatchString(r.stdout) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s; last output %d:\n%s%s", what, r.code, r.stdout, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// matchAll reports every pattern out lacks.
func matchAll(t *testing.T, what, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Errorf("%s lacks %s:\n%s", what, p, out)
		}
	}
}

func TestCampaignCommands(t *testing.T) {
	t.Parallel()
	d := startCampaignDaemon(t, true)
	op := func(args ...string) cliResult { return runCLI(t, d.url, testOperator, "", args...) }
	view := func(args ...string) cliResult { return runCLI(t, d.url, testViewer, "", args...) }

	r := view("campaign", "list")
	matchAll(t, "campaign list", r.stdout,
		`(?m)^NAME +CHANNEL +TEMPLATE +CRON +ENABLED +LATEST RUN +STATE +STARTED +SENT +FAILED +TOTAL$`,
		`(?m)^spring-sale +email +promo +0 9 \* \* MON +no +- +- +- +- +- +-$`,
		`(?m)^vip-news +email +promo +0 9 1 \* \* +no +- +- +- +- +- +-$`)
	if r = view("campaign", "status", "spring-sale"); r.code != 0 ||
		r.stdout != "spring-sale has not run yet; launch it with: backoffice campaign run spring-sale\n" {
		t.Errorf("status of a campaign that never ran = %d %q %q", r.code, r.stdout, r.stderr)
	}

	r = op("campaign", "run", "spring-sale")
	m := regexp.MustCompile(`^launched spring-sale run (\S+)\nwatch it: backoffice campaign status spring-sale --run (\S+)\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] != m[2] {
		t.Fatalf("campaign run = %d %q %q", r.code, r.stdout, r.stderr)
	}
	run := m[1]
	r = waitFor(t, "run finished", regexp.MustCompile(`(?m)^STATE +finished$`), func() cliResult {
		return view("campaign", "status", "spring-sale", "--run", run)
	})
	matchAll(t, "campaign status", r.stdout,
		`(?m)^CAMPAIGN +spring-sale$`, `(?m)^RUN +`+regexp.QuoteMeta(run)+`$`, `(?m)^TRIGGER +manual$`,
		`(?m)^CHANNEL +email, template promo$`, `(?m)^STARTED +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`,
		`(?m)^FINISHED +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`, `(?m)^PLANNING +done$`, `(?m)^CHUNKS +2 of 2 done$`,
		`(?m)^SENT PER MINUTE +\d+$`, `(?m)^TOTAL +4$`, `(?m)^SENT +2 \(accepted by the mail server\)$`,
		`(?m)^FAILED +1$`, `(?m)^SKIPPED +1$`, `(?m)^PENDING +0 \(0 sending now\)$`)
	var st campaigns.RunStatus
	if r = view("--json", "campaign", "status", "spring-sale"); json.Unmarshal([]byte(r.stdout), &struct {
		Status *campaigns.RunStatus `json:"status"`
	}{&st}) != nil || st.Run != run || st.Counts.Sent != 2 {
		t.Errorf("--json campaign status = %d %q", r.code, r.stdout)
	}
	matchAll(t, "campaign list after a run", view("campaign", "list").stdout,
		`(?m)^spring-sale +email +promo +0 9 \* \* MON +no +`+regexp.QuoteMeta(run)+` +finished +\S+ \S+ +2 +1 +4$`)

	if r = op("campaign", "pause", "spring-sale"); r.code != 1 || !strings.HasPrefix(r.stderr, "backoffice: campaign pause spring-sale: campaign spring-sale run "+run+": cannot move from finished to paused") ||
		strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("pause of a finished run = %d %q", r.code, r.stderr)
	}
	r = op("campaign", "retry-failed", "spring-sale")
	m = regexp.MustCompile(`^retrying the failed recipients of spring-sale run (\S+) as run (\S+)\nwatch it: backoffice campaign status spring-sale --run (\S+)\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] != run || m[2] == run || m[2] != m[3] {
		t.Fatalf("campaign retry-failed = %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = waitFor(t, "retry finished", regexp.MustCompile(`(?m)^STATE +finished$`), func() cliResult {
		return view("campaign", "status", "spring-sale", "--run", m[2])
	})
	matchAll(t, "status of the retry run", r.stdout, `(?m)^TRIGGER +retry-failed of run `+regexp.QuoteMeta(run)+`$`, `(?m)^TOTAL +1$`, `(?m)^FAILED +1$`)

	r = op("campaign", "test", "spring-sale", "--to", "qa@shop.example", "--lang", "cs", "--customer", "anna")
	matchAll(t, "campaign test", r.stdout, `(?m)^SENT TO +qa@shop\.example$`, `(?m)^LANGUAGE +cs$`, `(?m)^REF +<test\.spring-sale\.\S+@shop\.example>$`,
		`(?m)^SUBJECT +\[TEST\] Jarní výprodej`, `(?m)^Dobrý den,$`, `JARO30`)
	if r.code != 0 || !strings.HasPrefix(r.stderr, "queued as task ") {
		t.Errorf("campaign test = %d, stderr %q", r.code, r.stderr)
	}
	if got := d.smtp.Messages(); len(got) == 0 || got[len(got)-1].To[0] != "qa@shop.example" {
		t.Errorf("the test message did not reach SMTP: %+v", got)
	}

	r = op("campaign", "dry-run", "spring-sale")
	if r.code != 0 {
		t.Fatalf("campaign dry-run = %d %q %q", r.code, r.stdout, r.stderr)
	}
	matchAll(t, "campaign dry-run", r.stdout, `(?m)^spring-sale: a launch now would send to 3 recipients \(about 1s at its rate\)$`,
		`(?m)^Skipped: opted_out 1$`, `(?m)^Languages: cs 1, en 1, sk 1$`, `(?m)^Samples:$`, `(?m)^  cs +Jarní výprodej`,
		`(?m)^Render failures: 0 of 3 rendered$`)
	r = op("campaign", "dry-run", "sms-news")
	matchAll(t, "campaign dry-run of an SMS campaign", r.stdout, `(?m)^sms-news: a launch now would send to 1 recipients`,
		`(?m)^SMS: \d+ segments in all, the longest message \d+$`, `(?m)^Encodings: (GSM-7|UCS-2) 1$`,
		`(?m)^  sample sk +(GSM-7|UCS-2), \d+ segments, \d+ characters$`)
	var job struct {
		State  string `json:"state"`
		Result struct {
			Recipients int64 `json:"recipients"`
		} `json:"result"`
	}
	if r = op("--json", "campaign", "dry-run", "spring-sale"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &job) != nil ||
		job.State != "completed" || job.Result.Recipients != 3 || r.stderr != "" {
		t.Errorf("--json campaign dry-run = %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = op("campaign", "dry-run", "spring-sale", "--wait", "0")
	if m := regexp.MustCompile(`^queued as task (\S+)\nits result: backoffice --json jobs show (\S+)\n$`).FindStringSubmatch(r.stdout); r.code != 0 || m == nil || m[1] != m[2] {
		t.Errorf("campaign dry-run --wait 0 = %d %q %q", r.code, r.stdout, r.stderr)
	}

	// A test send that fails shows the job's error at its first attempt.
	r = op("campaign", "test", "spring-sale", "--to", "qa@shop.example", "--customer", "nobody")
	if r.code != 1 || !regexp.MustCompile(`^backoffice: campaign test spring-sale: task \S+: attempt 1 of 4 failed, the queue retries it: `+
		`campaign spring-sale: test send: customer nobody: campaigns: no such customer\n$`).MatchString(r.lastErrLine()) {
		t.Errorf("campaign test of an unknown customer = %d %q", r.code, r.stderr)
	}

	failures := []struct {
		who     func(...string) cliResult
		args    []string
		wantErr string
	}{
		{view, []string{"campaign", "run", "spring-sale"}, `token "watcher" is a viewer; this needs an operator token`},
		{op, []string{"campaign", "status", "nope"}, `backoffice: campaign status nope: no campaign "nope" in the schedule files`},
		{op, []string{"campaign", "status", "vip-news", "--run", "r1"}, `backoffice: campaign status vip-news: campaign vip-news run r1: campaigns: no such run (a run launched a moment ago appears once its launch job starts)`},
		{op, []string{"campaign", "cancel", "vip-news"}, `backoffice: campaign cancel vip-news: campaign vip-news: campaigns: no such run (never launched)`},
		{op, []string{"campaign", "retry-failed", "vip-news", "--run", "a}b"}, `backoffice: campaign retry-failed vip-news: run: must be a run id (1-64 letters, digits, '.', '_' or '-'), got "a}b"`},
		{op, []string{"campaign", "test", "spring-sale", "--to", "+421905111111"}, `backoffice: campaign test spring-sale: field to: must be an e-mail address, got "+421905111111"`},
		{op, []string{"campaign", "pause", "spring-sale", "--reason", "two\nlines"}, `backoffice: campaign pause spring-sale: reason: must be one line of at most 200 characters`},
	}
	for _, f := range failures {
		r := f.who(f.args...)
		if r.code != 1 || !strings.Contains(r.stderr, f.wantErr) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("backoffice %s = exit %d, stderr %q; want exit 1, one line with %q", strings.Join(f.args, " "), r.code, r.stderr, f.wantErr)
		}
	}
}

// launchByHand runs the launch task of a run through the engine's handler,
// with no worker for its chunks: the run stays running.
func (d *campaignDaemon) launchByHand(t *testing.T, name, run string) {
	t.Helper()
	info, err := d.inspector.GetTaskInfo(jobs.QueueCampaigns, "campaign:"+name+":"+run+":launch")
	if err != nil {
		t.Fatal(err)
	}
	var a jobs.CampaignLaunchArgs
	if err := jobs.Unmarshal(asynq.NewTask(info.Type, info.Payload), &a); err != nil {
		t.Fatal(err)
	}
	if err := d.engine.HandleLaunch(t.Context(), a); err != nil {
		t.Fatal(err)
	}
}

func TestCampaignPauseResumeCancelCommands(t *testing.T) {
	t.Parallel()
	d := startCampaignDaemon(t, false)
	op := func(args ...string) cliResult { return runCLI(t, d.url, testOperator, "", args...) }
	r := op("campaign", "run", "spring-sale")
	m := regexp.MustCompile(`^launched spring-sale run (\S+)\n`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("campaign run = %d %q %q", r.code, r.stdout, r.stderr)
	}
	run := m[1]
	d.launchByHand(t, "spring-sale", run)

	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"pause", "spring-sale", "--reason", "checking the offer"}, 0, "spring-sale run " + run + " is paused: checking the offer (sent 0, failed 0, pending 3 of 4)\n"},
		{[]string{"pause", "spring-sale"}, 1, ""},
		{[]string{"resume", "spring-sale", "--run", run}, 0, "spring-sale run " + run + " is running (sent 0, failed 0, pending 3 of 4)\n"},
		{[]string{"resume", "spring-sale"}, 1, ""},
		{[]string{"cancel", "--run", run, "spring-sale", "--reason", "wrong prices"}, 0, "spring-sale run " + run + " is cancelled: wrong prices (sent 0, failed 0, pending 3 of 4)\n"},
		{[]string{"cancel", "spring-sale"}, 1, ""},
		{[]string{"resume", "spring-sale"}, 1, ""},
	}
	for _, s := range steps {
		r := op(append([]string{"campaign"}, s.args...)...)
		if r.code != s.code || r.stdout != s.out {
			t.Errorf("campaign %s = %d %q %q; want %d %q", strings.Join(s.args, " "), r.code, r.stdout, r.stderr, s.code, s.out)
		}
		if s.code == 1 && !strings.Contains(r.stderr, ": cannot move from ") {
			t.Errorf("campaign %s: stderr %q, want the refusal", strings.Join(s.args, " "), r.stderr)
		}
	}
	var st campaigns.RunStatus
	if r = op("--json", "campaign", "pause", "spring-sale"); r.code != 1 || r.stdout != "" {
		t.Errorf("--json pause of a cancelled run = %d %q", r.code, r.stdout)
	}
	r = runCLI(t, d.url, testViewer, "", "campaign", "status", "spring-sale", "--json")
	if json.Unmarshal([]byte(r.stdout), &struct {
		Status *campaigns.RunStatus `json:"status"`
	}{&st}) != nil || st.State != campaigns.StateCancelled || st.Reason != "wrong prices" {
		t.Errorf("status after cancel = %d %q", r.code, r.stdout)
	}

	// Without a worker the test job never runs: the wait ends and says
	// where to look.
	r = op("campaign", "test", "spring-sale", "--to", "qa@shop.example", "--wait", "1s")
	if r.code != 1 || !regexp.MustCompile(`^backoffice: campaign test spring-sale: task (\S+) not done within 1s; the job goes on: backoffice --json jobs show (\S+)\n$`).MatchString(r.lastErrLine()) {
		t.Errorf("campaign test --wait 1s without workers = %d %q", r.code, r.stderr)
	}
}

// lastErrLine is the last line of stderr with its newline: the error
// after the "queued as task" note.
func (r cliResult) lastErrLine() string {
	lines := strings.SplitAfter(strings.TrimSuffix(r.stderr, "\n"), "\n")
	return strings.TrimSuffix(lines[len(lines)-1], "\n") + "\n"
}

func TestSchedulesList(t *testing.T) {
	t.Parallel()
	d := startCampaignDaemon(t, false)
	r := waitFor(t, "heartbeat ran", regexp.MustCompile(`(?m)^heartbeat .* enqueued$`), func() cliResult {
		return runCLI(t, d.url, testViewer, "", "schedules", "list")
	})
	tick := `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET`
	matchAll(t, "schedules list", r.stdout,
		`(?m)^NAME +TYPE +TARGET +CRON +ENABLED +NEXT +LAST RUN +OUTCOME$`,
		`(?m)^spring-sale +campaign +email +0 9 \* \* MON +no +never \(disabled\) +- +-$`,
		`(?m)^vip-news +campaign +email +0 9 1 \* \* +no +never \(disabled\) +- +-$`,
		`(?m)^heartbeat +job +customers:import +@every 1s +yes +`+tick+` +`+tick+` +enqueued$`)
	var v struct {
		Entries []schedules.EntryView `json:"entries"`
	}
	if r = runCLI(t, d.url, testViewer, "", "--json", "schedules", "list"); json.Unmarshal([]byte(r.stdout), &v) != nil || len(v.Entries) != 4 {
		t.Errorf("--json schedules list = %d %q", r.code, r.stdout)
	}
	if r = runCLI(t, d.url, testViewer, "", "schedules", "list", "extra"); r.code != 2 || r.firstErr() != "backoffice: schedules list: takes no arguments" {
		t.Errorf("schedules list extra = %d %q", r.code, r.stderr)
	}
	if r = runCLI(t, d.url, "", "", "schedules", "list"); r.code != 1 || !strings.Contains(r.stderr, "no API token") {
		t.Errorf("schedules list without a token = %d %q", r.code, r.stderr)
	}

	// An edit the daemon refused: the list warns that it is not in force.
	broken := filepath.Join(d.schedDir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("timezone: Mars/Olympus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.runner.Reload(); err == nil {
		t.Fatal("Reload() of a broken file = nil error")
	}
	r = runCLI(t, d.url, testViewer, "", "schedules", "list")
	matchAll(t, "schedules list after a refused reload", r.stderr,
		`(?m)^warning: the schedule files on disk were rejected at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+; the ones loaded before stay in force until they are fixed:$`,
		`(?m)^  `+regexp.QuoteMeta(broken)+`:1: timezone: `)
	if r.code != 0 || !strings.Contains(r.stdout, "heartbeat") {
		t.Errorf("schedules list after a refused reload = %d %q, want the entries in force", r.code, r.stdout)
	}
}

func TestCampaignUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"campaign"}, "backoffice: campaign: which subcommand?"},
		{[]string{"campaign", "launch"}, "backoffice: campaign launch: unknown subcommand (want cancel, dry-run, list, pause, resume, retry-failed, run, status, test)"},
		{[]string{"campaign", "list", "x"}, "backoffice: campaign list: takes no arguments"},
		{[]string{"campaign", "status"}, "backoffice: campaign status: want one campaign NAME"},
		{[]string{"campaign", "run", "a", "b"}, "backoffice: campaign run: want one campaign NAME"},
		{[]string{"campaign", "status", "."}, `backoffice: campaign status: NAME "." is not a campaign name`},
		{[]string{"campaign", "status", ".", "--json"}, `backoffice: campaign status: NAME "." is not a campaign name`},
		{[]string{"campaign", "run", ".."}, `backoffice: campaign run: NAME ".." is not a campaign name`},
		{[]string{"campaign", "pause", "a/../b"}, `backoffice: campaign pause: NAME "a/../b" is not a campaign name (1-63 lower-case letters, digits or '-')`},
		{[]string{"campaign", "test", "Spring", "--to", "x@y.sk"}, `backoffice: campaign test: NAME "Spring" is not a campaign name (1-63 lower-case letters, digits or '-')`},
		{[]string{"campaign", "test", "a"}, "backoffice: campaign test: --to is required"},
		{[]string{"campaign", "test", "a", "--to", "x@y.sk", "--wait", "-1s"}, "backoffice: campaign test: --wait must not be negative"},
		{[]string{"campaign", "resume", "a", "--reason", "x"}, "flag provided but not defined: -reason"},
		{[]string{"campaign", "dry-run", "a", "--wait", "soon"}, `invalid value "soon" for flag -wait: parse error`},
	}
	for _, tt := range tests {
		r := runCLI(t, "http://127.0.0.1:1", "", "", tt.args...)
		if r.code != 2 || r.firstErr() != tt.wantErr {
			t.Errorf("backoffice %s = exit %d, stderr %q; want exit 2, %q", strings.Join(tt.args, " "), r.code, r.firstErr(), tt.wantErr)
		}
	}
	r := runCLI(t, "", "", "", "help")
	if r.code != 0 || !strings.Contains(r.stdout, "campaign dry-run NAME [--wait 10m]") || !strings.Contains(r.stdout, "schedules list") {
		t.Errorf("backoffice help = %d %q", r.code, r.stdout)
	}
}

// TestPrintDryRun prints a report as the daemon encodes it, with every
// part that only some reports have: SMS segments and render failures,
// more of them than listed inline, one with a terminal escape in the
// recipient id of a hostile audience file.
func TestPrintDryRun(t *testing.T) {
	t.Parallel()
	rep := campaigns.DryRunReport{Campaign: "pickup", Recipients: 1200, Skipped: map[string]int64{"no_address": 3, "opted_out": 12},
		Languages: map[string]int64{"sk": 1000, "cs": 200}, Rendered: 1200,
		Failures: []string{"recipient c7: template pickup-reminder (cs, sms): field .Extra.code: missing",
			"recipient \x1b]0;owned\x07x: template pickup-reminder (cs, sms): field .Extra.code: missing"}, FailuresTotal: 40,
		FailuresByError: map[string]int64{"cs: template pickup-reminder (cs, sms): field .Extra.code: missing": 40},
		FailuresFile:    "/var/lib/backoffice/dryruns/pickup-20261201T090000Z.tsv",
		Samples:         map[string]string{"sk": "Váš balík\nčaká na výdajnom mieste"},
		SMS: &campaigns.SMSReport{Encodings: map[string]int64{"GSM-7": 200, "UCS-2": 1000}, SegmentsTotal: 2200, SegmentsMax: 2,
			Samples: map[string]campaigns.SMSSample{"sk": {Encoding: "UCS-2", Segments: 2, Chars: 75}}},
		Estimated: jobs.Duration(2 * time.Minute)}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var r dryRunReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	printDryRun(&out, r)
	want := `pickup: a launch now would send to 1200 recipients (about 2m0s at its rate)
Skipped: no_address 3, opted_out 12
Languages: cs 200, sk 1000

SMS: 2200 segments in all, the longest message 2
Encodings: GSM-7 200, UCS-2 1000
  sample sk   UCS-2, 2 segments, 75 characters

Samples:
  sk   Váš balík čaká na výdajnom mieste

Render failures: 40 of 1200 rendered
      40  cs: template pickup-reminder (cs, sms): field .Extra.code: missing
First failures:
  recipient c7: template pickup-reminder (cs, sms): field .Extra.code: missing
  recipient �]0;owned�x: template pickup-reminder (cs, sms): field .Extra.code: missing
  ... 38 more in /var/lib/backoffice/dryruns/pickup-20261201T090000Z.tsv on the daemon
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("printDryRun (-want,+got):\n%s", diff)
	}
}

// TestPrintRunStatusCancelledWhilePlanning: a run cancelled before its
// launch task planned it (a cancel right after campaign run) is never
// planned; its status must not say the planning is in progress.
func TestPrintRunStatusCancelledWhilePlanning(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		state campaigns.State
		want  string
	}{
		{campaigns.StateRunning, "PLANNING         in progress: the audience is still being snapshotted\n"},
		{campaigns.StateCancelled, "PLANNING         stopped: the run was cancelled before all its audience was planned\n"},
	} {
		var out strings.Builder
		st := campaigns.RunStatus{Campaign: "news", Run: "r1", State: tt.state, Planning: true}
		if err := printRunStatus(&out, st); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("status of a %s run being planned lacks %q:\n%s", tt.state, tt.want, out.String())
		}
	}
}
