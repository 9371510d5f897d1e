package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/inbox"
	"github.com/shopworks/backoffice/workers/redistest"
	"github.com/shopworks/backoffice/workers/sms"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// smsHandlers are the sms:* handlers on real Redis, called directly (one
// attempt per call, as asynq would make them).
type smsHandlers struct {
	rdb       *redis.Client
	customers *customers.Store
	inbox     *inbox.Store
	messages  *sms.InboundStore
	twilio    *twiliotest.Server
	inbound   *smsInbound
	status    *smsStatus
}

func newSMSHandlers(t *testing.T, tw twiliotest.Options) *smsHandlers {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	h := &smsHandlers{rdb: rdb, customers: customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"}),
		inbox: inbox.New(rdb, "bo:"), messages: sms.NewInboundStore(rdb, "bo:"), twilio: twiliotest.Start(t, tw)}
	sender, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: h.twilio.AccountSID, AuthToken: h.twilio.AuthToken,
		From: "+421233000000", APIURL: h.twilio.URL})
	if err != nil {
		t.Fatal(err)
	}
	set, err := templates.Load(templates.Options{FallbackLanguage: "en", Shop: templates.ShopData{Name: "Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	h.inbound = &smsInbound{customers: h.customers, inbox: h.inbox, messages: h.messages, replies: sender, templates: set, log: log}
	h.status = &smsStatus{customers: h.customers, inbox: h.inbox, ledger: campaigns.NewLedger(rdb, "bo:"), log: log}
	if _, err := h.customers.Upsert(t.Context(), customers.Customer{ID: "anna", Phone: "+421905111111", Language: "sk"}); err != nil {
		t.Fatal(err)
	}
	return h
}

func inboundTask(t *testing.T, sid, from, body string) *asynq.Task {
	t.Helper()
	task, err := jobs.NewTask(jobs.SMSInboundArgs{MessageSID: sid, From: from, To: "+421233000000", Body: body,
		ReceivedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// unmatched returns the open unmatched entries of the inbox by id.
func (h *smsHandlers) unmatched(t *testing.T) map[string]inbox.Entry {
	t.Helper()
	return h.open(t, inbox.KindUnmatched)
}

// open returns the open inbox entries of kind by id.
func (h *smsHandlers) open(t *testing.T, kind inbox.Kind) map[string]inbox.Entry {
	t.Helper()
	es, err := h.inbox.Open(t.Context(), kind, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]inbox.Entry{}
	for _, e := range es {
		m[e.ID] = e
	}
	return m
}

func TestHelpReplyRetriedAfterTransientFailure(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{Fail: func(n int, _ string) (int, int, string) {
		if n == 1 {
			return http.StatusInternalServerError, 0, ""
		}
		return 0, 0, ""
	}})
	task := inboundTask(t, sid32(1), "+421905111111", "HELP")
	if err := h.inbound.ProcessTask(t.Context(), task); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("first attempt (Twilio 500) = %v, want an error asynq retries", err)
	}
	if err := h.inbound.ProcessTask(t.Context(), task); err != nil {
		t.Fatalf("second attempt = %v, want the reply sent", err)
	}
	if err := h.inbound.ProcessTask(t.Context(), task); err != nil {
		t.Fatalf("third attempt (a late retry) = %v", err)
	}
	if n := h.twilio.Count(); n != 1 {
		t.Errorf("twilio accepted %d replies, want 1", n)
	}
	m, err := h.messages.Get(t.Context(), sid32(1))
	if err != nil || m.ReplySID != h.twilio.Messages()[0].SID {
		t.Errorf("incoming message record = %+v, %v; want the reply's SID", m, err)
	}
}

func TestHelpReplyPermanentFailureGoesToInbox(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{OptedOut: []string{"+421905111111"}})
	if err := h.inbound.ProcessTask(t.Context(), inboundTask(t, sid32(2), "+421905111111", "info")); err != nil {
		t.Fatalf("ProcessTask = %v, want the failure recorded, not retried", err)
	}
	e, ok := h.unmatched(t)["sms-reply:"+sid32(2)]
	if !ok || e.Reason != "help reply failed" || !strings.Contains(e.Detail, "21610") {
		t.Errorf("inbox unmatched = %+v, want the failed help reply with Twilio's 21610", h.unmatched(t))
	}
}

func TestHelpReplyInDoubtIsNotResent(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{})
	// An earlier attempt claimed the reply and crashed before recording it.
	if _, err := h.messages.ClaimReply(t.Context(), sid32(3)); err != nil {
		t.Fatal(err)
	}
	if err := h.inbound.ProcessTask(t.Context(), inboundTask(t, sid32(3), "+421905111111", "help")); err != nil {
		t.Fatalf("ProcessTask = %v", err)
	}
	if n := h.twilio.Count(); n != 0 {
		t.Errorf("twilio got %d messages, want none: the reply may have gone out already", n)
	}
	if e := h.unmatched(t)["sms-reply:"+sid32(3)]; !strings.Contains(e.Detail, "in doubt") {
		t.Errorf("inbox entry = %+v, want the reply reported in doubt for staff", e)
	}
}

// A HELP reply whose request reached Twilio without an answer, or whose
// answer could not be read, is never sent again: the first goes to staff
// as in doubt, the second counts as answered.
func TestHelpReplyBrokenTwilioAnswersAreNotResent(t *testing.T) {
	t.Parallel()
	for i, fault := range []twiliotest.Fault{twiliotest.DropAfterCreate, twiliotest.TruncatedJSON} {
		h := newSMSHandlers(t, twiliotest.Options{Fault: func(int, string) twiliotest.Fault { return fault }})
		sid := sid32(40 + i)
		task := inboundTask(t, sid, "+421905111111", "HELP")
		for range 3 { // asynq's retries, had the attempt failed
			if err := h.inbound.ProcessTask(t.Context(), task); err != nil {
				t.Fatalf("fault %d: ProcessTask = %v, want no retry", fault, err)
			}
		}
		if n := h.twilio.Count(); n != 1 {
			t.Errorf("fault %d: twilio created %d replies, want 1", fault, n)
		}
		e, inDoubt := h.unmatched(t)["sms-reply:"+sid]
		if fault == twiliotest.DropAfterCreate && (!inDoubt || !strings.Contains(e.Detail, "in doubt")) {
			t.Errorf("no answer: inbox %+v, want the reply reported in doubt for staff", h.unmatched(t))
		}
		if fault == twiliotest.TruncatedJSON && inDoubt {
			t.Errorf("accepted: inbox entry %+v, want none (the reply went out)", e)
		}
	}
}

// "Stop!" opts the customer out, recorded with the keyword as its source.
func TestStopWithPunctuationOptsOut(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{})
	if err := h.inbound.ProcessTask(t.Context(), inboundTask(t, sid32(50), "+421905111111", " Stop! ")); err != nil {
		t.Fatal(err)
	}
	c, err := h.customers.Get(t.Context(), "anna")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Consent[customers.ChannelSMS]; got.Status != customers.OptedOut || got.Source != "sms:STOP" {
		t.Errorf("sms consent = %+v, want opted out from sms:STOP", got)
	}
}

// TestYesAnswerReachesStaff: an opt-in keyword from a customer who had not
// opted out is an answer ("Yes" to "shall we ship the replacement?"): it
// is recorded as the opt-in and goes to staff too. After a STOP, START is
// a return, and staff are not bothered.
func TestYesAnswerReachesStaff(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{})
	messages := func() map[string]inbox.Entry { t.Helper(); return h.open(t, inbox.KindMessage) }
	consent := func() customers.Consent {
		t.Helper()
		c, err := h.customers.Get(t.Context(), "anna")
		if err != nil {
			t.Fatal(err)
		}
		return c.Consent[customers.ChannelSMS]
	}
	for range 2 { // a retried task files it once
		if err := h.inbound.ProcessTask(t.Context(), inboundTask(t, sid32(60), "+421905111111", "Yes")); err != nil {
			t.Fatal(err)
		}
	}
	if e, ok := messages()["sms:"+sid32(60)]; !ok || e.Body != "Yes" || e.CustomerID != "anna" || !strings.Contains(e.Detail, "opt-in") {
		t.Errorf("inbox after a Yes from a customer who never opted out = %+v, want the message for staff", messages())
	}
	if got := consent(); got.Status != customers.OptedIn || got.Source != "sms:YES" {
		t.Errorf("sms consent after Yes = %+v, want opted in from sms:YES", got)
	}

	if err := h.inbound.ProcessTask(t.Context(), inboundTask(t, sid32(61), "+421905111111", "STOP")); err != nil {
		t.Fatal(err)
	}
	task, err := jobs.NewTask(jobs.SMSInboundArgs{MessageSID: sid32(62), From: "+421905111111", To: "+421233000000",
		Body: "START", ReceivedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.inbound.ProcessTask(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	if got := consent(); got.Status != customers.OptedIn || got.Source != "sms:START" {
		t.Errorf("sms consent after STOP, START = %+v, want opted in from sms:START", got)
	}
	if len(messages()) != 1 {
		t.Errorf("inbox after STOP, START = %+v, want only the Yes: a return from STOP needs no one", messages())
	}
}

func TestHelpWithoutSenderGoesToInbox(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{})
	h.inbound.replies = nil
	if err := h.inbound.ProcessTask(t.Context(), inboundTask(t, sid32(4), "+421905111111", "HELP")); err != nil {
		t.Fatalf("ProcessTask = %v", err)
	}
	if e := h.unmatched(t)["sms-reply:"+sid32(4)]; e.Reason != "help reply failed" {
		t.Errorf("inbox unmatched = %+v, want the unanswered HELP", h.unmatched(t))
	}
}

func TestInboundRejectsUndecodableTask(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{})
	for _, payload := range []string{`{`, `{"message_sid":"nope","received_at":"2026-03-01T09:00:00Z"}`} {
		err := h.inbound.ProcessTask(t.Context(), asynq.NewTask(jobs.KindSMSInbound, []byte(payload)))
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("ProcessTask(%s) = %v, want SkipRetry", payload, err)
		}
	}
	err := h.status.ProcessTask(t.Context(), asynq.NewTask(jobs.KindSMSStatus, []byte(`{"message_sid":1}`)))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("status ProcessTask(bad payload) = %v, want SkipRetry", err)
	}
}

func TestInboundWithoutStoresFails(t *testing.T) {
	t.Parallel()
	in := &smsInbound{}
	if err := in.ProcessTask(t.Context(), inboundTask(t, sid32(5), "+421905111111", "hi")); !errors.Is(err, errNoSMS) {
		t.Errorf("ProcessTask without stores = %v, want errNoSMS (retried once the daemon is fixed)", err)
	}
}

// failingLedger is a campaign ledger whose Redis is down.
type failingLedger struct{}

func (failingLedger) RecordDeliveryStatus(context.Context, string, string, string) (string, error) {
	return "", errors.New("redis: connection refused")
}

func TestStatusTransientLedgerErrorIsRetried(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{})
	h.status.ledger = failingLedger{}
	task, err := jobs.NewTask(jobs.SMSStatusArgs{MessageSID: sid32(6), Status: "delivered", ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.status.ProcessTask(t.Context(), task); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask with the ledger down = %v, want an error asynq retries", err)
	}
	if len(h.unmatched(t)) != 0 {
		t.Errorf("a transient failure was filed as unmatched: %+v", h.unmatched(t))
	}
}

func TestStatusMalformedCallbackGoesToInbox(t *testing.T) {
	t.Parallel()
	h := newSMSHandlers(t, twiliotest.Options{})
	key := jobs.MalformedSMSKey("MessageStatus=delivered")
	task, err := jobs.NewTask(jobs.SMSStatusArgs{MessageSID: key, Status: "malformed", Raw: "MessageStatus=delivered", ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.status.ProcessTask(t.Context(), task); err != nil {
		t.Fatalf("ProcessTask = %v", err)
	}
	if e := h.unmatched(t)["sms-status:"+key]; e.Reason != "malformed status callback" || !strings.Contains(e.Detail, "MessageStatus=delivered") {
		t.Errorf("inbox unmatched = %+v, want the malformed callback with its raw form", h.unmatched(t))
	}
}

func sid32(n int) string { return fmt.Sprintf("SM%032x", n) }
