package campaigns

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/email/smtptest"
)

// withSMTP starts a real SMTP server and sends the engine's mail to it.
func withSMTP(t testing.TB, opts smtptest.Options) (*smtptest.Server, func(*Config)) {
	t.Helper()
	srv := smtptest.Start(t, opts)
	pool, err := email.NewPool(email.PoolOptions{URL: srv.URL(), Size: 2, HELO: "test.local"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	return srv, func(c *Config) { c.Mail = pool }
}

// subjects returns what the promo template's subject is per language.
func subjects(t *testing.T, set *templates.Set, langs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range langs {
		m, err := set.RenderEmail("promo", l, templates.Data{Customer: templates.CustomerData{Name: "X"}})
		if err != nil {
			t.Fatal(err)
		}
		out[l] = m.Subject
	}
	return out
}

func TestEmailCampaignSendsEachRecipientOnceInTheirLanguage(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, withMail)
	ctx := t.Context()
	langs := []string{"sk", "cs", "pl", "en"}
	var want []string
	for i := range 11 {
		c := customers.Customer{ID: fmt.Sprintf("c%02d", i), Name: fmt.Sprintf("Name %d", i), Email: fmt.Sprintf("c%02d@example.sk", i),
			Language: langs[i%4], Tags: []string{"newsletter"}}
		switch i {
		case 3:
			c.Consent = optedOut(customers.ChannelEmail)
		case 7:
			c.Email = ""
			c.Phone = "+421905000007"
		default:
			want = append(want, c.Email)
		}
		b.addCustomers(t, c)
	}
	b.addCustomers(t, customers.Customer{ID: "other", Email: "other@example.sk", Tags: []string{"vip"}})
	camp := emailCampaign("spring", jobs.Audience{Tags: []string{"newsletter"}})
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, "spring", "r1"); st.Counts.Pending != 9 || st.Counts.Skipped != 2 || st.Chunks != 3 {
		t.Fatalf("after planning: %+v chunks %d", st.Counts, st.Chunks)
	}
	b.runUntilDone(t, "spring", "r1", 1, nil)
	b.runUntilDone(t, "spring", "r1", 1, nil) // a second pass sends nothing more

	msgs := srv.Messages()
	var got []string
	subj := subjects(t, b.templates, langs...)
	for _, m := range msgs {
		to := m.To[0]
		got = append(got, to)
		var i int
		fmt.Sscanf(to, "c%02d@", &i)
		if s := m.Header.Get("Subject"); !strings.Contains(decodeHeader(t, s), subj[langs[i%4]]) {
			t.Errorf("%s got subject %q, want the %s one %q", to, s, langs[i%4], subj[langs[i%4]])
		}
		id := b.engine.messageID("spring", "r1", strings.Split(to, "@")[0])
		if m.Header.Get("Message-Id") != id || m.Header.Get("X-Backoffice-Campaign") != "spring/r1" {
			t.Errorf("%s: Message-ID %q campaign %q, want %q spring/r1", to, m.Header.Get("Message-Id"), m.Header.Get("X-Backoffice-Campaign"), id)
		}
		if lu := m.Header.Get("List-Unsubscribe"); !strings.Contains(lu, "https://shop.example/u/") {
			t.Errorf("%s: List-Unsubscribe %q", to, lu)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	st := b.status(t, "spring", "r1")
	checkCounts(t, st)
	if st.State != StateFinished || st.Counts.Sent != 9 || st.ChunksDone != 3 || st.SentPerMinute != 9 {
		t.Errorf("status = %+v", st)
	}
	led := b.ledger(t, "spring", "r1")
	if led["c03"] != "skipped|opted_out" || led["c07"] != "skipped|no_address" || !strings.HasPrefix(led["c00"], "sent|<spring.r1.") {
		t.Errorf("ledger = %v", led)
	}
	events, err := b.customers.Timeline(ctx, "c00", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != "mail.sent" || events[0].Ref != b.engine.messageID("spring", "r1", "c00") {
		t.Errorf("timeline of c00 = %+v, want one mail.sent", events)
	}
	if n, _ := b.rdb.SCard(ctx, b.engine.store.keys.run("spring", "r1").noevent).Result(); n != 0 {
		t.Errorf("%d recipients still wait for their timeline event", n)
	}
}

func decodeHeader(t *testing.T, s string) string {
	t.Helper()
	var dec mime.WordDecoder
	d, err := dec.DecodeHeader(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOptOutAfterLaunchIsSkipped(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, withMail)
	ctx := t.Context()
	b.addCustomers(t,
		customers.Customer{ID: "a", Email: "a@example.sk", Tags: []string{"n"}},
		customers.Customer{ID: "b", Email: "b@example.sk", Tags: []string{"n"}})
	if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("stop", jobs.Audience{Tags: []string{"n"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.customers.SetConsent(ctx, "b", customers.ChannelEmail, customers.OptedOut, "unsubscribe:stop", b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "stop", "r1", 1, nil)
	if got := srv.Count(); got != 1 {
		t.Errorf("%d messages sent, want 1", got)
	}
	if led := b.ledger(t, "stop", "r1"); led["b"] != "skipped|opted_out" || !strings.HasPrefix(led["a"], "sent|") {
		t.Errorf("ledger = %v", led)
	}
}

func TestTransientThenPermanentSMTPFailuresAndRetryFailed(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{Reject: func(rcpt string, attempt int) *smtp.SMTPError {
		switch {
		case strings.HasPrefix(rcpt, "busy") && attempt <= 2:
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		case strings.HasPrefix(rcpt, "gone") && attempt == 1:
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	metrics := NewMetrics(prometheus.NewRegistry())
	b := setup(t, func(c *Config) { withMail(c); c.Metrics = metrics })
	ctx := t.Context()
	for _, id := range []string{"ok1", "busy", "gone", "ok2", "ok3"} {
		b.addCustomers(t, customers.Customer{ID: id, Email: id + "@example.sk", Tags: []string{"n"}})
	}
	camp := emailCampaign("faults", jobs.Audience{Tags: []string{"n"}})
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	transient := 0
	b.runUntilDone(t, "faults", "r1", 5, func(err error) bool {
		var se *email.SendError
		if errors.As(err, &se) && se.Code == 451 {
			transient++
			return true
		}
		return false
	})
	if transient != 0 {
		t.Errorf("%d transient chunk failures, want 0: the chunk retries the two 451s in-process", transient)
	}
	led := b.ledger(t, "faults", "r1")
	if !strings.HasPrefix(led["gone"], "failed|550 5.1.1|") || !strings.Contains(led["gone"], "no such user") {
		t.Errorf("gone: %q, want failed with 550 5.1.1 and the server's text", led["gone"])
	}
	st := b.status(t, "faults", "r1")
	if st.Counts.Sent != 4 || st.Counts.Failed != 1 || st.State != StateFinished {
		t.Fatalf("status = %+v", st)
	}
	if got := srv.Count(); got != 4 {
		t.Errorf("%d messages accepted, want 4 (each once)", got)
	}
	counted := func() map[string]float64 {
		out := map[string]float64{}
		for _, o := range []string{"sent", "failed"} {
			out[o] = testutil.ToFloat64(metrics.messages.WithLabelValues("faults", jobs.ChannelEmail, o))
		}
		for _, c := range []string{errorTransient, errorPermanent, errorProviderLimit, errorInDoubt} {
			out[c] = testutil.ToFloat64(metrics.errors.WithLabelValues("faults", jobs.ChannelEmail, c))
		}
		return out
	}
	want := map[string]float64{"sent": 4, "failed": 1, errorTransient: 2, errorPermanent: 1, errorProviderLimit: 0, errorInDoubt: 0}
	if diff := cmp.Diff(want, counted()); diff != "" {
		t.Errorf("metrics after the run (-want,+got):\n%s", diff)
	}

	next, err := b.engine.RetryFailed(ctx, "faults", "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.engine.RetryFailed(ctx, "faults", "r1")
	if err != nil || again != next {
		t.Fatalf("RetryFailed twice = %q, %v; want the same run %q", again, err, next)
	}
	a := jobs.CampaignLaunchArgs{Campaign: camp, Run: next, Trigger: "retry-failed", RetryOf: "r1"}
	if err := b.engine.HandleLaunch(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "faults", next, 2, nil)
	rst := b.status(t, "faults", next)
	if rst.Counts.Total != 1 || rst.Counts.Sent != 1 || rst.Trigger != "retry-failed" || rst.RetryOf != "r1" {
		t.Errorf("retry run = %+v", rst)
	}
	if got := srv.Count(); got != 5 {
		t.Errorf("%d messages accepted after the retry, want 5", got)
	}
	want["sent"] = 5
	if diff := cmp.Diff(want, counted()); diff != "" {
		t.Errorf("metrics after retry-failed (-want,+got):\n%s", diff)
	}
	if latest, _ := b.engine.Store().Latest(ctx, "faults"); latest != next {
		t.Errorf("latest run = %q, want %q", latest, next)
	}
	if _, err := b.engine.RetryFailed(ctx, "faults", ""); !errors.Is(err, ErrNothingToRetry) {
		t.Errorf("RetryFailed of a run without failures = %v, want ErrNothingToRetry", err)
	}
}

func TestPauseResumeCancelHoldChunks(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, withMail)
	ctx := t.Context()
	for i := range 6 {
		b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("p%d", i), Email: fmt.Sprintf("p%d@example.sk", i), Tags: []string{"n"}})
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("pr", jobs.Audience{Tags: []string{"n"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	if err := b.engine.Pause(ctx, "pr", "", "checking the wording"); err != nil {
		t.Fatal(err)
	}
	for n, err := range b.runChunks(t, "pr", "r1") {
		var h *HoldError
		if !errors.As(err, &h) || !h.RateLimited() || h.RetryAfter() <= 0 {
			t.Errorf("chunk %d of a paused run: %v, want a hold", n, err)
		}
	}
	if srv.Count() != 0 {
		t.Fatalf("a paused run sent %d messages", srv.Count())
	}
	if err := b.engine.Resume(ctx, "pr", ""); err != nil {
		t.Fatal(err)
	}
	if err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "pr", Run: "r1", Chunk: 0}); err != nil {
		t.Fatal(err)
	}
	if err := b.engine.Cancel(ctx, "pr", "", "wrong audience"); err != nil {
		t.Fatal(err)
	}
	for n, err := range b.runChunks(t, "pr", "r1") {
		if err != nil {
			t.Errorf("chunk %d of a cancelled run: %v, want nil", n, err)
		}
	}
	st := b.status(t, "pr", "r1")
	if srv.Count() != 3 || st.Counts.Sent != 3 || st.Counts.Pending != 3 || st.State != StateCancelled || st.ChunksDone != 2 {
		t.Errorf("after cancel: %d sent, status %+v", srv.Count(), st)
	}
}

func TestErrorRatioPausesTheRun(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{Reject: func(rcpt string, _ int) *smtp.SMTPError {
		if strings.HasPrefix(rcpt, "bad") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	b := setup(t, func(c *Config) { withMail(c); c.MinAttempts = 4; c.ChunkSize = 20 })
	ctx := t.Context()
	for i := range 12 {
		prefix := "good"
		if i%3 != 0 {
			prefix = "bad"
		}
		b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("e%02d", i), Email: fmt.Sprintf("%s%02d@example.sk", prefix, i), Tags: []string{"n"}})
	}
	camp := emailCampaign("ratio", jobs.Audience{Tags: []string{"n"}})
	camp.MaxErrorRatio = 0.5
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "ratio", Run: "r1", Chunk: 0})
	var h *HoldError
	if !errors.As(err, &h) {
		t.Fatalf("HandleChunk = %v, want a hold after the run paused", err)
	}
	st := b.status(t, "ratio", "r1")
	if st.State != StatePaused || !strings.Contains(st.Reason, "max_error_ratio") || st.Counts.Attempted() < 4 || st.Counts.Pending == 0 {
		t.Errorf("status = %+v, want paused by the error ratio with recipients left", st)
	}
	if int64(srv.Count()) != st.Counts.Sent {
		t.Errorf("server accepted %d, ledger says %d sent", srv.Count(), st.Counts.Sent)
	}
}

func TestTemplateFailureFailsOnlyThatRecipient(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, withMail)
	ctx := t.Context()
	b.writeFile(t, "welcome.csv", "email,name,language\nok@example.sk,Ok,sk\nalso@example.sk,Also,en\n")
	camp := emailCampaign("tmpl", jobs.Audience{File: "welcome.csv"})
	camp.Template = "no-such-template"
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "tmpl", "r1", 1, nil)
	led := b.ledger(t, "tmpl", "r1")
	if !strings.HasPrefix(led["ok@example.sk"], "failed|template|") || !strings.Contains(led["ok@example.sk"], "no-such-template") {
		t.Errorf("ledger = %v, want failed with the template error", led)
	}
	if st := b.status(t, "tmpl", "r1"); st.State != StateFinished || st.Counts.Failed != 2 || srv.Count() != 0 {
		t.Errorf("status = %+v, %d sent", st, srv.Count())
	}
}

func TestInDoubtEmailIsSentAgainWithTheSameMessageID(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, withMail)
	ctx := t.Context()
	b.addCustomers(t, customers.Customer{ID: "d1", Email: "d1@example.sk", Tags: []string{"n"}})
	if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("doubt", jobs.Audience{Tags: []string{"n"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	// a worker died between marking the entry sending and recording the outcome
	if _, err := b.engine.store.transition(ctx, "doubt", "r1", "d1", transition{from: []EntryState{EntryPending}, to: EntrySending}); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "doubt", "r1", 1, nil)
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].Header.Get("Message-Id") != b.engine.messageID("doubt", "r1", "d1") {
		t.Fatalf("messages = %d, want one with the run's Message-ID", len(msgs))
	}
	if st := b.status(t, "doubt", "r1"); st.Counts.Sent != 1 || st.Counts.Sending != 0 {
		t.Errorf("counts = %+v", st.Counts)
	}
}

func TestRetryFailedOfAFileAudienceCarriesTheRows(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{Reject: func(rcpt string, attempt int) *smtp.SMTPError {
		if strings.HasPrefix(rcpt, "gone") && attempt == 1 {
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}})
	b := setup(t, withMail)
	ctx := t.Context()
	b.writeFile(t, "aud.csv", "email,name,language\nok@example.sk,Ok,sk\ngone@example.sk,Gone Person,cs\n")
	camp := emailCampaign("filere", jobs.Audience{File: "aud.csv"})
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "filere", "r1", 1, nil)
	next, err := b.engine.RetryFailed(ctx, "filere", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.engine.HandleLaunch(ctx, jobs.CampaignLaunchArgs{Campaign: camp, Run: next, Trigger: "retry-failed", RetryOf: "r1"}); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "filere", next, 1, nil)
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[1].To[0] != "gone@example.sk" || !strings.Contains(msgs[1].Header.Get("To"), "Gone Person") {
		t.Fatalf("messages: %d, last to %v", len(msgs), msgs[len(msgs)-1].Header.Get("To"))
	}
	if st := b.status(t, "filere", next); st.Counts.Total != 1 || st.Counts.Sent != 1 {
		t.Errorf("retry run counts = %+v", st.Counts)
	}
}

func TestFileAudienceHonoursCustomerConsent(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, withMail)
	ctx := t.Context()
	b.addCustomers(t,
		customers.Customer{ID: "known", Email: "known@example.sk", Language: "cs"},
		customers.Customer{ID: "out", Email: "out@example.sk", Consent: optedOut(customers.ChannelEmail)})
	b.writeFile(t, "aud.csv", "email,name\nKnown@Example.sk,Known\nout@example.sk,Out\nnew@example.sk,New\n")
	if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("mixed", jobs.Audience{File: "aud.csv"}), "r1")); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "mixed", "r1", 1, nil)
	led := b.ledger(t, "mixed", "r1")
	if led["out@example.sk"] != "skipped|opted_out" || !strings.HasPrefix(led["known@example.sk"], "sent|") || !strings.HasPrefix(led["new@example.sk"], "sent|") {
		t.Fatalf("ledger = %v", led)
	}
	unsub := map[string]string{}
	for _, m := range srv.Messages() {
		unsub[m.To[0]] = m.Header.Get("List-Unsubscribe")
	}
	u := b.engine.cfg.Unsubscribe
	if !strings.Contains(unsub["Known@example.sk"], u.URL("known", "mixed")) || !strings.Contains(unsub["new@example.sk"], u.AddressURL("new@example.sk", "mixed")) {
		t.Errorf("List-Unsubscribe = %v: want the customer's link for a customer, the address link otherwise", unsub)
	}
	if ev, err := b.customers.Timeline(ctx, "known", 5); err != nil || len(ev) != 1 || ev[0].Kind != "mail.sent" {
		t.Errorf("timeline of the known customer = %+v, %v", ev, err)
	}
}

// TestSameChunkTwiceAtOnceSendsOnce runs one chunk in several goroutines
// at once, as when asynq hands a task to a second worker while the first
// still runs it: the slot lease lets one send, the others are held.
func TestSameChunkTwiceAtOnceSendsOnce(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, func(c *Config) { withMail(c); c.ChunkSize = 50 })
	ctx := t.Context()
	for i := range 40 {
		b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("x%02d", i), Email: fmt.Sprintf("x%02d@example.sk", i), Tags: []string{"n"}})
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("twice", jobs.Audience{Tags: []string{"n"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			errs <- b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "twice", Run: "r1", Chunk: 0})
		}()
	}
	for range 4 {
		var h *HoldError
		if err := <-errs; err != nil && !errors.As(err, &h) {
			t.Errorf("HandleChunk: %v", err)
		}
	}
	b.runUntilDone(t, "twice", "r1", 3, func(err error) bool { var h *HoldError; return errors.As(err, &h) })
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		seen[m.To[0]]++
	}
	for to, n := range seen {
		if n != 1 {
			t.Errorf("%s got %d messages", to, n)
		}
	}
	if len(seen) != 40 {
		t.Errorf("%d recipients got mail, want 40", len(seen))
	}
}

// A chunk claims a batch of recipients ("sending") before it sends to
// them; when a transient failure outlasts the in-process retries, the
// recipients claimed but not yet sent to go back to pending, and the next
// attempt sends each of them exactly once.
func TestStoppedChunkGivesClaimedRecipientsBack(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{Reject: func(rcpt string, attempt int) *smtp.SMTPError {
		if strings.HasPrefix(rcpt, "stuck") && attempt <= sendAttempts {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}})
	b := setup(t, func(c *Config) { withMail(c); c.ChunkSize = 50 })
	ctx := t.Context()
	ids := []string{"stuck"}
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("ok%02d", i))
	}
	for _, id := range ids {
		b.addCustomers(t, customers.Customer{ID: id, Email: id + "@example.sk", Tags: []string{"n"}})
	}
	camp := emailCampaign("stops", jobs.Audience{Tags: []string{"n"}})
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "stops", Run: "r1", Chunk: 0})
	if err == nil {
		t.Fatal("HandleChunk = nil, want the chunk stopped by the recipient the server keeps refusing")
	}
	led := b.ledger(t, "stops", "r1")
	states := map[string]int{}
	for id, v := range led {
		state, _, _ := strings.Cut(v, "|")
		states[state]++
		if state == "sent" && id == "stuck" {
			t.Errorf("stuck is sent after 451s only")
		}
	}
	if states["sending"] != 0 || !strings.HasPrefix(led["stuck"], "pending|") || states["sent"] != srv.Count() {
		t.Fatalf("after the stopped attempt: states %v, stuck %q, %d accepted; want nothing left sending", states, led["stuck"], srv.Count())
	}
	// everyone from stuck on was claimed with it and given back
	order, _, err := b.engine.store.chunkRecipients(ctx, "stops", "r1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(order) - slices.Index(order, "stuck"); states["pending"] != want {
		t.Errorf("%d pending after the stop, want %d (stuck and everyone after it in %q)", states["pending"], want, order)
	}
	st := b.status(t, "stops", "r1")
	if st.Counts.Sent+st.Counts.Pending != int64(len(ids)) || st.Counts.Sending != 0 {
		t.Errorf("counts %+v do not add up to %d recipients", st.Counts, len(ids))
	}
	b.runUntilDone(t, "stops", "r1", 3, nil)
	if got := srv.Count(); got != len(ids) {
		t.Errorf("%d messages accepted, want %d (each once)", got, len(ids))
	}
	if st := b.status(t, "stops", "r1"); st.Counts.Sent != int64(len(ids)) || st.State != StateFinished {
		t.Errorf("status after the retry = %+v", st)
	}
}

// A daemon sends at most LocalChunks chunks at once: another chunk is held
// in the queue instead of taking a worker the daemon's other jobs need.
func TestLocalChunksLimitHoldsTheNextChunk(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv, withMail := withSMTP(t, smtptest.Options{Reject: func(string, int) *smtp.SMTPError {
		first := false
		once.Do(func() { first = true })
		if first { // the first send waits until the test has tried the other chunk
			close(entered)
			<-release
		}
		return nil
	}})
	b := setup(t, func(c *Config) { withMail(c); c.ChunkSize = 1; c.LocalChunks = 1 })
	ctx := t.Context()
	for _, id := range []string{"a1", "a2"} {
		b.addCustomers(t, customers.Customer{ID: id, Email: id + "@example.sk", Tags: []string{"n"}})
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("local", jobs.Audience{Tags: []string{"n"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		first <- b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "local", Run: "r1", Chunk: 0})
	}()
	<-entered
	err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "local", Run: "r1", Chunk: 1})
	var h *HoldError
	if !errors.As(err, &h) || !strings.Contains(h.Reason, "LocalChunks") {
		t.Errorf("second chunk while the first sends = %v, want a hold for LocalChunks", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first chunk = %v", err)
	}
	if err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "local", Run: "r1", Chunk: 1}); err != nil {
		t.Fatalf("second chunk after the first = %v", err)
	}
	if srv.Count() != 2 {
		t.Errorf("%d messages, want 2", srv.Count())
	}
}

// A chunk that is done wakes the next chunk of its run waiting in the
// queue for a slot, instead of leaving the slot idle until that chunk
// looks again.
func TestDoneChunkWakesTheNextWaitingChunk(t *testing.T) {
	t.Parallel()
	srv, b, chunk := oneSlotRun(t, "wake", 3)
	ctx := t.Context()
	state := func(n int) asynq.TaskState { return b.chunkState(t, chunk(n)) }
	// chunks 1 and 2 wait in the queue for an hour, as held chunks do
	for _, n := range []int{1, 2} {
		b.holdChunk(t, chunk(n), time.Hour)
	}
	if err := b.engine.HandleChunk(ctx, chunk(0)); err != nil {
		t.Fatal(err)
	}
	if s1, s2 := state(1), state(2); s1 != asynq.TaskStatePending || s2 != asynq.TaskStateScheduled {
		t.Fatalf("after chunk 0: chunk 1 %v, chunk 2 %v; want chunk 1 woken (pending), chunk 2 still scheduled", s1, s2)
	}
	if err := b.engine.HandleChunk(ctx, chunk(1)); err != nil {
		t.Fatal(err)
	}
	if s2 := state(2); s2 != asynq.TaskStatePending {
		t.Fatalf("after chunk 1: chunk 2 %v, want woken", s2)
	}
	if err := b.engine.HandleChunk(ctx, chunk(2)); err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, "wake", "r1"); st.State != StateFinished || srv.Count() != 3 {
		t.Errorf("run %s with %d messages, want finished with 3", st.State, srv.Count())
	}
}

// oneSlotRun launches run r1 of an e-mail campaign to n customers in
// chunks of one recipient, with one in-flight slot, into a real SMTP
// server; chunk(i) names chunk i of the run.
func oneSlotRun(t *testing.T, campaign string, n int) (*smtptest.Server, *bundle, func(int) jobs.CampaignChunkArgs) {
	t.Helper()
	srv, withMail := withSMTP(t, smtptest.Options{})
	b := setup(t, func(c *Config) { withMail(c); c.ChunkSize = 1; c.MaxChunksInFlight = 1 })
	for i := range n {
		id := fmt.Sprintf("%s%d", campaign, i)
		b.addCustomers(t, customers.Customer{ID: id, Email: id + "@example.sk", Tags: []string{campaign}})
	}
	if err := b.engine.HandleLaunch(t.Context(), launchArgs(emailCampaign(campaign, jobs.Audience{Tags: []string{campaign}}), "r1")); err != nil {
		t.Fatal(err)
	}
	return srv, b, func(i int) jobs.CampaignChunkArgs {
		return jobs.CampaignChunkArgs{Campaign: campaign, Run: "r1", Chunk: i}
	}
}

// chunkState is where chunk a's task is in the queue.
func (b *bundle) chunkState(t *testing.T, a jobs.CampaignChunkArgs) asynq.TaskState {
	t.Helper()
	info, err := b.inspector.GetTaskInfo(jobs.QueueCampaigns, a.TaskID())
	if err != nil {
		t.Fatalf("chunk %d: %v", a.Chunk, err)
	}
	return info.State
}

// holdChunk puts chunk a back in the queue to run after d, as a chunk held
// for a slot is.
func (b *bundle) holdChunk(t *testing.T, a jobs.CampaignChunkArgs, d time.Duration) {
	t.Helper()
	if err := b.inspector.DeleteTask(jobs.QueueCampaigns, a.TaskID()); err != nil {
		t.Fatal(err)
	}
	task, err := jobs.NewTask(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Enqueue(task, asynq.ProcessIn(d)); err != nil {
		t.Fatal(err)
	}
}

// A chunk that cannot be woken when a slot frees (it is starting, or
// being refused a slot that very moment) is passed over for the next
// waiting one, and is woken by the next chunk that ends once it waits:
// neither slot stays idle until a held chunk looks again.
func TestDoneChunkWakesAChunkPassedOverBefore(t *testing.T) {
	t.Parallel()
	srv, b, chunk := oneSlotRun(t, "pass", 4)
	ctx := t.Context()
	state := func(n int) asynq.TaskState { return b.chunkState(t, chunk(n)) }
	// chunk 1 is queued to run (it cannot be woken); 2 and 3 are held
	for _, n := range []int{2, 3} {
		b.holdChunk(t, chunk(n), time.Hour)
	}
	if err := b.engine.HandleChunk(ctx, chunk(0)); err != nil {
		t.Fatal(err)
	}
	if s1, s2, s3 := state(1), state(2), state(3); s1 != asynq.TaskStatePending || s2 != asynq.TaskStatePending || s3 != asynq.TaskStateScheduled {
		t.Fatalf("after chunk 0: chunks 1, 2, 3 %v, %v, %v; want 1 left as it was (pending), 2 woken (pending), 3 still held", s1, s2, s3)
	}
	// chunk 1 was refused the slot meanwhile and is held
	b.holdChunk(t, chunk(1), time.Hour)
	if err := b.engine.HandleChunk(ctx, chunk(2)); err != nil {
		t.Fatal(err)
	}
	if s1, s3 := state(1), state(3); s1 != asynq.TaskStatePending || s3 != asynq.TaskStateScheduled {
		t.Fatalf("after chunk 2: chunks 1, 3 %v, %v; want 1 woken (pending), 3 still held", s1, s3)
	}
	for _, n := range []int{1, 3} {
		if err := b.engine.HandleChunk(ctx, chunk(n)); err != nil {
			t.Fatal(err)
		}
	}
	if st := b.status(t, "pass", "r1"); st.State != StateFinished || srv.Count() != 4 {
		t.Errorf("run %s with %d messages, want finished with 4", st.State, srv.Count())
	}
}

// An operator who pauses or cancels a run while a chunk sends a claimed
// batch stops it within the message on the wire: the chunk learns the
// run's state when it records that message, and gives the rest of the
// batch back unsent. Resuming sends each of them once.
func TestPauseOrCancelStopsAClaimedBatch(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"pause", "cancel"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			const n = 20
			var b *bundle
			var acted atomic.Bool
			srv, withMail := withSMTP(t, smtptest.Options{Reject: func(rcpt string, attempt int) *smtp.SMTPError {
				if acted.CompareAndSwap(false, true) { // during the first message
					var err error
					if action == "pause" {
						err = b.engine.Pause(context.Background(), "stop", "", "wrong wording")
					} else {
						err = b.engine.Cancel(context.Background(), "stop", "", "wrong audience")
					}
					if err != nil {
						t.Error(err)
					}
				}
				return nil
			}})
			b = setup(t, func(c *Config) { withMail(c); c.ChunkSize = n }) // one chunk, one batch
			ctx := t.Context()
			for i := range n {
				b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("s%02d", i), Email: fmt.Sprintf("s%02d@example.sk", i), Tags: []string{"stop"}})
			}
			if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("stop", jobs.Audience{Tags: []string{"stop"}}), "r1")); err != nil {
				t.Fatal(err)
			}
			a := jobs.CampaignChunkArgs{Campaign: "stop", Run: "r1", Chunk: 0}
			err := b.engine.HandleChunk(ctx, a)
			st := b.status(t, "stop", "r1")
			if srv.Count() != 1 || st.Counts.Sent != 1 || st.Counts.Pending != n-1 || st.Counts.Sending != 0 {
				t.Fatalf("after %s during the first message: %d sent, counts %+v; want 1 sent, the other %d pending", action, srv.Count(), st.Counts, n-1)
			}
			if action == "cancel" {
				if err != nil || st.State != StateCancelled || st.ChunksDone != 1 {
					t.Errorf("cancelled: HandleChunk = %v, state %s, chunks done %d; want nil, cancelled, 1", err, st.State, st.ChunksDone)
				}
				return
			}
			var h *HoldError
			if !errors.As(err, &h) || st.State != StatePaused {
				t.Fatalf("paused: HandleChunk = %v, state %s; want a hold, paused", err, st.State)
			}
			if err := b.engine.Resume(ctx, "stop", ""); err != nil {
				t.Fatal(err)
			}
			if err := b.engine.HandleChunk(ctx, a); err != nil {
				t.Fatal(err)
			}
			if st := b.status(t, "stop", "r1"); srv.Count() != n || st.Counts.Sent != n || st.State != StateFinished {
				t.Errorf("after resume: %d messages, status %+v; want %d once each, finished", srv.Count(), st, n)
			}
			seen := map[string]int{}
			for _, m := range srv.Messages() {
				for _, to := range m.To {
					seen[to]++
				}
			}
			for to, c := range seen {
				if c != 1 {
					t.Errorf("%s got %d messages", to, c)
				}
			}
		})
	}
}

// retry-failed waits for the run to end: a paused run may be resumed and
// fail more recipients, which its one retry run would never reach.
func TestRetryFailedWaitsForTheRunToEnd(t *testing.T) {
	t.Parallel()
	_, withMail := withSMTP(t, smtptest.Options{Reject: func(string, int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}})
	b := setup(t, func(c *Config) { withMail(c); c.ChunkSize = 1 })
	ctx := t.Context()
	for i := range 2 {
		b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("w%d", i), Email: fmt.Sprintf("w%d@example.sk", i), Tags: []string{"wait"}})
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(emailCampaign("wait", jobs.Audience{Tags: []string{"wait"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	if err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "wait", Run: "r1", Chunk: 0}); err != nil {
		t.Fatal(err)
	}
	if err := b.engine.Pause(ctx, "wait", "r1", ""); err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, "wait", "r1"); st.Counts.Failed != 1 || st.State != StatePaused {
		t.Fatalf("status %+v, want paused with 1 failed", st)
	}
	if next, err := b.engine.RetryFailed(ctx, "wait", "r1"); !errors.Is(err, ErrState) || !strings.Contains(fmt.Sprint(err), "cancel it or let it finish") {
		t.Errorf("RetryFailed of a paused run = %q, %v; want ErrState saying to cancel or finish it", next, err)
	}
	if err := b.engine.Cancel(ctx, "wait", "r1", ""); err != nil {
		t.Fatal(err)
	}
	next, err := b.engine.RetryFailed(ctx, "wait", "r1")
	if err != nil || next == "" {
		t.Errorf("RetryFailed of the cancelled run = %q, %v; want a new run", next, err)
	}
}
