package customers

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// writeAll writes the records of the plans that survived their claims,
// records the outcomes and cleans up after the written ones. It returns the
// plans whose record changed since it was read, to be attempted again.
func (s *Store) writeAll(ctx context.Context, plans []*plan, out []outcome) ([]int, error) {
	var live []*plan
	var calls []scriptCall
	for _, p := range plans {
		if p.err != nil {
			out[p.i] = outcome{Err: p.err}
			continue
		}
		live = append(live, p)
		calls = append(calls, scriptCall{writeScript,
			[]string{s.keys.record(p.id), s.keys.timeline(p.id)}, s.writeArgs(p)})
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("write customers: %w", err)
	}
	var again []int
	var written, lost []*plan
	for j, cmd := range cmds {
		p := live[j]
		n, err := cmd.Int()
		if err != nil {
			return nil, fmt.Errorf("write customer %s: %w", p.id, err)
		}
		if n == 0 {
			again, lost = append(again, p.i), append(lost, p)
			continue
		}
		written = append(written, p)
		out[p.i] = outcome{UpsertResult: UpsertResult{Created: !p.exists, Changed: true}, Customer: p.next.Customer}
	}
	if err := s.cleanup(ctx, written, lost); err != nil {
		return nil, err
	}
	return again, nil
}

func (s *Store) writeArgs(p *plan) []any {
	args := make([]any, 0, 3+5*len(p.events))
	args = append(args, p.old, p.next.encode(), s.maxLen)
	for _, e := range p.events {
		args = append(args, eventArgs(e)...)
	}
	return args
}

// eventArgs are the five stream values of an event: at, ch, kind, ref, text.
func eventArgs(e Event) []any {
	return []any{e.At.UTC().Format(time.RFC3339Nano), e.Channel, e.Kind, e.Ref, e.Text}
}

// cleanup releases the claims the written records no longer hold and those
// of the plans that lost their compare-and-set, and moves the written
// customers out of the tag sets they left.
func (s *Store) cleanup(ctx context.Context, written, lost []*plan) error {
	var release []*claim
	for _, p := range written {
		if c := p.cur.EmailClaim; c != "" && c != p.next.EmailClaim {
			release = append(release, &claim{kind: "email", index: s.keys.emailIndex(), field: emailKey(p.cur.Email), value: c})
		}
		if c := p.cur.PhoneClaim; c != "" && c != p.next.PhoneClaim {
			release = append(release, &claim{kind: "phone", index: s.keys.phoneIndex(), field: p.cur.Phone, value: c})
		}
	}
	for _, p := range lost {
		release = append(release, p.freshClaims()...)
	}
	if err := s.releaseClaims(ctx, release); err != nil {
		return err
	}
	return s.moveTags(ctx, written)
}

// moveTags removes written customers from the tag sets they left and adds
// them again to the ones they joined. Adding again after the write, and
// re-reading the record after a removal, keep the sets right when two
// updates of one customer race to drop and re-add a tag.
func (s *Store) moveTags(ctx context.Context, written []*plan) error {
	var dropped []*plan
	cmds, _ := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, p := range written {
			for _, t := range p.dropTags {
				pipe.SRem(ctx, s.keys.tag(t), p.id)
			}
			for _, t := range p.addTags {
				pipe.SAdd(ctx, s.keys.tag(t), p.id)
			}
			if len(p.dropTags) > 0 {
				dropped = append(dropped, p)
			}
		}
		return nil
	})
	if err := execErr(cmds); err != nil {
		return fmt.Errorf("move customers between tag sets: %w", err)
	}
	if len(dropped) == 0 {
		return nil
	}
	return s.rejoinDropped(ctx, dropped)
}

// rejoinDropped re-reads the records that left tag sets and adds them back
// to any of those sets their current record carries again.
func (s *Store) rejoinDropped(ctx context.Context, dropped []*plan) error {
	ks := make([]string, len(dropped))
	for i, p := range dropped {
		ks[i] = s.keys.record(p.id)
	}
	raws, found, err := s.getMany(ctx, ks)
	if err != nil {
		return fmt.Errorf("re-read customers after leaving tag sets: %w", err)
	}
	cmds, _ := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range dropped {
			if !found[i] {
				continue
			}
			r, err := decodeRecord(p.id, raws[i])
			if err != nil {
				continue
			}
			for _, t := range p.dropTags {
				if containsTag(r.Tags, t) {
					pipe.SAdd(ctx, s.keys.tag(t), p.id)
				}
			}
		}
		return nil
	})
	if err := execErr(cmds); err != nil {
		return fmt.Errorf("re-add customers to tag sets: %w", err)
	}
	return nil
}

func containsTag(tags []string, t string) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}
