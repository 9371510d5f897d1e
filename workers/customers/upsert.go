package customers

import (
	"context"
	"fmt"
	"maps"
)

// Upsert creates or replaces customer c.ID with c. Fields are validated and
// normalised (phone to E.164, tags to lower case); errors are *FieldError
// naming the field. Consent channels in c replace the stored ones (a change
// of status is added to the timeline, a decision older than the stored one
// is ignored); channels c does not mention keep their stored consent.
// CreatedAt is kept from the stored record (a new customer gets c.CreatedAt,
// or now when it is zero); UpdatedAt is set when anything changed. Upserting the same customer twice changes nothing the second
// time. An e-mail address or phone number of another customer is refused
// with a *FieldError wrapping ErrInUse.
func (s *Store) Upsert(ctx context.Context, c Customer) (UpsertResult, error) {
	in := cloneCustomer(c)
	out, err := s.apply(ctx, []mutation{{id: c.ID, fn: func(cur Customer, exists bool) (Customer, error) {
		next := cloneCustomer(in)
		next.Consent = overlayConsent(cur.Consent, in.Consent)
		return next, nil
	}}})
	if err == nil {
		err = out[0].Err
	}
	if err != nil {
		return UpsertResult{}, fmt.Errorf("upsert customer %.70q: %w", c.ID, err)
	}
	return out[0].UpsertResult, nil
}

// overlayConsent returns cur with the channels of in replaced.
func overlayConsent(cur, in map[Channel]Consent) map[Channel]Consent {
	if len(in) == 0 {
		return cur
	}
	out := maps.Clone(cur)
	if out == nil {
		out = make(map[Channel]Consent, len(in))
	}
	maps.Copy(out, in)
	return out
}
