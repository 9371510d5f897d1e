package jobs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSMSArgsValidate(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	const sid = "SM0123456789abcdef0123456789abcdef"
	malformed := MalformedSMSKey("Body=hi")
	tests := []struct {
		name  string
		args  Args
		field string // "" when valid
	}{
		{"inbound", SMSInboundArgs{MessageSID: sid, From: "+421905111111", Body: "hi", ReceivedAt: at}, ""},
		{"inbound mms", SMSInboundArgs{MessageSID: "MM" + sid[2:], MediaURLs: []string{"https://x"}, ReceivedAt: at}, ""},
		{"inbound malformed key", SMSInboundArgs{MessageSID: malformed, Raw: "Body=hi", ReceivedAt: at}, ""},
		{"inbound no sid", SMSInboundArgs{ReceivedAt: at}, "message_sid"},
		{"inbound call sid", SMSInboundArgs{MessageSID: "CA" + sid[2:], ReceivedAt: at}, "message_sid"},
		{"inbound body too long", SMSInboundArgs{MessageSID: sid, Body: strings.Repeat("x", MaxSMSField+1), ReceivedAt: at}, "body"},
		{"inbound body not utf-8", SMSInboundArgs{MessageSID: sid, Body: "\xff", ReceivedAt: at}, "body"},
		{"inbound 11 media", SMSInboundArgs{MessageSID: sid, MediaURLs: make([]string, 11), ReceivedAt: at}, "media_urls"},
		{"inbound media not utf-8", SMSInboundArgs{MessageSID: sid, MediaURLs: []string{"ok", "\xff"}, ReceivedAt: at}, "media_urls[1]"},
		{"inbound no time", SMSInboundArgs{MessageSID: sid}, "received_at"},
		{"status", SMSStatusArgs{MessageSID: sid, Status: "failed", ErrorCode: "30003", ReceivedAt: at}, ""},
		{"status no status", SMSStatusArgs{MessageSID: sid, ReceivedAt: at}, "status"},
		{"status long code", SMSStatusArgs{MessageSID: sid, Status: "failed", ErrorCode: strings.Repeat("1", 17), ReceivedAt: at}, "error_code"},
		{"status bad sid", SMSStatusArgs{MessageSID: "SMx", Status: "sent", ReceivedAt: at}, "message_sid"},
	}
	for _, tt := range tests {
		err := tt.args.Validate()
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s: Validate() = %v, want a FieldError for %s", tt.name, err, tt.field)
		}
	}
}

func TestSMSTaskIDsAndSpecs(t *testing.T) {
	t.Parallel()
	const sid = "SM0123456789abcdef0123456789abcdef"
	in := SMSInboundArgs{MessageSID: sid, ReceivedAt: time.Now()}
	if got := in.TaskID(); got != "sms:inbound:"+sid {
		t.Errorf("inbound TaskID() = %q", got)
	}
	st := SMSStatusArgs{MessageSID: sid, Status: "delivered", ReceivedAt: time.Now()}
	if got := st.TaskID(); got != "sms:status:"+sid+":delivered" {
		t.Errorf("status TaskID() = %q", got)
	}
	for kind, queue := range map[string]string{KindSMSInbound: QueueCritical, KindSMSStatus: QueueDefault} {
		spec, ok := Lookup(kind)
		if !ok || spec.Queue != queue || spec.Retention <= 0 {
			t.Errorf("Lookup(%s) = %+v, %v; want queue %s with a retention (replays are conflicts)", kind, spec, ok, queue)
		}
	}
	if a, b := MalformedSMSKey("x=1"), MalformedSMSKey("x=1"); a != b || a == MalformedSMSKey("x=2") {
		t.Errorf("MalformedSMSKey is not a stable digest: %q %q", a, b)
	}
	if _, err := Decode(KindSMSInbound, []byte(`{"message_sid":"`+sid+`","received_at":"2026-03-01T09:00:00Z","extra":1}`)); err == nil {
		t.Error("Decode with an unknown field = nil error, want one naming it")
	}
}
