package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

const (
	annaPhone  = "+421905111111"
	borisPhone = "+421905222222"
)

func TestSMSInboundEndToEnd(t *testing.T) {
	t.Parallel()
	b := startSMS(t)
	b.upsert(t, customers.Customer{ID: "anna", Name: "Anna Nováková", Phone: annaPhone, Language: "sk"})

	// A message with a photo lands on Anna's timeline and in the inbox.
	b.text(t, sid(1), annaPhone, "Balík prišiel poškodený", "NumMedia", "1", "MediaUrl0", "https://api.twilio.com/media/ME1")
	waitUntil(t, "the message on anna's timeline", func() bool { return len(b.events(t, "anna", "sms.in", sid(1))) == 1 })
	ev := b.events(t, "anna", "sms.in", sid(1))[0]
	if !strings.Contains(ev.Text, "Balík prišiel poškodený") || !strings.Contains(ev.Text, "https://api.twilio.com/media/ME1") {
		t.Errorf("timeline event text = %q, want the body and the media URL", ev.Text)
	}
	b.idle(t)
	msgs, _ := b.apiInbox(t)
	got, ok := entryIDs(msgs)["sms:"+sid(1)]
	if !ok || got.CustomerID != "anna" || got.Body != "Balík prišiel poškodený" || len(got.MediaURLs) != 1 {
		t.Fatalf("GET /api/inbox messages = %+v, want anna's message with its photo", msgs)
	}

	// Twilio retries the webhook: while the task is kept, and after.
	b.text(t, sid(1), annaPhone, "Balík prišiel poškodený", "NumMedia", "1", "MediaUrl0", "https://api.twilio.com/media/ME1")
	b.deleteTask(t, jobs.QueueCritical, "sms:inbound:"+sid(1))
	b.text(t, sid(1), annaPhone, "Balík prišiel poškodený", "NumMedia", "1", "MediaUrl0", "https://api.twilio.com/media/ME1")
	b.idle(t)
	if n := len(b.events(t, "anna", "sms.in", sid(1))); n != 1 {
		t.Errorf("after two replays anna's timeline has %d entries of %s, want 1", n, sid(1))
	}
	if msgs, _ := b.apiInbox(t); len(msgs) != 1 {
		t.Errorf("after two replays the inbox holds %d messages, want 1", len(msgs))
	}

	// An unknown sender becomes an unknown contact; bad input is kept.
	b.text(t, sid(2), "+421905999999", "Dobrý deň, máte otvorené?")
	b.text(t, sid(3), "not-a-number", "hello")
	b.text(t, sid(4), annaPhone, "")
	b.text(t, sid(5), annaPhone, strings.Repeat("dlhý text ", 200))
	noSID := url.Values{"From": {annaPhone}, "To": {"+421233000000"}, "Body": {"where is my sid"}}
	for range 2 {
		if code, _ := twiliotest.PostSigned(t, b.url+smsPath, b.token, noSID); code != http.StatusOK {
			t.Fatalf("POST without MessageSid = %d, want 200 (kept for staff, not lost)", code)
		}
	}
	b.idle(t)
	stranger, err := b.customers.ByPhone(t.Context(), "+421905999999")
	if err != nil || !stranger.Unknown {
		t.Fatalf("customer by the stranger's phone = %+v, %v; want an unknown contact", stranger, err)
	}
	if n := len(b.events(t, stranger.ID, "sms.in", sid(2))); n != 1 {
		t.Errorf("the unknown contact's timeline has %d entries of its message, want 1", n)
	}
	if n := len(b.events(t, "anna", "sms.in", sid(4))); n != 1 {
		t.Errorf("anna's empty message is on her timeline %d times, want 1", n)
	}
	msgs, unmatched := b.apiInbox(t)
	m, u := entryIDs(msgs), entryIDs(unmatched)
	for id, reason := range map[string]string{"sms:" + sid(2): "unknown sender", "sms:" + sid(4): "empty body"} {
		if m[id].Reason != reason {
			t.Errorf("inbox message %s = %+v, want reason %q", id, m[id], reason)
		}
	}
	for id, reason := range map[string]string{"sms:" + sid(3): "malformed number", "sms:" + sid(5): "oversized body"} {
		if u[id].Reason != reason {
			t.Errorf("inbox unmatched %s = %+v, want reason %q", id, u[id], reason)
		}
	}
	var malformed int
	for _, e := range unmatched {
		if e.Reason == "malformed request" {
			malformed++
			if !strings.Contains(e.Detail, "where+is+my+sid") {
				t.Errorf("malformed request entry detail = %q, want the raw request", e.Detail)
			}
		}
	}
	if malformed != 1 {
		t.Errorf("inbox holds %d malformed-request entries for one request sent twice, want 1: %+v", malformed, unmatched)
	}

	metrics := b.get(t, "/metrics")
	for _, want := range []string{
		`backoffice_inbox_filed_total{kind="unmatched",reason="malformed number"} 1`,
		`backoffice_inbox_filed_total{kind="unmatched",reason="malformed request"} 1`,
		`backoffice_inbox_filed_total{kind="message",reason="empty body"} 1`,
		`backoffice_inbox_open{kind="message"} 3`,
		`backoffice_inbox_open{kind="unmatched"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics lacks %s", want)
		}
	}

	// Staff resolve a message: it leaves the open list.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.url+"/api/inbox/sms:"+sid(1)+"/resolve", nil)
	req.Header.Set("Authorization", "Bearer "+operatorSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/inbox/sms:%s/resolve = %v, %v; want 200", sid(1), resp, err)
	}
	resp.Body.Close()
	if msgs, _ := b.apiInbox(t); entryIDs(msgs)["sms:"+sid(1)].ID != "" {
		t.Errorf("resolved message still open: %+v", msgs)
	}
}

func TestSMSConsentAndCampaignEndToEnd(t *testing.T) {
	t.Parallel()
	b := startSMS(t)
	ctx := t.Context()
	b.upsert(t, customers.Customer{ID: "anna", Phone: annaPhone, Language: "sk", Tags: []string{"sms-news"}})
	b.upsert(t, customers.Customer{ID: "boris", Phone: borisPhone, Language: "en", Tags: []string{"sms-news"}})
	camp := jobs.Campaign{Name: "spring", Channel: jobs.ChannelSMS, Template: "promo", RatePerSecond: 100,
		Timezone: "Europe/Bratislava", Audience: jobs.Audience{Tags: []string{"sms-news"}}}

	// The run is planned and its chunks are queued before Anna says stop.
	b.launchPlanned(t, ctx, camp, "r1")
	b.text(t, sid(10), annaPhone, " stop ")
	waitUntil(t, "anna opted out", func() bool { return b.consent(t, "anna") == customers.OptedOut })
	if n := len(b.events(t, "anna", "consent.opt_out", "")); n != 1 {
		t.Errorf("anna's timeline has %d consent.opt_out events, want 1", n)
	}
	b.startWorkers(t, map[string]int{jobs.QueueCampaigns: 1})
	b.waitFinished(t, "spring", "r1")
	if e := b.entry(t, "spring", "r1", "anna"); e.State != campaigns.EntrySkipped || e.Detail != campaigns.ReasonOptedOut {
		t.Errorf("r1 ledger for anna = %+v, want skipped, opted_out", e)
	}
	if e := b.entry(t, "spring", "r1", "boris"); e.State != campaigns.EntrySent {
		t.Errorf("r1 ledger for boris = %+v, want sent", e)
	}
	if got := b.sentTo(annaPhone); len(got) != 0 {
		t.Fatalf("twilio got %d messages for anna after STOP, want none", len(got))
	}

	// START: the next run reaches her again.
	b.text(t, sid(11), annaPhone, "Start")
	waitUntil(t, "anna opted in", func() bool { return b.consent(t, "anna") == customers.OptedIn })
	if _, err := b.engine.Launch(ctx, camp, "r2", "manual"); err != nil {
		t.Fatal(err)
	}
	b.waitFinished(t, "spring", "r2")
	annaSIDs, borisSIDs := b.sentTo(annaPhone), b.sentTo(borisPhone)
	if len(annaSIDs) != 1 || len(borisSIDs) != 2 {
		t.Fatalf("twilio messages: anna %d, boris %d; want 1 and 2", len(annaSIDs), len(borisSIDs))
	}
	if e := b.entry(t, "spring", "r2", "anna"); e.State != campaigns.EntrySent {
		t.Errorf("r2 ledger for anna = %+v, want sent", e)
	}
	if n := len(b.events(t, "anna", "sms.in", "")); n != 2 {
		t.Errorf("anna's timeline has %d sms.in events, want 2 (STOP and START)", n)
	}
	if msgs, _ := b.apiInbox(t); len(msgs) != 0 {
		t.Errorf("keywords reached the staff inbox: %+v", msgs)
	}

	// Delivery reports move the ledger entries, through the signed webhook.
	borisR1 := b.entry(t, "spring", "r1", "boris").Detail
	for _, st := range []string{"sent", "delivered", "delivered"} {
		if code := twiliotest.SendStatusCallback(t, b.url+statusPath, b.token, borisR1, st, 0); code != http.StatusOK {
			t.Fatalf("status callback %s = %d", st, code)
		}
	}
	if code := twiliotest.SendStatusCallback(t, b.url+statusPath, b.token, annaSIDs[0], "undelivered", 30003); code != http.StatusOK {
		t.Fatalf("status callback undelivered = %d", code)
	}
	waitUntil(t, "boris delivered, anna undelivered", func() bool {
		return b.entry(t, "spring", "r1", "boris").State == campaigns.EntryDelivered &&
			b.entry(t, "spring", "r2", "anna").State == campaigns.EntryUndelivered
	})
	if e := b.entry(t, "spring", "r2", "anna"); e.Code() != "30003" {
		t.Errorf("r2 ledger for anna = %+v, want error code 30003", e)
	}
	b.idle(t)
	if evs := b.events(t, "boris", "sms.status", borisR1); len(evs) != 1 || evs[0].Text != "delivered" {
		t.Errorf("boris's timeline status events = %+v, want one \"delivered\"", evs)
	}
	if evs := b.events(t, "anna", "sms.status", annaSIDs[0]); len(evs) != 1 || evs[0].Text != "undelivered (Twilio error 30003)" {
		t.Errorf("anna's timeline status events = %+v, want one undelivered with its code", evs)
	}

	// A report for a message no campaign sent is kept for staff, once.
	for range 2 {
		twiliotest.SendStatusCallback(t, b.url+statusPath, b.token, sid(999), "delivered", 0)
	}
	twiliotest.SendStatusCallback(t, b.url+statusPath, b.token, sid(999), "failed", 30008)
	b.idle(t)
	_, unmatched := b.apiInbox(t)
	if e := entryIDs(unmatched)["sms-status:"+sid(999)]; e.Reason != "unknown message sid" || len(unmatched) != 1 {
		t.Errorf("inbox unmatched = %+v, want one unknown-sid entry for %s", unmatched, sid(999))
	}
}

func TestSMSHelpEndToEnd(t *testing.T) {
	t.Parallel()
	b := startSMS(t)
	b.upsert(t, customers.Customer{ID: "anna", Name: "Anna Nováková", Phone: annaPhone, Language: "sk"})
	b.upsert(t, customers.Customer{ID: "boris", Phone: borisPhone, Language: "en",
		Consent: map[customers.Channel]customers.Consent{customers.ChannelSMS: {Status: customers.OptedOut, At: time.Now(), Source: "test"}}})

	b.text(t, sid(20), annaPhone, "HELP")
	waitUntil(t, "a reply in the outbox", func() bool { return len(b.outboxLines(t)) == 1 })
	want, err := b.templates.RenderSMS("help", "sk", templates.Data{Customer: templates.CustomerData{
		ID: "anna", Name: "Anna Nováková", Phone: annaPhone, Language: "sk"}})
	if err != nil {
		t.Fatal(err)
	}
	line := b.outboxLines(t)[0]
	if line.To != annaPhone || line.Body != want.Body {
		t.Errorf("outbox line = %+v, want the Slovak help text %q to anna", line, want.Body)
	}
	b.idle(t)
	if evs := b.events(t, "anna", "sms.out", line.SID); len(evs) != 1 {
		t.Errorf("anna's timeline has %d sms.out events of the reply, want 1", len(evs))
	}

	// A retried webhook after the task is gone does not answer twice.
	b.deleteTask(t, jobs.QueueCritical, "sms:inbound:"+sid(20))
	b.text(t, sid(20), annaPhone, "HELP")
	// INFO from a stranger is answered in the fallback language; HELP from
	// a customer who opted out is not answered, as Twilio does.
	b.text(t, sid(21), "+421905999999", "info")
	b.text(t, sid(22), borisPhone, "help")
	b.idle(t)
	lines := b.outboxLines(t)
	if len(lines) != 2 {
		t.Fatalf("outbox holds %d lines, want 2 (anna once, the stranger): %+v", len(lines), lines)
	}
	en, err := b.templates.RenderSMS("help", "en", templates.Data{Customer: templates.CustomerData{Phone: "+421905999999"}})
	if err != nil {
		t.Fatal(err)
	}
	if lines[1].To != "+421905999999" || lines[1].Body != en.Body {
		t.Errorf("second outbox line = %+v, want the English help to the stranger", lines[1])
	}
	if msgs, unmatched := b.apiInbox(t); len(msgs)+len(unmatched) != 0 {
		t.Errorf("HELP reached the staff inbox: %+v %+v", msgs, unmatched)
	}
}
