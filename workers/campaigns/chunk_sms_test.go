package campaigns

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
	"github.com/shopworks/backoffice/workers/sms"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// withTwilio starts a local Twilio API server and sends the engine's SMS
// to it.
func withTwilio(t *testing.T, opts twiliotest.Options) (*twiliotest.Server, func(*Config)) {
	t.Helper()
	srv := twiliotest.Start(t, opts)
	tw, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: srv.AccountSID, AuthToken: srv.AuthToken, From: "+421900000000", APIURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tw.Close() })
	return srv, func(c *Config) { c.SMS = tw; c.SMSStatusCallback = "https://shop.example/twilio/status" }
}

func smsCampaign(name string, aud jobs.Audience) jobs.Campaign {
	return jobs.Campaign{Name: name, Channel: jobs.ChannelSMS, Template: "promo", Audience: aud,
		RatePerSecond: 1000, Timezone: "Europe/Bratislava"}
}

// isHoldOrTransient accepts what asynq would retry: holds and transient
// send failures.
func isHoldOrTransient(err error) bool {
	var h *HoldError
	return errors.As(err, &h) || (err != nil && !sms.IsPermanent(err))
}

func TestSMSCampaignThroughTwilioFaults(t *testing.T) {
	t.Parallel()
	srv, withSMS := withTwilio(t, twiliotest.Options{
		OptedOut: []string{"+421905000003"},
		Fail: func(n int, _ string) (int, int, string) {
			switch n {
			case 2:
				return 429, 20429, "1"
			case 4:
				return 503, 0, ""
			case 5:
				return 500, 20500, ""
			}
			return 0, 0, ""
		},
	})
	b := setup(t, withSMS)
	ctx := t.Context()
	var want []string
	for i := range 7 {
		c := customers.Customer{ID: fmt.Sprintf("s%d", i), Phone: fmt.Sprintf("+42190500000%d", i), Language: "sk", Tags: []string{"sms"}}
		if i == 5 {
			c.Consent = optedOut(customers.ChannelSMS)
		} else if i != 3 {
			want = append(want, c.Phone)
		}
		b.addCustomers(t, c)
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(smsCampaign("flash", jobs.Audience{Tags: []string{"sms"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	var holds, transient int
	b.runUntilDone(t, "flash", "r1", 10, func(err error) bool {
		var h *HoldError
		if errors.As(err, &h) {
			holds++
		} else {
			transient++
		}
		return isHoldOrTransient(err)
	})
	// The chunk retries the 429 (after its Retry-After of 1s), the 503 and
	// the 500 in-process: no chunk attempt ends early.
	if holds != 0 || transient != 0 {
		t.Errorf("%d holds, %d transient failures; want none: transient failures are retried in-process", holds, transient)
	}
	if extra := srv.Requests() - srv.Count(); extra != 4 {
		t.Errorf("%d requests not accepted, want 4 (429, 503, 500, and the opted-out number)", extra)
	}
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, m.To)
		if m.StatusCallback != "https://shop.example/twilio/status" || !strings.Contains(m.Body, "STOP") {
			t.Errorf("message to %s: callback %q body %q", m.To, m.StatusCallback, m.Body)
		}
	}
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	led := b.ledger(t, "flash", "r1")
	if led["s5"] != "skipped|opted_out" || !strings.HasPrefix(led["s3"], "failed|21610|") {
		t.Errorf("ledger = %v", led)
	}
	// delivery reports move the ledger
	for _, m := range srv.Messages() {
		status := "delivered"
		if m.To == "+421905000004" {
			status = "undelivered"
		}
		for _, s := range []string{"queued", "sent", status} {
			customer, err := b.engine.Ledger().RecordDeliveryStatus(ctx, m.SID, s, "30003")
			if err != nil || !strings.HasPrefix(customer, "s") {
				t.Fatalf("RecordDeliveryStatus(%s, %s) = %q, %v", m.SID, s, customer, err)
			}
		}
	}
	st := b.status(t, "flash", "r1")
	checkCounts(t, st)
	if c := st.Counts; c.Delivered != 4 || c.Undelivered != 1 || c.Sent != 0 || c.Failed != 1 || c.Skipped != 1 || st.State != StateFinished {
		t.Errorf("status = %+v", st)
	}
	events, err := b.customers.Timeline(ctx, "s0", 10)
	if err != nil || len(events) != 1 || events[0].Kind != "sms.out" || !strings.HasPrefix(events[0].Ref, "SM") {
		t.Errorf("timeline of s0 = %+v, %v", events, err)
	}
}

func TestSMSQuietHoursHoldAndExpire(t *testing.T) {
	t.Parallel()
	srv, withSMS := withTwilio(t, twiliotest.Options{})
	b := setup(t, withSMS)
	ctx := t.Context()
	ba, _ := time.LoadLocation("Europe/Bratislava")
	b.clock.Set(time.Date(2026, 11, 23, 22, 0, 0, 0, ba))
	b.addCustomers(t,
		customers.Customer{ID: "home", Phone: "+421905111111", Tags: []string{"q"}},
		customers.Customer{ID: "away", Phone: "+421905222222", Timezone: "America/New_York", Tags: []string{"q"}})
	camp := smsCampaign("night", jobs.Audience{Tags: []string{"q"}})
	camp.QuietHours = "21:00-08:00"
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "night", Run: "r1", Chunk: 0})
	var h *HoldError
	if !errors.As(err, &h) || h.RetryAfter() != 10*time.Hour {
		t.Fatalf("HandleChunk at 22:00 = %v, want a hold of 10h (until 08:00)", err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].To != "+421905222222" {
		t.Fatalf("sent %v, want only the New York customer (16:00 there)", msgs)
	}
	b.clock.Set(time.Date(2026, 11, 24, 8, 0, 0, 0, ba))
	b.runUntilDone(t, "night", "r1", 1, nil)
	if n := srv.Count(); n != 2 {
		t.Errorf("%d sent after the window, want 2", n)
	}

	// with a validity that ends before the window does, the message expires
	b.clock.Set(time.Date(2026, 11, 24, 23, 0, 0, 0, ba))
	camp.Name, camp.Validity = "late", jobs.Duration(2*time.Hour)
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "late", "r1", 1, nil)
	if led := b.ledger(t, "late", "r1"); led["home"] != "skipped|expired" || !strings.HasPrefix(led["away"], "sent|SM") {
		t.Errorf("ledger = %v", led)
	}
}

func TestInDoubtSMSIsNotSentAgain(t *testing.T) {
	t.Parallel()
	srv, withSMS := withTwilio(t, twiliotest.Options{})
	b := setup(t, withSMS)
	ctx := t.Context()
	b.addCustomers(t, customers.Customer{ID: "d", Phone: "+421905333333", Tags: []string{"n"}})
	if err := b.engine.HandleLaunch(ctx, launchArgs(smsCampaign("doubt", jobs.Audience{Tags: []string{"n"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.store.transition(ctx, "doubt", "r1", "d", transition{from: []EntryState{EntryPending}, to: EntrySending}); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "doubt", "r1", 1, nil)
	if srv.Count() != 0 {
		t.Errorf("an in-doubt SMS was sent again")
	}
	if led := b.ledger(t, "doubt", "r1"); !strings.HasPrefix(led["d"], "failed|in_doubt|") {
		t.Errorf("ledger = %v, want failed in_doubt", led)
	}
	// The SMS had left after all (the stopped worker had indexed its SID):
	// its delivery report settles the entry, and retry-failed does not
	// send it a second time.
	if err := b.engine.store.indexSID(ctx, "SMdoubt", sidRef{campaign: "doubt", run: "r1", recipient: "d", customer: "d"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.Ledger().RecordDeliveryStatus(ctx, "SMdoubt", "delivered", ""); err != nil {
		t.Fatal(err)
	}
	st := b.status(t, "doubt", "r1")
	if led := b.ledger(t, "doubt", "r1"); !strings.HasPrefix(led["d"], "delivered|SMdoubt") || st.Counts.Failed != 0 || st.Counts.Delivered != 1 {
		t.Errorf("after the delivery report: ledger %v, counts %+v; want delivered, 0 failed, 1 delivered", led, st.Counts)
	}
	if _, err := b.engine.RetryFailed(ctx, "doubt", "r1"); !errors.Is(err, ErrNothingToRetry) {
		t.Errorf("RetryFailed after the report = %v, want ErrNothingToRetry", err)
	}
	// A failed entry of another cause is not moved by a report.
	if _, err := b.engine.store.transition(ctx, "doubt", "r1", "d", transition{from: []EntryState{EntryDelivered}, to: EntryFailed, detail: "21610|opted out"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.Ledger().RecordDeliveryStatus(ctx, "SMdoubt", "delivered", ""); err != nil {
		t.Fatal(err)
	}
	if led := b.ledger(t, "doubt", "r1"); !strings.HasPrefix(led["d"], "failed|21610|") {
		t.Errorf("a report moved a failed entry that was not in doubt: %v", led)
	}
	if srv.Count() != 0 {
		t.Errorf("%d SMS sent, want none", srv.Count())
	}
}

// A provider that keeps failing for one recipient ends the chunk's attempt
// after sendAttempts tries. An attempt that settled recipients before comes
// back as a hold (no retry budget spent); one that settled nobody is an
// ordinary transient failure. Nobody is sent twice and nobody is lost.
func TestSMSChunkTransientFailuresAndRetryBudget(t *testing.T) {
	t.Parallel()
	failFrom := map[int]bool{}
	for n := 2; n < 2+sendAttempts; n++ {
		failFrom[n] = true // the second recipient's every attempt
	}
	for n := 2 + sendAttempts; n < 2+2*sendAttempts; n++ {
		failFrom[n] = true // and every attempt of the next chunk attempt's first send
	}
	srv, withSMS := withTwilio(t, twiliotest.Options{
		Fail: func(n int, _ string) (int, int, string) {
			if failFrom[n] {
				return 500, 20500, ""
			}
			return 0, 0, ""
		},
	})
	b := setup(t, withSMS)
	ctx := t.Context()
	var want []string
	for i := range 3 { // one chunk of 3
		c := customers.Customer{ID: fmt.Sprintf("t%d", i), Phone: fmt.Sprintf("+42190511000%d", i), Language: "en", Tags: []string{"sms"}}
		want = append(want, c.Phone)
		b.addCustomers(t, c)
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(smsCampaign("budget", jobs.Audience{Tags: []string{"sms"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	errs := b.runChunks(t, "budget", "r1")
	var h *HoldError
	if err := errs[0]; !errors.As(err, &h) || !strings.Contains(h.Reason, "after 1 recipients settled") {
		t.Fatalf("first attempt = %v, want a hold after 1 recipient settled", err)
	}
	errs = b.runChunks(t, "budget", "r1")
	if err := errs[0]; err == nil || errors.As(err, &h) || sms.IsPermanent(err) {
		t.Fatalf("second attempt = %v, want a transient failure that spends the retry budget (nobody settled)", err)
	}
	b.runUntilDone(t, "budget", "r1", 2, nil)
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, m.To)
	}
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	if st := b.status(t, "budget", "r1"); st.Counts.Sent != 3 || st.State != StateFinished {
		t.Errorf("status = %+v, want 3 sent and finished", st)
	}
}

// Twilio's broken answers: a request that reached Twilio and got no answer
// (it may have created the SMS) is recorded failed as in doubt and not
// sent again; an accepted SMS whose answer cannot be read is sent, with no
// SID; a full sender queue (21611) holds the recipient instead of failing
// it. Every phone gets at most one SMS.
func TestSMSTwilioBrokenAnswers(t *testing.T) {
	t.Parallel()
	const doubt, garbled, queued = "+421905400001", "+421905400002", "+421905400003"
	var queueFull atomic.Bool
	srv, withSMS := withTwilio(t, twiliotest.Options{
		Fail: func(_ int, to string) (int, int, string) {
			if to == queued && queueFull.CompareAndSwap(false, true) {
				return 400, 21611, ""
			}
			return 0, 0, ""
		},
		Fault: func(_ int, to string) twiliotest.Fault {
			switch to {
			case doubt:
				return twiliotest.DropAfterCreate
			case garbled:
				return twiliotest.TruncatedJSON
			}
			return twiliotest.NoFault
		},
	})
	b := setup(t, withSMS)
	ctx := t.Context()
	for i, phone := range []string{doubt, garbled, queued, "+421905400004"} {
		b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("b%d", i), Phone: phone, Language: "en", Tags: []string{"broken"}})
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(smsCampaign("broken", jobs.Audience{Tags: []string{"broken"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "broken", "r1", 3, isHoldOrTransient)
	count := map[string]int{}
	for _, m := range srv.Messages() {
		count[m.To]++
	}
	for _, phone := range []string{doubt, garbled, queued, "+421905400004"} {
		if count[phone] != 1 {
			t.Errorf("%s: %d SMS created at Twilio, want 1", phone, count[phone])
		}
	}
	led := b.ledger(t, "broken", "r1")
	if !strings.HasPrefix(led["b0"], "failed|in_doubt|") {
		t.Errorf("no answer after the request: %q, want failed in_doubt", led["b0"])
	}
	if !strings.HasPrefix(led["b1"], "sent|") {
		t.Errorf("accepted, answer unreadable: %q, want sent", led["b1"])
	}
	if !strings.HasPrefix(led["b2"], "sent|SM") || !strings.HasPrefix(led["b3"], "sent|SM") {
		t.Errorf("queue full once, then sent: %q; plain: %q; want both sent with their SID", led["b2"], led["b3"])
	}
	if st := b.status(t, "broken", "r1"); st.Counts.Sent != 3 || st.Counts.Failed != 1 || st.State != StateFinished {
		t.Errorf("status %+v, want 3 sent, 1 failed (in doubt), finished", st)
	}
}

// lostReply runs a command and then reports a lost connection for it, as
// when Redis runs a script and stops before its reply reaches us; lose
// picks the commands.
type lostReply struct{ lose func(redis.Cmder) bool }

func (h lostReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h lostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := next(ctx, cmd); err != nil || !h.lose(cmd) {
			return err
		}
		return errors.New("read tcp 127.0.0.1:6379: connection reset by peer")
	}
}

func (h lostReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Redis runs the claim of a recipient and stops before its reply: the
// chunk gives the recipient back, and the next attempt sends the SMS
// instead of failing it as in doubt.
func TestSMSClaimWhoseReplyWasLostIsSent(t *testing.T) {
	t.Parallel()
	srv, withSMS := withTwilio(t, twiliotest.Options{})
	rdb := redistest.Start(t).Client(t)
	var lost atomic.Bool
	rdb.AddHook(lostReply{lose: func(cmd redis.Cmder) bool {
		// the ledger script moving pending (or sending) recipients to sending
		args := cmd.Args()
		return len(args) > 8 && fmt.Sprint(args[7]) == "pending,sending" && fmt.Sprint(args[8]) == "sending" &&
			lost.CompareAndSwap(false, true)
	}})
	b := setupOn(t, rdb, withSMS)
	ctx := t.Context()
	b.addCustomers(t,
		customers.Customer{ID: "a", Phone: "+421905111111", Tags: []string{"n"}},
		customers.Customer{ID: "b", Phone: "+421905222222", Tags: []string{"n"}},
	)
	if err := b.engine.HandleLaunch(ctx, launchArgs(smsCampaign("lost", jobs.Audience{Tags: []string{"n"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "lost", "r1", 3, isHoldOrTransient)
	if !lost.Load() {
		t.Fatal("no claim was made to lose its reply")
	}
	for id, entry := range b.ledger(t, "lost", "r1") {
		if !strings.HasPrefix(entry, "sent|") {
			t.Errorf("ledger entry of %s = %q, want sent", id, entry)
		}
	}
	if srv.Count() != 2 {
		t.Errorf("%d SMS sent, want 2 (one each)", srv.Count())
	}
}
