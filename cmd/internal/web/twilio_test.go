package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/sms"
)

// The Twilio account of the webhook tests. Twilio calls the public URL; the
// test server sits behind it on another address, as behind a proxy.
const (
	twilioToken = "twilio-auth-token-0123456789abcdef"
	publicURL   = "https://shop.example.com"
	smsPath     = "/webhooks/twilio/sms"
	statusPath  = "/webhooks/twilio/status"
	emptyTwiML  = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`
)

func withTwilio(o *web.Options) {
	o.TwilioAuthToken = twilioToken
	o.PublicURL = publicURL
}

func inboundForm(sid, from, body string) url.Values {
	return url.Values{"MessageSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {"AC0123"},
		"From": {from}, "To": {"+421233000000"}, "Body": {body}, "NumMedia": {"0"}}
}

// postSigned posts form to path, signed for signURL with token (no
// signature header when token is empty), and returns status and body.
func (b *bundle) postSigned(t *testing.T, path, signURL, token string, form url.Values, header ...string) (int, string) {
	t.Helper()
	h := append([]string{"Content-Type", "application/x-www-form-urlencoded"}, header...)
	if token != "" {
		h = append(h, sms.SignatureHeader, sms.Sign(token, signURL, form))
	}
	resp, body := b.call(t, "POST", path, "", strings.NewReader(form.Encode()), h...)
	return resp.StatusCode, string(body)
}

func TestTwilioInboundWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t, withTwilio)
	const sid = "SM0123456789abcdef0123456789abcdef"
	form := inboundForm(sid, "+421905123456", "Where is my parcel?")
	form.Set("NumMedia", "1")
	form.Set("MediaUrl0", "https://api.twilio.com/media/ME1")
	code, body := b.postSigned(t, smsPath, publicURL+smsPath, twilioToken, form, sms.IdempotencyHeader, "idem-1")
	if code != http.StatusOK || body != emptyTwiML {
		t.Fatalf("POST %s = %d %q, want 200 and empty TwiML", smsPath, code, body)
	}
	info, err := b.inspector.GetTaskInfo(jobs.QueueCritical, "sms:inbound:"+sid)
	if err != nil {
		t.Fatalf("no sms:inbound task in queue critical: %v", err)
	}
	var got jobs.SMSInboundArgs
	if err := json.Unmarshal(info.Payload, &got); err != nil {
		t.Fatal(err)
	}
	want := jobs.SMSInboundArgs{MessageSID: sid, From: "+421905123456", To: "+421233000000", Body: "Where is my parcel?",
		NumMedia: "1", MediaURLs: []string{"https://api.twilio.com/media/ME1"}, IdempotencyToken: "idem-1"}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(jobs.SMSInboundArgs{}, "ReceivedAt")); diff != "" {
		t.Errorf("task payload (-want,+got):\n%s", diff)
	}
	if time.Since(got.ReceivedAt) > time.Minute {
		t.Errorf("ReceivedAt = %v, want about now", got.ReceivedAt)
	}

	// Twilio retries: same request again, answered 200, still one task.
	code, _ = b.postSigned(t, smsPath, publicURL+smsPath, twilioToken, form, sms.IdempotencyHeader, "idem-1")
	if code != http.StatusOK {
		t.Fatalf("replayed POST = %d, want 200", code)
	}
	if q, err := b.inspector.GetQueueInfo(jobs.QueueCritical); err != nil || q.Size != 1 {
		t.Errorf("queue critical after a replay: %+v, %v; want exactly 1 task", q, err)
	}
	b.wantMetrics(t,
		`backoffice_twilio_webhooks_received_total{hook="sms"} 2`,
		`backoffice_twilio_webhooks_accepted_total{hook="sms",outcome="enqueued"} 1`,
		`backoffice_twilio_webhooks_accepted_total{hook="sms",outcome="replay"} 1`)
}

func TestTwilioWebhookRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, withTwilio)
	const sid = "SM00000000000000000000000000000001"
	form := inboundForm(sid, "+421905123456", "STOP")
	tampered := inboundForm(sid, "+421905123456", "START")
	tests := []struct {
		name    string
		path    string
		signURL string
		token   string
		form    url.Values
		sendAs  url.Values // body actually sent, when it differs from what was signed
		ctype   string
		want    int
		reason  string
	}{
		{name: "tampered body", path: smsPath, signURL: publicURL + smsPath, token: twilioToken, form: form, sendAs: tampered, want: 403, reason: "bad_signature"},
		{name: "wrong URL", path: smsPath, signURL: "https://evil.example.com" + smsPath, token: twilioToken, form: form, want: 403, reason: "bad_signature"},
		{name: "signed for the other hook", path: smsPath, signURL: publicURL + statusPath, token: twilioToken, form: form, want: 403, reason: "bad_signature"},
		{name: "wrong token", path: smsPath, signURL: publicURL + smsPath, token: "not-the-token", form: form, want: 403, reason: "bad_signature"},
		{name: "missing header", path: smsPath, form: form, want: 403, reason: "missing_signature"},
		{name: "json body", path: smsPath, signURL: publicURL + smsPath, token: twilioToken, form: form, ctype: "application/json", want: 415, reason: "content_type"},
		{name: "repeated parameter", path: smsPath, signURL: publicURL + smsPath, token: twilioToken,
			form: url.Values{"MessageSid": {sid}, "Body": {"STOP", "hello"}}, want: 400, reason: "duplicate_param"},
		{name: "status tampered", path: statusPath, signURL: publicURL + statusPath, token: twilioToken,
			form: url.Values{"MessageSid": {sid}, "MessageStatus": {"failed"}}, sendAs: url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered"}}, want: 403, reason: "bad_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{"Content-Type", "application/x-www-form-urlencoded"}
			if tt.ctype != "" {
				h[1] = tt.ctype
			}
			if tt.token != "" {
				h = append(h, sms.SignatureHeader, sms.Sign(tt.token, tt.signURL, tt.form))
			}
			sent := tt.form
			if tt.sendAs != nil {
				sent = tt.sendAs
			}
			resp, _ := b.call(t, "POST", tt.path, "", strings.NewReader(sent.Encode()), h...)
			if resp.StatusCode != tt.want {
				t.Errorf("POST %s (%s) = %d, want %d", tt.path, tt.name, resp.StatusCode, tt.want)
			}
		})
	}
	big := inboundForm(sid, "+421905123456", strings.Repeat("x", sms.MaxWebhookBody))
	if code, _ := b.postSigned(t, smsPath, publicURL+smsPath, twilioToken, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST of %d bytes = %d, want 413", len(big.Encode()), code)
	}
	if q, err := b.inspector.GetQueueInfo(jobs.QueueCritical); err == nil && q.Size != 0 {
		t.Errorf("queue critical holds %d tasks after refused requests, want none", q.Size)
	}
	b.wantMetrics(t,
		`backoffice_twilio_webhooks_rejected_total{hook="sms",reason="bad_signature"} 4`,
		`backoffice_twilio_webhooks_rejected_total{hook="sms",reason="missing_signature"} 1`,
		`backoffice_twilio_webhooks_rejected_total{hook="sms",reason="content_type"} 1`,
		`backoffice_twilio_webhooks_rejected_total{hook="sms",reason="duplicate_param"} 1`,
		`backoffice_twilio_webhooks_rejected_total{hook="sms",reason="too_large"} 1`,
		`backoffice_twilio_webhooks_rejected_total{hook="status",reason="bad_signature"} 1`)
	if logs := b.logs.String(); strings.Contains(logs, twilioToken) || strings.Contains(logs, sms.Sign(twilioToken, publicURL+smsPath, form)) {
		t.Errorf("logs hold the auth token or a signature:\n%s", logs)
	}
}

func TestTwilioStatusWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t, withTwilio)
	const sid = "SM0123456789abcdef0123456789abcdef"
	for _, st := range []string{"sent", "failed", "failed"} {
		form := url.Values{"MessageSid": {sid}, "MessageStatus": {st}, "AccountSid": {"AC0123"}}
		if st == "failed" {
			form.Set("ErrorCode", "30003")
		}
		if code, body := b.postSigned(t, statusPath, publicURL+statusPath, twilioToken, form); code != http.StatusOK || body != emptyTwiML {
			t.Fatalf("POST %s (%s) = %d %q, want 200", statusPath, st, code, body)
		}
	}
	info, err := b.inspector.GetTaskInfo(jobs.QueueDefault, "sms:status:"+sid+":failed")
	if err != nil {
		t.Fatalf("no sms:status task for failed: %v", err)
	}
	var got jobs.SMSStatusArgs
	if err := json.Unmarshal(info.Payload, &got); err != nil {
		t.Fatal(err)
	}
	if got.MessageSID != sid || got.Status != "failed" || got.ErrorCode != "30003" {
		t.Errorf("status task payload = %+v, want %s failed 30003", got, sid)
	}
	if q, err := b.inspector.GetQueueInfo(jobs.QueueDefault); err != nil || q.Size != 2 {
		t.Errorf("queue default: %+v, %v; want 2 tasks (sent, failed once)", q, err)
	}
}

func TestTwilioWebhookWithoutToken(t *testing.T) {
	t.Parallel()
	b := setup(t) // no BACKOFFICE_TWILIO_AUTH_TOKEN
	form := inboundForm("SM0123456789abcdef0123456789abcdef", "+421905123456", "hi")
	if code, _ := b.postSigned(t, smsPath, "http://anything"+smsPath, "any-token", form); code != http.StatusServiceUnavailable {
		t.Errorf("POST %s without a configured token = %d, want 503", smsPath, code)
	}
	if !strings.Contains(b.logs.String(), "BACKOFFICE_TWILIO_AUTH_TOKEN is not set") {
		t.Errorf("no log line says the auth token is missing:\n%s", b.logs.String())
	}
}

func TestTwilioWebhookRedisDown(t *testing.T) {
	t.Parallel()
	b := setup(t, withTwilio)
	b.redis.Stop()
	form := inboundForm("SM0123456789abcdef0123456789abcdef", "+421905123456", "hi")
	if code, _ := b.postSigned(t, smsPath, publicURL+smsPath, twilioToken, form); code != http.StatusServiceUnavailable {
		t.Errorf("POST %s with Redis down = %d, want 503 so that Twilio retries", smsPath, code)
	}
}

// wantMetrics checks that GET /metrics has every line of want.
func (b *bundle) wantMetrics(t *testing.T, want ...string) {
	t.Helper()
	resp, raw := b.call(t, "GET", "/metrics", viewerSecret, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	for _, w := range want {
		if !strings.Contains(string(raw), w) {
			t.Errorf("GET /metrics lacks %s", w)
		}
	}
	if t.Failed() {
		t.Logf("GET /metrics:\n%s", raw)
	}
}
