package customers

import (
	"context"
	"fmt"
	"time"
)

// SetConsent records customer id's consent decision st for channel ch,
// made at at (zero: now) through source (e.g. "sms:STOP"). The record and
// a consent.opt_in or consent.opt_out timeline event are written in one
// step. It is idempotent, and decisions applied out of order leave the
// latest one: a decision older than the stored one (Consent.At or
// RepeatedAt) changes nothing; one that repeats the stored status keeps
// the stored date and source and adds no event, but when it is newer it
// is recorded as RepeatedAt, so that an opposite decision made before it
// and applied after it is ignored. changed reports whether the status
// changed.
func (s *Store) SetConsent(ctx context.Context, id string, ch Channel, st ConsentStatus, source string, at time.Time) (bool, error) {
	if !validChannel(ch) {
		return false, fmt.Errorf("set consent of customer %s: %w", id, fieldErr("channel", "must be email, sms or letter, got %.20q", string(ch)))
	}
	want := Consent{Status: st, At: at, Source: source}
	var before Consent
	var had bool
	out, err := s.apply(ctx, []mutation{{id: id, dated: true, fn: func(cur Customer, exists bool) (Customer, error) {
		if !exists {
			return Customer{}, fmt.Errorf("customer %s: %w", id, ErrNotFound)
		}
		before, had = cur.Consent[ch]
		cur.Consent = overlayConsent(cur.Consent, map[Channel]Consent{ch: want})
		return cur, nil
	}}})
	if err != nil {
		return false, fmt.Errorf("set %s consent of customer %s: %w", ch, id, err)
	}
	if out[0].Err != nil {
		return false, fmt.Errorf("set %s consent of customer %s: %w", ch, id, out[0].Err)
	}
	after := out[0].Customer.Consent[ch]
	return !had || before.Status != after.Status, nil
}
