package customers

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Query selects customers for Scan. The zero Query selects everyone.
type Query struct {
	Tags      []string // the customer carries all of them
	Languages []string // the customer's language is one of them
}

const scanBatch = 500

// Scan calls fn for every customer that matches q, in no particular order,
// reading them in batches of 500 (SSCAN of the smallest tag set, or of the
// all-customers set, then pipelined GETs) so that the audience is never held
// in memory. It stops at, and returns, the first error of fn. Like SSCAN, it
// may call fn twice for a customer when the set is resized while it runs;
// callers that must not act twice dedupe on the id (a campaign's ledger does).
func (s *Store) Scan(ctx context.Context, q Query, fn func(Customer) error) error {
	tags := make([]string, 0, len(q.Tags))
	for _, t := range q.Tags {
		tags = append(tags, strings.ToLower(strings.TrimSpace(t)))
	}
	langs := make([]string, 0, len(q.Languages))
	for _, l := range q.Languages {
		langs = append(langs, strings.ToLower(strings.TrimSpace(l)))
	}
	set, err := s.smallestSet(ctx, tags)
	if err != nil || set == "" {
		return err
	}
	match := func(c Customer) bool {
		for _, t := range tags {
			if !slices.Contains(c.Tags, t) {
				return false
			}
		}
		return len(langs) == 0 || slices.Contains(langs, c.Language)
	}
	var cursor uint64
	for {
		ids, next, err := s.rdb.SScan(ctx, set, cursor, "", scanBatch).Result()
		if err != nil {
			return fmt.Errorf("scan customers of %s: %w", set, err)
		}
		if err := s.visit(ctx, ids, match, fn); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// smallestSet returns the set to iterate: the smallest of the tag sets, or
// the all-customers set without tags; "" when a tag set is empty.
func (s *Store) smallestSet(ctx context.Context, tags []string) (string, error) {
	if len(tags) == 0 {
		return s.keys.all(), nil
	}
	best, bestN := "", int64(-1)
	for _, t := range tags {
		n, err := s.rdb.SCard(ctx, s.keys.tag(t)).Result()
		if err != nil {
			return "", fmt.Errorf("count customers tagged %s: %w", t, err)
		}
		if n == 0 {
			return "", nil
		}
		if bestN < 0 || n < bestN {
			best, bestN = s.keys.tag(t), n
		}
	}
	return best, nil
}

// visit reads the records of ids and calls fn for those that match.
func (s *Store) visit(ctx context.Context, ids []string, match func(Customer) bool, fn func(Customer) error) error {
	for len(ids) > 0 {
		batch := ids[:min(len(ids), scanBatch)]
		ids = ids[len(batch):]
		ks := make([]string, len(batch))
		for i, id := range batch {
			ks[i] = s.keys.record(id)
		}
		raws, found, err := s.getMany(ctx, ks)
		if err != nil {
			return fmt.Errorf("scan customers: %w", err)
		}
		for i, id := range batch {
			if !found[i] {
				continue
			}
			r, err := decodeRecord(id, raws[i])
			if err != nil {
				return fmt.Errorf("scan customers: %w", err)
			}
			if !match(r.Customer) {
				continue
			}
			if err := fn(r.Customer); err != nil {
				return err
			}
		}
	}
	return nil
}

// Count returns the number of customers.
func (s *Store) Count(ctx context.Context) (int64, error) {
	n, err := s.rdb.SCard(ctx, s.keys.all()).Result()
	if err != nil {
		return 0, fmt.Errorf("count customers: %w", err)
	}
	return n, nil
}
