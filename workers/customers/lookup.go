package customers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Get returns customer id.
func (s *Store) Get(ctx context.Context, id string) (Customer, error) {
	if !ValidID(id) {
		return Customer{}, fmt.Errorf("customer %.70q: %w", id, ErrNotFound)
	}
	raw, err := s.rdb.Get(ctx, s.keys.record(id)).Result()
	if errors.Is(err, redis.Nil) {
		return Customer{}, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Customer{}, fmt.Errorf("read customer %s: %w", id, err)
	}
	r, err := decodeRecord(id, raw)
	return r.Customer, err
}

// ByEmail returns the customer with e-mail address email, compared without
// regard to case.
func (s *Store) ByEmail(ctx context.Context, email string) (Customer, error) {
	key := emailKey(strings.TrimSpace(email))
	c, err := s.byIndex(ctx, s.keys.emailIndex(), key, func(c Customer) bool { return emailKey(c.Email) == key })
	if err != nil {
		return Customer{}, fmt.Errorf("customer with e-mail %.100q: %w", email, err)
	}
	return c, nil
}

// ByPhone returns the customer with phone number phone, normalised first.
func (s *Store) ByPhone(ctx context.Context, phone string) (Customer, error) {
	e164, err := s.NormalizePhone(phone)
	if err != nil {
		return Customer{}, &FieldError{Field: "phone", Msg: err.Error()}
	}
	c, err := s.byIndex(ctx, s.keys.phoneIndex(), e164, func(c Customer) bool { return c.Phone == e164 })
	if err != nil {
		return Customer{}, fmt.Errorf("customer with phone %s: %w", e164, err)
	}
	return c, nil
}

// byIndex follows an index entry and believes it only if the record still
// holds the value (holds): an entry may be left over from a crash.
func (s *Store) byIndex(ctx context.Context, index, field string, holds func(Customer) bool) (Customer, error) {
	cs, found, err := s.byIndexMany(ctx, index, []string{field}, func(_ int, c Customer) bool { return holds(c) })
	if err != nil {
		return Customer{}, err
	}
	if !found[0] {
		return Customer{}, ErrNotFound
	}
	return cs[0], nil
}

// Find returns the customer that ref names: an id, an e-mail address or a
// phone number, tried in that order.
func (s *Store) Find(ctx context.Context, ref string) (Customer, error) {
	ref = strings.TrimSpace(ref)
	if ValidID(ref) {
		if c, err := s.Get(ctx, ref); !errors.Is(err, ErrNotFound) {
			return c, err
		}
	}
	if strings.Contains(ref, "@") {
		return s.ByEmail(ctx, ref)
	}
	if _, err := s.NormalizePhone(ref); err == nil {
		return s.ByPhone(ctx, ref)
	}
	return Customer{}, fmt.Errorf("customer %.100q: %w", ref, ErrNotFound)
}

// FindOrCreateByPhone returns the customer with phone number phone, creating
// an Unknown contact for it when there is none. The new contact's id is
// derived from the number ("u-" and a hash), so a retry finds the same one;
// its timeline starts with a "contact.created" event whose Ref is source.
func (s *Store) FindOrCreateByPhone(ctx context.Context, phone, source string) (Customer, bool, error) {
	e164, err := s.NormalizePhone(phone)
	if err != nil {
		return Customer{}, false, &FieldError{Field: "phone", Msg: err.Error()}
	}
	for attempt := 0; attempt < 2; attempt++ {
		c, err := s.ByPhone(ctx, e164)
		if err == nil && c.ID == UnknownID(e164) {
			// A retry after a crash between creating the contact and
			// writing its first event: write it now (exactly once).
			err = s.contactCreatedEvent(ctx, c, e164, source)
		}
		if !errors.Is(err, ErrNotFound) {
			return c, false, err
		}
		c, created, err := s.createContact(ctx, e164, source)
		if errors.Is(err, ErrInUse) {
			continue // someone else took the number meanwhile: find them
		}
		return c, created, err
	}
	return Customer{}, false, fmt.Errorf("find or create customer with phone %s: number changed owner twice", e164)
}

// UnknownID returns the id FindOrCreateByPhone gives a new contact with the
// E.164 number e164.
func UnknownID(e164 string) string {
	sum := sha256.Sum256([]byte(e164))
	return "u-" + hex.EncodeToString(sum[:10])
}

// createContact creates the Unknown contact for e164 unless its id exists.
func (s *Store) createContact(ctx context.Context, e164, source string) (Customer, bool, error) {
	id := UnknownID(e164)
	out, err := s.apply(ctx, []mutation{{id: id, fn: func(cur Customer, exists bool) (Customer, error) {
		if exists {
			return cur, nil
		}
		return Customer{ID: id, Phone: e164, Unknown: true}, nil
	}}})
	if err != nil {
		return Customer{}, false, err
	}
	if out[0].Err != nil {
		return Customer{}, false, out[0].Err
	}
	c := out[0].Customer
	if err := s.contactCreatedEvent(ctx, c, e164, source); err != nil {
		return Customer{}, false, err
	}
	return c, out[0].Created, nil
}

func (s *Store) contactCreatedEvent(ctx context.Context, c Customer, e164, source string) error {
	_, _, err := s.AddEvent(ctx, c.ID, Event{At: c.CreatedAt, Kind: "contact.created", Ref: source,
		Text: "contact created from " + e164, Key: "contact.created"})
	return err
}

// GetMany returns the customers ids in at most one round trip, in order;
// found[i] is false for one that does not exist (or is no valid id).
// Campaign chunks resolve their recipients a batch at a time with it.
func (s *Store) GetMany(ctx context.Context, ids []string) (cs []Customer, found []bool, err error) {
	cs, found = make([]Customer, len(ids)), make([]bool, len(ids))
	var keys []string
	var at []int // index in ids of each key
	for i, id := range ids {
		if ValidID(id) {
			keys = append(keys, s.keys.record(id))
			at = append(at, i)
		}
	}
	if len(keys) == 0 {
		return cs, found, nil
	}
	vals, ok, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("read customers: %w", err)
	}
	for k, i := range at {
		if !ok[k] {
			continue
		}
		r, err := decodeRecord(ids[i], vals[k])
		if err != nil {
			return nil, nil, err
		}
		cs[i], found[i] = r.Customer, true
	}
	return cs, found, nil
}

// ByEmails is ByEmail for many addresses in two round trips; found[i] is
// false when no customer has emails[i] (or it is empty).
func (s *Store) ByEmails(ctx context.Context, emails []string) (cs []Customer, found []bool, err error) {
	keys := make([]string, len(emails))
	for i, e := range emails {
		keys[i] = emailKey(strings.TrimSpace(e))
	}
	return s.byIndexMany(ctx, s.keys.emailIndex(), keys, func(i int, c Customer) bool { return emailKey(c.Email) == keys[i] })
}

// ByPhones is ByPhone for many numbers in two round trips; found[i] is
// false when no customer has phones[i] or it is no valid number.
func (s *Store) ByPhones(ctx context.Context, phones []string) (cs []Customer, found []bool, err error) {
	keys := make([]string, len(phones))
	for i, p := range phones {
		if e164, err := s.NormalizePhone(p); err == nil {
			keys[i] = e164
		}
	}
	return s.byIndexMany(ctx, s.keys.phoneIndex(), keys, func(i int, c Customer) bool { return c.Phone == keys[i] })
}

// byIndexMany follows index entries for many fields ("" finds nothing)
// and believes an entry only if the record still holds the value: one
// HMGET of the index, one pipeline of records.
func (s *Store) byIndexMany(ctx context.Context, index string, fields []string, holds func(i int, c Customer) bool) ([]Customer, []bool, error) {
	cs, found := make([]Customer, len(fields)), make([]bool, len(fields))
	var asked []string
	var at []int
	for i, f := range fields {
		if f != "" {
			asked = append(asked, f)
			at = append(at, i)
		}
	}
	if len(asked) == 0 {
		return cs, found, nil
	}
	claims, err := s.rdb.HMGet(ctx, index, asked...).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read customer index: %w", err)
	}
	var owners []string
	var ownerAt []int
	for k, v := range claims {
		if str, ok := v.(string); ok {
			owner, _ := parseClaim(str)
			owners = append(owners, owner)
			ownerAt = append(ownerAt, at[k])
		}
	}
	got, ok, err := s.GetMany(ctx, owners)
	if err != nil {
		return nil, nil, err
	}
	for k, i := range ownerAt {
		if ok[k] && holds(i, got[k]) {
			cs[i], found[i] = got[k], true
		}
	}
	return cs, found, nil
}
