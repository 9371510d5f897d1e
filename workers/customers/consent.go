package customers

import (
	"context"
	"fmt"
	"time"
)

// SetConsent records customer id's consent decision st for channel ch,
// made at at (zero: now) through source (e.g. "sms:STOP"). The record and
// a consent.opt_in or consent.opt_out timeline event are written in one
// step. It is idempotent: when the stored status is already st, or the
// stored decision is newer than at, nothing changes and changed is false.
func (s *Store) SetConsent(ctx context.Context, id string, ch Channel, st ConsentStatus, source string, at time.Time) (bool, error) {
	if !validChannel(ch) {
		return false, fmt.Errorf("set consent of customer %s: %w", id, fieldErr("channel", "must be email, sms or letter, got %.20q", string(ch)))
	}
	want := Consent{Status: st, At: at, Source: source}
	out, err := s.apply(ctx, []mutation{{id: id, fn: func(cur Customer, exists bool) (Customer, error) {
		if !exists {
			return Customer{}, fmt.Errorf("customer %s: %w", id, ErrNotFound)
		}
		cur.Consent = overlayConsent(cur.Consent, map[Channel]Consent{ch: want})
		return cur, nil
	}}})
	if err != nil {
		return false, fmt.Errorf("set %s consent of customer %s: %w", ch, id, err)
	}
	if out[0].Err != nil {
		return false, fmt.Errorf("set %s consent of customer %s: %w", ch, id, out[0].Err)
	}
	return out[0].Changed, nil
}
