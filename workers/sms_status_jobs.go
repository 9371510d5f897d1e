package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/inbox"
)

// smsStatus applies one Twilio status callback (sms:status) to the
// campaign ledger and, for a final status, to the customer's timeline.
type smsStatus struct {
	customers *customers.Store
	inbox     *inbox.Store
	ledger    deliveryLedger
	log       *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *smsStatus) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var a jobs.SMSStatusArgs
	if err := jobs.Unmarshal(t, &a); err != nil {
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	if h.customers == nil || h.inbox == nil {
		return errNoSMS
	}
	if a.Raw != "" {
		return h.unmatched(ctx, a, "malformed status callback", "request: "+a.Raw)
	}
	customerID, err := h.ledger.RecordDeliveryStatus(ctx, a.MessageSID, a.Status, a.ErrorCode)
	if errors.Is(err, campaigns.ErrUnknownSID) {
		return h.unmatched(ctx, a, "unknown message sid", statusText(a))
	}
	if err != nil {
		return fmt.Errorf("sms status %s %s: %w", a.MessageSID, a.Status, err)
	}
	if customerID == "" || !finalStatus(a.Status) {
		return nil
	}
	ev := customers.Event{At: a.ReceivedAt, Channel: "sms", Kind: "sms.status", Ref: a.MessageSID,
		Text: statusText(a), Key: "status:" + a.MessageSID + ":" + a.Status}
	_, _, err = h.customers.AddEvent(ctx, customerID, ev)
	if errors.Is(err, customers.ErrNotFound) {
		h.log.InfoContext(ctx, "sms status of a deleted customer", "message_sid", a.MessageSID, "customer", customerID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("sms status %s %s: %w", a.MessageSID, a.Status, err)
	}
	return nil
}

// finalStatus reports the statuses that end a message's delivery.
func finalStatus(s string) bool {
	switch s {
	case "delivered", "undelivered", "failed", "canceled", "read":
		return true
	}
	return false
}

// statusText is how a status reads on the timeline and in the inbox.
func statusText(a jobs.SMSStatusArgs) string {
	if a.ErrorCode != "" {
		return a.Status + " (Twilio error " + a.ErrorCode + ")"
	}
	return a.Status
}

// unmatched files a callback that matches no message we sent, once per
// message (later statuses of the same unknown message are only logged).
func (h *smsStatus) unmatched(ctx context.Context, a jobs.SMSStatusArgs, reason, detail string) error {
	e := inbox.Entry{ID: "sms-status:" + a.MessageSID, Kind: inbox.KindUnmatched, Channel: "sms", Ref: a.MessageSID,
		Reason: reason, Detail: detail, At: a.ReceivedAt}
	added, err := h.inbox.Add(ctx, e)
	if err != nil {
		return fmt.Errorf("sms status %s: %w", a.MessageSID, err)
	}
	h.log.WarnContext(ctx, "sms status not matched", "message_sid", a.MessageSID, "status", a.Status, "reason", reason, "filed", added)
	return nil
}
