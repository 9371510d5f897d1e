package workers

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/sms"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// numberSender fails every send the way Twilio does for 21211: its
// message names the number.
type numberSender struct{}

func (numberSender) Send(_ context.Context, m sms.Message) (sms.Result, error) {
	return sms.Result{}, &sms.SendError{Status: 400, Code: 21211, Permanent: true,
		Message: "The 'To' number " + m.To + " is not a valid phone number."}
}

// The error of an sms:inbound task is logged by the middleware and kept
// with the task by asynq; neither it nor the handler's own log lines may
// hold the customer's phone number (the MessageSid identifies the message).
func TestInboundErrorsAndLogsHoldNoPhoneNumber(t *testing.T) {
	t.Parallel()
	const digits = "905111111"
	tests := []struct {
		name     string
		setup    func(h *smsHandlers)
		body     string
		wantErr  bool
		wantFail bool // a help reply filed for staff
	}{
		{"redis down", func(h *smsHandlers) {
			down := redis.NewClient(&redis.Options{Addr: h.rdb.Options().Addr, MaxRetries: -1})
			down.Close()
			h.inbound.customers = customers.New(down, "bo:", customers.Options{DefaultRegion: "SK"})
		}, "hello", true, false},
		{"help reply refused", func(h *smsHandlers) {
			h.inbound.replies = numberSender{}
		}, "HELP", false, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newSMSHandlers(t, twiliotest.Options{})
			var logs syncBuffer
			h.inbound.log = slog.New(slog.NewJSONHandler(&logs, nil))
			tc.setup(h)
			err := h.inbound.ProcessTask(t.Context(), inboundTask(t, sid32(200+i), "+421 905 111 111", tc.body))
			if (err != nil) != tc.wantErr || errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("ProcessTask = %v, want error %v (retried)", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), digits) {
				t.Errorf("task error %q holds the phone number", err)
			}
			if logText(&logs) != "" && strings.Contains(logText(&logs), digits) {
				t.Errorf("log holds the phone number:\n%s", logText(&logs))
			}
			if tc.wantFail {
				e := h.unmatched(t)["sms-reply:"+sid32(200+i)]
				if !strings.Contains(e.Detail, "+421905111111") {
					t.Errorf("inbox entry = %+v, want Twilio's whole message for staff", e)
				}
			}
		})
	}
}

func logText(b *syncBuffer) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
