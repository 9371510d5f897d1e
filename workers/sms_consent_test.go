package workers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// A keyword that repeats the customer's current consent is still their
// latest word: an opposite keyword sent before it and handled after it (a
// retried task) must not win.
func TestConsentKeywordsHandledOutOfOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		first string // a keyword already handled at t0
		sent  []string
		want  customers.ConsentStatus
	}{
		// Opted out, then START at 09:00 and STOP at 09:01; the STOP is
		// handled first, the START (retried) last.
		{"stop last", "STOP", []string{"START", "STOP"}, customers.OptedOut},
		{"start last", "START", []string{"STOP", "START"}, customers.OptedIn},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newSMSHandlers(t, twiliotest.Options{})
			task := func(n int, body string, at time.Time) {
				t.Helper()
				tk, err := jobs.NewTask(jobs.SMSInboundArgs{MessageSID: sid32(100*i + n), From: "+421905111111",
					To: "+421233000000", Body: body, ReceivedAt: at})
				if err != nil {
					t.Fatal(err)
				}
				if err := h.inbound.ProcessTask(t.Context(), tk); err != nil {
					t.Fatalf("ProcessTask(%s at %s) = %v", body, at, err)
				}
			}
			task(1, tc.first, t0)
			t1, t2 := t0.Add(time.Hour), t0.Add(time.Hour+time.Minute)
			task(3, tc.sent[1], t2) // the later message is handled first
			task(2, tc.sent[0], t1) // the earlier one after it
			c, err := h.customers.Get(t.Context(), "anna")
			if err != nil {
				t.Fatal(err)
			}
			want := customers.Consent{Status: tc.want, At: t0, Source: "sms:" + tc.first, RepeatedAt: t2}
			if diff := cmp.Diff(want, c.Consent[customers.ChannelSMS]); diff != "" {
				t.Errorf("sms consent, after the customer's last keyword repeated the first (-want,+got):\n%s", diff)
			}
		})
	}
}
