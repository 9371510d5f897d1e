package customers

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// How an update proceeds, for one customer or a batch of them (each step is
// one pipelined round trip for the whole batch):
//
//  1. read the records;
//  2. compute each wanted record (mutation.fn), validate it, merge consent;
//     a record that would not change is done here, with no write at all;
//  3. claim the new e-mail and phone in the indexes (claimScript), resolving
//     claims held by other customers: refused when the other customer's
//     record holds the value, taken over when the claim is stale;
//  4. add the customer to its new tag sets and the all-customers set;
//  5. write the record with compare-and-set (writeScript), with its consent
//     events; a record changed meanwhile is read again and redone;
//  6. release the claims the old record held and leave the tag sets it no
//     longer carries.
//
// Steps 3-4 come before the record is written, so a stored record always has
// its index entries and tag memberships, and a crash can only leave extra
// entries behind: lookups verify entries against the record, Scan filters
// members against it, and a stale claim is taken over by the next customer
// who needs it (after claimGrace, so that a claim made by an update still in
// flight is not stolen).

// mutation computes the wanted state of one customer from its stored one.
// fn gets a copy of the stored customer (the zero value and exists=false
// when there is none) and returns the wanted customer, with Consent the full
// wanted map. An error from fn fails this customer only.
type mutation struct {
	id string
	fn func(cur Customer, exists bool) (Customer, error)
	// dated marks consent decisions made at a known time (SetConsent): one
	// that repeats the stored status but is newer is kept as its
	// RepeatedAt, so that an opposite decision made before it and applied
	// after it is ignored.
	dated bool
}

// outcome is what apply did with one mutation.
type outcome struct {
	UpsertResult
	Customer Customer // the stored customer afterwards, when Err is nil
	Err      error    // this customer's failure: invalid field, e-mail in use, ...
}

const (
	maxAttempts = 25              // compare-and-set attempts per customer
	claimGrace  = 5 * time.Minute // age after which an unheld claim is stale
)

// apply runs muts; the error is a Redis failure (nothing to blame on one
// customer), after which the caller retries the whole call.
func (s *Store) apply(ctx context.Context, muts []mutation) ([]outcome, error) {
	out := make([]outcome, len(muts))
	for lo := 0; lo < len(muts); {
		// A round holds each id at most once: two changes of one customer in
		// one batch run one after the other.
		seen := make(map[string]bool)
		hi := lo
		for hi < len(muts) && !seen[muts[hi].id] {
			seen[muts[hi].id] = true
			hi++
		}
		pending := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			pending = append(pending, i)
		}
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > maxAttempts {
				for _, i := range pending {
					out[i].Err = fmt.Errorf("customer %s: record kept changing during %d attempts", muts[i].id, maxAttempts)
				}
				break
			}
			if attempt > 1 {
				if err := backoff(ctx, attempt); err != nil {
					return nil, err
				}
			}
			var err error
			if pending, err = s.applyOnce(ctx, muts, pending, out); err != nil {
				return nil, err
			}
		}
		lo = hi
	}
	return out, nil
}

// backoff waits a little, more after each lost compare-and-set, with
// jitter so that racing updates of one customer spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// plan is the work for one customer in one attempt.
type plan struct {
	i        int // index into muts and out
	id       string
	old      string // stored JSON as read; "" when none
	cur      record
	exists   bool
	next     record
	events   []Event
	claims   []*claim
	addTags  []string
	dropTags []string
	err      error // set when this customer fails
}

// applyOnce runs one attempt for the mutations at idx and returns the ones
// whose record changed under them, to be attempted again.
func (s *Store) applyOnce(ctx context.Context, muts []mutation, idx []int, out []outcome) ([]int, error) {
	ks := make([]string, len(idx))
	for j, i := range idx {
		ks[j] = s.keys.record(muts[i].id)
	}
	raws, found, err := s.getMany(ctx, ks)
	if err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	now := s.clock()
	var plans []*plan
	for j, i := range idx {
		p := s.plan(muts[i], raws[j], found[j], now)
		p.i = i
		switch {
		case p.err != nil:
			out[i] = outcome{Err: p.err}
		case p.exists && sameContent(p.cur.Customer, p.next.Customer):
			out[i] = outcome{Customer: p.cur.Customer}
		default:
			plans = append(plans, p)
		}
	}
	if len(plans) == 0 {
		return nil, nil
	}
	if err := s.claimAll(ctx, plans, now); err != nil {
		return nil, err
	}
	return s.writeAll(ctx, plans, out)
}

// plan computes what one mutation wants, without touching Redis.
func (s *Store) plan(m mutation, raw string, exists bool, now time.Time) *plan {
	p := &plan{id: m.id, exists: exists}
	if exists {
		p.old = raw
		if p.cur, p.err = decodeRecord(m.id, raw); p.err != nil {
			return p
		}
	}
	want, err := m.fn(cloneCustomer(p.cur.Customer), exists)
	if err != nil {
		p.err = err
		return p
	}
	if want.ID != m.id {
		p.err = fmt.Errorf("customer %s: update changed the id to %q", m.id, want.ID)
		return p
	}
	if p.err = s.normalize(&want); p.err != nil {
		return p
	}
	switch {
	case exists:
		want.CreatedAt = p.cur.CreatedAt
	case want.CreatedAt.IsZero():
		want.CreatedAt = now
	}
	want.UpdatedAt = p.cur.UpdatedAt
	want.Consent, p.events = mergeConsent(p.cur.Consent, want.Consent, now, m.dated)
	p.next = record{Customer: want}
	if exists && sameContent(p.cur.Customer, want) {
		return p
	}
	p.next.UpdatedAt = now
	p.planClaims(now)
	p.addTags = missing(p.next.Tags, p.cur.Tags)
	p.dropTags = missing(p.cur.Tags, p.next.Tags)
	return p
}

// missing returns the elements of a that are not in b.
func missing(a, b []string) []string {
	var out []string
	for _, t := range a {
		if !slices.Contains(b, t) {
			out = append(out, t)
		}
	}
	return out
}

func cloneCustomer(c Customer) Customer {
	c.Tags = slices.Clone(c.Tags)
	c.Consent = maps.Clone(c.Consent)
	return c
}

// mergeConsent returns the consent to store and the events of the change.
// A decision older than the stored one (its At or RepeatedAt) is ignored. A
// channel whose status is unchanged keeps its stored entry (date and
// source of the decision); when dated and the decision is newer, it is
// recorded as the entry's RepeatedAt, so that the customer's latest word
// still wins when an opposite decision made before it is applied after it.
func mergeConsent(cur, want map[Channel]Consent, now time.Time, dated bool) (map[Channel]Consent, []Event) {
	if len(want) == 0 {
		return nil, nil
	}
	out := make(map[Channel]Consent, len(want))
	var events []Event
	for _, ch := range slices.Sorted(maps.Keys(want)) {
		w := want[ch]
		if w.At.IsZero() {
			w.At = now
		}
		c, had := cur[ch]
		switch {
		case had && w.At.Before(c.latest()):
			out[ch] = c
		case had && c.Status == w.Status:
			if dated && w.At.After(c.latest()) {
				c.RepeatedAt = w.At
			}
			out[ch] = c
		default:
			w.RepeatedAt = time.Time{}
			out[ch] = w
			events = append(events, consentEvent(ch, w))
		}
	}
	return out, events
}

// latest is when the customer last made or repeated the decision c.
func (c Consent) latest() time.Time {
	if c.RepeatedAt.After(c.At) {
		return c.RepeatedAt
	}
	return c.At
}

func consentEvent(ch Channel, c Consent) Event {
	kind, text := "consent.opt_in", string(ch)+" opted in"
	if c.Status == OptedOut {
		kind, text = "consent.opt_out", string(ch)+" opted out"
	}
	return Event{At: c.At, Channel: string(ch), Kind: kind, Ref: c.Source, Text: text}
}
