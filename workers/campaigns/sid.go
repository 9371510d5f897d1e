package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultSIDTTL is how long a sent SMS's delivery report is accepted.
const DefaultSIDTTL = 30 * 24 * time.Hour

// sidRef is what the SID index stores: where a Twilio message's ledger
// entry lives, and its customer (empty for a file recipient who is not one).
type sidRef struct {
	campaign, run, recipient, customer string
}

func (r sidRef) String() string {
	return r.campaign + "\n" + r.run + "\n" + r.recipient + "\n" + r.customer
}

// indexSID remembers which ledger entry the Twilio message sid belongs to.
func (s *Store) indexSID(ctx context.Context, sid string, ref sidRef, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.keys.sid(sid), ref.String(), ttl).Err(); err != nil {
		return fmt.Errorf("campaign %s run %s: index sms sid %s: %w", ref.campaign, ref.run, sid, err)
	}
	return nil
}

// failedInDoubt admits, as the state a transition starts from, a failed
// entry whose code is in_doubt (see transitionScript).
const failedInDoubt = EntryFailed + ":" + codeInDoubt

// RecordDeliveryStatus applies a Twilio status callback to the ledger entry
// of the message: "delivered", "undelivered" and "failed" (and "canceled",
// recorded as failed) move a sent entry, or one recorded failed as in
// doubt; the intermediate statuses
// (queued, sending, sent, ...) change nothing. Repeated callbacks are
// harmless. It returns the customer the message went to ("" for a file
// recipient who is not a customer), and ErrUnknownSID when no campaign
// sent messageSID.
func (l *Ledger) RecordDeliveryStatus(ctx context.Context, messageSID, status, errorCode string) (customerID string, err error) {
	s := l.store
	v, err := s.rdb.Get(ctx, s.keys.sid(messageSID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("campaigns: delivery status %s for %s: %w", status, messageSID, ErrUnknownSID)
	}
	if err != nil {
		return "", fmt.Errorf("campaigns: delivery status for %s: read sid index: %w", messageSID, err)
	}
	parts := strings.SplitN(v, "\n", 4)
	if len(parts) != 4 {
		return "", fmt.Errorf("campaigns: delivery status for %s: corrupt sid index %q", messageSID, v)
	}
	ref := sidRef{campaign: parts[0], run: parts[1], recipient: parts[2], customer: parts[3]}
	// An SMS recorded as failed because nobody knew whether it left (the
	// daemon stopped while sending it) did leave when its report arrives:
	// the report settles it, and retry-failed no longer sends it again.
	t := transition{from: []EntryState{EntrySending, EntrySent, failedInDoubt}, detail: messageSID}
	switch strings.ToLower(status) {
	case "delivered":
		t.to = EntryDelivered
	case "undelivered":
		t.to, t.detail = EntryUndelivered, errorCode+"|undelivered ("+messageSID+")"
	case "failed", "canceled":
		t.to, t.detail = EntryFailed, errorCode+"|"+strings.ToLower(status)+" ("+messageSID+")"
	default:
		return ref.customer, nil
	}
	if _, err := s.transition(ctx, ref.campaign, ref.run, ref.recipient, t); err != nil {
		return ref.customer, fmt.Errorf("campaigns: delivery status for %s: %w", messageSID, err)
	}
	return ref.customer, nil
}
