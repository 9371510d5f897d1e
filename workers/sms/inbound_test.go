package sms

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/jobs"
)

const formType = "application/x-www-form-urlencoded"

func TestReadForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, ctype string
		limit             int64
		want              url.Values
		reason            string
	}{
		{"twilio form", "MessageSid=SM1&Body=Hi+there&From=%2B421900123456", formType + "; charset=utf-8", 100,
			url.Values{"MessageSid": {"SM1"}, "Body": {"Hi there"}, "From": {"+421900123456"}}, ""},
		{"empty body", "", formType, 100, url.Values{}, ""},
		{"exactly the limit", "Body=" + strings.Repeat("a", 95), formType, 100, url.Values{"Body": {strings.Repeat("a", 95)}}, ""},
		{"over the limit", "Body=" + strings.Repeat("a", 96), formType, 100, nil, ReasonTooLarge},
		{"json", `{"Body":"x"}`, "application/json", 100, nil, ReasonContentType},
		{"no content type", "Body=x", "", 100, nil, ReasonContentType},
		{"bad escape", "Body=%zz", formType, 100, nil, ReasonMalformed},
		{"semicolon", "Body=a;b", formType, 100, nil, ReasonMalformed},
		{"repeated parameter", "Body=STOP&Body=hello", formType, 100, nil, ReasonDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadForm(strings.NewReader(tt.body), tt.ctype, tt.limit)
			if tt.reason != "" {
				var fe *FormError
				if !errors.As(err, &fe) || fe.Reason != tt.reason || FormReason(err) != tt.reason {
					t.Fatalf("ReadForm(%q) error = %v, want a FormError with reason %s", tt.body, err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadForm(%q) error = %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadForm(%q) mismatch (-want,+got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestParseInbound(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	const sid = "SM0123456789abcdef0123456789abcdef"
	form := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {"AC0"}, "From": {"+421900123456"}, "To": {"+421233000000"},
		"Body": {"Is my parcel on its way?"}, "NumMedia": {"2"},
		"MediaUrl0": {"https://api.twilio.com/m/0"}, "MediaUrl1": {"https://api.twilio.com/m/1"}, "MediaUrl10": {"ignored"},
	}
	got := ParseInbound(form, "tok-1", now)
	want := jobs.SMSInboundArgs{
		MessageSID: sid, From: "+421900123456", To: "+421233000000", Body: "Is my parcel on its way?", NumMedia: "2",
		MediaURLs:        []string{"https://api.twilio.com/m/0", "https://api.twilio.com/m/1"},
		IdempotencyToken: "tok-1", ReceivedAt: now.UTC(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseInbound mismatch (-want,+got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("ParseInbound(...).Validate() = %v", err)
	}
	if got.TaskID() != "sms:inbound:"+sid {
		t.Errorf("TaskID() = %q, want sms:inbound:%s", got.TaskID(), sid)
	}
}

func TestParseInboundMalformed(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		form url.Values
	}{
		{"no sid", url.Values{"From": {"+421900123456"}, "Body": {"hi"}}},
		{"short sid", url.Values{"MessageSid": {"SM123"}, "Body": {"hi"}}},
		{"call sid", url.Values{"MessageSid": {"CA0123456789abcdef0123456789abcdef"}}},
		{"invalid utf-8", url.Values{"MessageSid": {"SM\xff"}, "Body": {"\xff\xfe"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := ParseInbound(tt.form, "", now)
			if !strings.HasPrefix(a.MessageSID, "!") || a.Raw == "" {
				t.Errorf("ParseInbound(%v) = sid %q raw %q, want a malformed key and the raw form", tt.form, a.MessageSID, a.Raw)
			}
			if err := a.Validate(); err != nil {
				t.Errorf("ParseInbound(%v).Validate() = %v", tt.form, err)
			}
			if again := ParseInbound(tt.form, "", now.Add(time.Hour)); again.TaskID() != a.TaskID() {
				t.Errorf("TaskID of a retried malformed request = %q, first %q: must not change", again.TaskID(), a.TaskID())
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0).UTC()
	const sid = "SM0123456789abcdef0123456789abcdef"
	tests := []struct {
		name       string
		form       url.Values
		wantStatus string
		wantCode   string
		malformed  bool
	}{
		{"delivered", url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered"}}, "delivered", "", false},
		{"failed with code", url.Values{"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"30003"}}, "failed", "30003", false},
		{"legacy names, upper case", url.Values{"SmsSid": {sid}, "SmsStatus": {"UNDELIVERED"}}, "undelivered", "", false},
		{"no status", url.Values{"MessageSid": {sid}}, "malformed", "", true},
		{"bad sid", url.Values{"MessageSid": {"nope"}, "MessageStatus": {"sent"}}, "malformed", "", true},
		{"bad status", url.Values{"MessageSid": {sid}, "MessageStatus": {"de livered"}}, "malformed", "", true},
		{"bad code", url.Values{"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"x"}}, "malformed", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := ParseStatus(tt.form, now)
			if a.Status != tt.wantStatus || a.ErrorCode != tt.wantCode || (a.Raw != "") != tt.malformed {
				t.Errorf("ParseStatus(%v) = %+v, want status %q code %q malformed %v", tt.form, a, tt.wantStatus, tt.wantCode, tt.malformed)
			}
			if err := a.Validate(); err != nil {
				t.Errorf("ParseStatus(%v).Validate() = %v", tt.form, err)
			}
		})
	}
}

// FuzzParseInbound feeds arbitrary webhook bodies through ReadForm,
// ParseInbound and ParseStatus: they must never panic, and every form they
// accept must become a valid task with a stable ID, so that nothing a
// signed request carries is refused at enqueue time.
func FuzzParseInbound(f *testing.F) {
	f.Add("MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B421900123456&To=%2B421233000000&Body=STOP&NumMedia=0")
	f.Add("MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=failed&ErrorCode=30003")
	f.Add("Body=%FF%FE&MediaUrl0=x&MediaUrl9=y")
	f.Add("Body=a&Body=b")
	f.Add("")
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, body string) {
		form, err := ReadForm(strings.NewReader(body), formType, MaxWebhookBody)
		if err != nil {
			return
		}
		in := ParseInbound(form, "tok", now)
		if _, err := jobs.NewTask(in); err != nil {
			t.Fatalf("ParseInbound(%q) gave args that do not make a task: %v", body, err)
		}
		if sid := form.Get("MessageSid"); jobs.ValidMessageSID(sid) && in.MessageSID != sid {
			t.Fatalf("ParseInbound(%q).MessageSID = %q, want %q", body, in.MessageSID, sid)
		}
		if again := ParseInbound(form, "other", now.Add(time.Minute)); again.TaskID() != in.TaskID() {
			t.Fatalf("ParseInbound(%q) task ID unstable: %q then %q", body, in.TaskID(), again.TaskID())
		}
		st := ParseStatus(form, now)
		if _, err := jobs.NewTask(st); err != nil {
			t.Fatalf("ParseStatus(%q) gave args that do not make a task: %v", body, err)
		}
	})
}
