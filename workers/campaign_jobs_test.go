package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"github.com/shopworks/backoffice/workers/redistest"
	"github.com/shopworks/backoffice/workers/sms"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// campaignBundle is a daemon in miniature: a real asynq server running the
// campaign handlers on real Redis, a real SMTP server and a local Twilio.
type campaignBundle struct {
	rdb       redis.UniversalClient
	customers *customers.Store
	templates *templates.Set
	engine    *campaigns.Engine
	smtp      *smtptest.Server
	twilio    *twiliotest.Server
	inspector *asynq.Inspector
}

type campaignOptions struct {
	rdb    redis.UniversalClient // nil: a fresh redis-server
	reject func(rcpt string, attempt int) *smtp.SMTPError
	twilio twiliotest.Options
	now    func() time.Time
	adjust func(*campaigns.Config)
}

func startCampaigns(t *testing.T, o campaignOptions) *campaignBundle {
	t.Helper()
	rdb := o.rdb
	if rdb == nil {
		rdb = redistest.Start(t).Client(t)
	}
	set, err := templates.Load(templates.Options{FallbackLanguage: "en", Shop: templates.ShopData{Name: "Shop", URL: "https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	b := &campaignBundle{rdb: rdb, templates: set, inspector: asynq.NewInspectorFromRedisClient(rdb)}
	b.customers = customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"})
	b.smtp = smtptest.Start(t, smtptest.Options{Reject: o.reject})
	pool, err := email.NewPool(email.PoolOptions{URL: b.smtp.URL(), Size: 4, HELO: "test.local"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	b.twilio = twiliotest.Start(t, o.twilio)
	tw, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: b.twilio.AccountSID, AuthToken: b.twilio.AuthToken, From: "+421900000000", APIURL: b.twilio.URL})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rdb)
	cfg := campaigns.Config{
		Redis: rdb, KeyPrefix: "bo:", Enqueuer: client, Customers: b.customers, Templates: set, Mail: pool, SMS: tw,
		Unsubscribe: campaigns.Unsubscriber{Secret: []byte("0123456789abcdef0123456789abcdef"), PublicURL: "https://shop.example"},
		MailFrom:    "Shop <news@shop.example>", ChunkSize: 4, PausePoll: time.Second, Now: o.now,
	}
	if o.adjust != nil {
		o.adjust(&cfg)
	}
	if b.engine, err = campaigns.New(cfg); err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 4, Queues: jobs.Queues(), LogLevel: asynq.FatalLevel, IsFailure: IsFailure,
		// holds wait as asked; ordinary failures retry at once instead of
		// backing off for seconds
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if _, ok := RetryAfter(err); ok {
				return RetryDelay(n, err, t)
			}
			return 0
		},
		DelayedTaskCheckInterval: 100 * time.Millisecond,
	})
	mux := asynq.NewServeMux()
	Register(mux, Deps{Redis: rdb, KeyPrefix: "bo:", Client: client, Logger: slog.New(slog.DiscardHandler), Campaigns: b.engine})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return b
}

// waitRun polls a run's status until done says so.
func (b *campaignBundle) waitRun(t *testing.T, campaign, run string, done func(campaigns.RunStatus) bool) campaigns.RunStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var st campaigns.RunStatus
	var err error
	for time.Now().Before(deadline) {
		st, err = b.engine.Status(context.Background(), campaign, run)
		if err == nil && done(st) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run %s/%s: condition not met within 60s: %+v %v", campaign, run, st, err)
	return st
}

func finished(st campaigns.RunStatus) bool { return st.State == campaigns.StateFinished }

// chunkRetries returns how often each chunk task of a run was retried as a
// failure (holds do not count).
func (b *campaignBundle) chunkRetries(t *testing.T, campaign, run string, chunks int) []int {
	t.Helper()
	out := make([]int, chunks)
	for n := range chunks {
		id := jobs.CampaignChunkArgs{Campaign: campaign, Run: run, Chunk: n}.TaskID()
		ti, err := b.inspector.GetTaskInfo(jobs.QueueCampaigns, id)
		if err != nil {
			t.Fatalf("task %s: %v", id, err)
		}
		out[n] = ti.Retried
	}
	return out
}

func TestCampaignEmailEndToEnd(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"single", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			o := campaignOptions{reject: func(rcpt string, attempt int) *smtp.SMTPError {
				switch {
				case strings.HasPrefix(rcpt, "c05@") && attempt <= 2:
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
				case strings.HasPrefix(rcpt, "c11@"):
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
				}
				return nil
			}}
			if mode == "cluster" {
				c := redistest.StartCluster(t, 3)
				rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
				t.Cleanup(func() { _ = rdb.Close() })
				o.rdb = rdb
			}
			b := startCampaigns(t, o)
			ctx := t.Context()
			langs := []string{"sk", "cs", "pl", "en"}
			var want []string
			for i := range 18 {
				c := customers.Customer{ID: fmt.Sprintf("c%02d", i), Name: fmt.Sprintf("Zákazník %d", i), Email: fmt.Sprintf("c%02d@example.sk", i),
					Language: langs[i%4], Tags: []string{"newsletter"}}
				if i == 7 {
					c.Consent = map[customers.Channel]customers.Consent{customers.ChannelEmail: {Status: customers.OptedOut, At: time.Now(), Source: "test"}}
				} else if i != 11 {
					want = append(want, c.Email)
				}
				if _, err := b.customers.Upsert(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			camp := jobs.Campaign{Name: "winter", Channel: jobs.ChannelEmail, Template: "promo", RatePerSecond: 500,
				Timezone: "Europe/Bratislava", Audience: jobs.Audience{Tags: []string{"newsletter"}}}
			run, err := b.engine.Launch(ctx, camp, "", "manual")
			if err != nil {
				t.Fatal(err)
			}
			st := b.waitRun(t, "winter", run, finished)
			if c := st.Counts; c.Sent != 16 || c.Failed != 1 || c.Skipped != 1 || c.Pending != 0 {
				t.Errorf("counts = %+v", c)
			}
			var got []string
			for _, m := range b.smtp.Messages() {
				got = append(got, m.To[0])
				var i int
				fmt.Sscanf(m.To[0], "c%02d@", &i)
				lang := langs[i%4]
				want, err := b.templates.RenderEmail("promo", lang, templates.Data{})
				if err != nil {
					t.Fatal(err)
				}
				var dec mime.WordDecoder
				if subject, err := dec.DecodeHeader(m.Header.Get("Subject")); err != nil || subject != want.Subject {
					t.Errorf("message to %s: subject %q, want the %s one %q", m.To[0], subject, lang, want.Subject)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("recipients, each exactly once (-want +got):\n%s", diff)
			}
			e, err := b.engine.Store().Entry(ctx, "winter", run, "c11")
			if err != nil || e.State != campaigns.EntryFailed || e.Code() != "550 5.1.1" || !strings.Contains(e.Text(), "mailbox unavailable") {
				t.Errorf("c11 = %+v, %v; want failed 550 5.1.1", e, err)
			}
			r := b.chunkRetries(t, "winter", run, st.Chunks)
			sort.Ints(r)
			// The two 451s are retried inside the chunk: no chunk spends
			// its retry budget.
			if !cmp.Equal(r, []int{0, 0, 0, 0, 0}) {
				t.Errorf("chunk retries = %v, want none: transient replies are retried in-process", r)
			}
		})
	}
}

func TestCampaignPauseResumeSpendsNoRetries(t *testing.T) {
	t.Parallel()
	b := startCampaigns(t, campaignOptions{adjust: func(c *campaigns.Config) { c.MaxRateWait = time.Millisecond }})
	ctx := t.Context()
	for i := range 8 {
		c := customers.Customer{ID: fmt.Sprintf("p%d", i), Email: fmt.Sprintf("p%d@example.sk", i), Language: "sk", Tags: []string{"n"}}
		if _, err := b.customers.Upsert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// 2 a second with a burst of 2, and chunks do not wait in process:
	// they are held in the queue between sends
	camp := jobs.Campaign{Name: "slow", Channel: jobs.ChannelEmail, Template: "promo", RatePerSecond: 2,
		Timezone: "Europe/Bratislava", Audience: jobs.Audience{Tags: []string{"n"}}}
	run, err := b.engine.Launch(ctx, camp, "", "manual")
	if err != nil {
		t.Fatal(err)
	}
	b.waitRun(t, "slow", run, func(st campaigns.RunStatus) bool { return st.Counts.Sent >= 2 })
	if err := b.engine.Pause(ctx, "slow", run, "operator"); err != nil {
		t.Fatal(err)
	}
	paused := b.waitRun(t, "slow", run, func(st campaigns.RunStatus) bool { return st.Counts.Sending == 0 })
	if err := b.engine.Resume(ctx, "slow", run); err != nil {
		t.Fatal(err)
	}
	st := b.waitRun(t, "slow", run, finished)
	if st.Counts.Sent != 8 || b.smtp.Count() != 8 || paused.Counts.Sent == 8 {
		t.Errorf("sent %d (server %d), %d when paused; want 8 each once, paused midway", st.Counts.Sent, b.smtp.Count(), paused.Counts.Sent)
	}
	if r := b.chunkRetries(t, "slow", run, st.Chunks); !cmp.Equal(r, []int{0, 0}) {
		t.Errorf("chunk retries = %v: holds for the rate limit and the pause spent retry budget", r)
	}
}

// offsetClock runs from start at the speed of the real clock.
type offsetClock struct {
	mu    sync.Mutex
	start time.Time
	real  time.Time
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(time.Since(c.real))
}

func TestCampaignSMSQuietHoursAndTwilioFaults(t *testing.T) {
	t.Parallel()
	ba, _ := time.LoadLocation("Europe/Bratislava")
	// three seconds before the quiet hours end
	clock := &offsetClock{start: time.Date(2026, 11, 24, 7, 59, 57, 0, ba), real: time.Now()}
	var mu sync.Mutex
	calls := 0
	b := startCampaigns(t, campaignOptions{now: clock.Now, twilio: twiliotest.Options{Fail: func(n int, _ string) (int, int, string) {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 2 {
			return 429, 20429, "1"
		}
		if calls == 4 {
			return 500, 0, ""
		}
		return 0, 0, ""
	}}})
	ctx := t.Context()
	for i := range 6 {
		c := customers.Customer{ID: fmt.Sprintf("s%d", i), Phone: fmt.Sprintf("+42190511111%d", i), Language: "cs", Tags: []string{"sms"}}
		if _, err := b.customers.Upsert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	camp := jobs.Campaign{Name: "morning", Channel: jobs.ChannelSMS, Template: "promo", RatePerSecond: 100,
		Timezone: "Europe/Bratislava", QuietHours: "21:00-08:00", Audience: jobs.Audience{Tags: []string{"sms"}}}
	run, err := b.engine.Launch(ctx, camp, "", "schedule")
	if err != nil {
		t.Fatal(err)
	}
	st := b.waitRun(t, "morning", run, finished)
	if st.Counts.Sent != 6 || b.twilio.Count() != 6 {
		t.Fatalf("sent %d, twilio accepted %d; want 6 each once", st.Counts.Sent, b.twilio.Count())
	}
	end := time.Date(2026, 11, 24, 8, 0, 0, 0, ba)
	seen := map[string]bool{}
	for _, m := range b.twilio.Messages() {
		if seen[m.To] {
			t.Errorf("%s got two messages", m.To)
		}
		seen[m.To] = true
	}
	page, err := b.engine.Store().Entries(ctx, "morning", run, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		if e.At.Before(end) {
			t.Errorf("%s sent at %s, inside the quiet hours", e.Recipient, e.At.In(ba))
		}
	}
	// a delivery report moves the entry
	sid := b.twilio.Messages()[0].SID
	if _, err := b.engine.Ledger().RecordDeliveryStatus(ctx, sid, "delivered", ""); err != nil {
		t.Fatal(err)
	}
	if st := b.waitRun(t, "morning", run, finished); st.Counts.Delivered != 1 || st.Counts.Sent != 5 {
		t.Errorf("after one delivery report: %+v", st.Counts)
	}
}

func TestCampaignTestSendAndDryRunJobs(t *testing.T) {
	t.Parallel()
	b := startCampaigns(t, campaignOptions{})
	ctx := t.Context()
	if _, err := b.customers.Upsert(ctx, customers.Customer{ID: "k", Email: "k@example.sk", Language: "pl", Tags: []string{"n"}}); err != nil {
		t.Fatal(err)
	}
	camp := jobs.Campaign{Name: "preview", Channel: jobs.ChannelEmail, Template: "promo", RatePerSecond: 10,
		Timezone: "Europe/Bratislava", Audience: jobs.Audience{Tags: []string{"n"}}}
	client := asynq.NewClientFromRedisClient(b.rdb)
	var ids []string
	for _, args := range []jobs.Args{
		jobs.CampaignTestArgs{Campaign: camp, To: "ops@shop.example", CustomerID: "k"},
		jobs.CampaignDryRunArgs{Campaign: camp},
	} {
		task, err := jobs.NewTask(args)
		if err != nil {
			t.Fatal(err)
		}
		info, err := client.EnqueueContext(ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	results := make([]map[string]any, len(ids))
	deadline := time.Now().Add(30 * time.Second)
	for i, id := range ids {
		for {
			ti, err := b.inspector.GetTaskInfo(jobs.QueueDefault, id)
			if err == nil && ti.State == asynq.TaskStateCompleted {
				if err := json.Unmarshal(ti.Result, &results[i]); err != nil {
					t.Fatalf("task %s result %q: %v", id, ti.Result, err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s not completed: %+v %v", id, ti, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if results[0]["to"] != "ops@shop.example" || results[0]["language"] != "pl" || b.smtp.Count() != 1 {
		t.Errorf("test send result = %v, %d mails", results[0], b.smtp.Count())
	}
	if results[1]["recipients"] != float64(1) || results[1]["estimated_duration"] != "1s" {
		t.Errorf("dry run result = %v", results[1])
	}
	if names, _ := b.engine.Store().Campaigns(ctx); len(names) != 0 {
		t.Errorf("preview jobs created runs: %v", names)
	}
}
