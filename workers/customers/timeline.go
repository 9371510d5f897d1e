package customers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

const (
	maxEventText  = 500 // runes; longer texts are cut
	maxEventField = 200 // bytes of kind, channel, ref and key
)

// AddEvent appends e to customer id's timeline, trimmed to about
// Options.TimelineMaxLen events (the oldest go first), and returns the
// event's stream id. e.At zero means now; e.Text is cut to 500 runes.
// With e.Key set it is exactly-once per customer: the first call adds the
// event, later ones add nothing and return the first event's id with added
// false. A customer that does not exist is ErrNotFound.
func (s *Store) AddEvent(ctx context.Context, id string, e Event) (string, bool, error) {
	call, err := s.eventCall(id, e)
	if err != nil {
		return "", false, err
	}
	cmds, err := s.runScripts(ctx, []scriptCall{call})
	if err != nil {
		return "", false, fmt.Errorf("add %s event for customer %s: %w", e.Kind, id, err)
	}
	res, err := cmds[0].Slice()
	if err != nil {
		return "", false, eventErr(id, e, err)
	}
	evID, _ := res[0].(string)
	added, _ := res[1].(int64)
	return evID, added == 1, nil
}

// CustomerEvent is one event of AddEvents: Event for customer ID.
type CustomerEvent struct {
	ID    string
	Event Event
}

// AddEvents is AddEvent for many events in one round trip (campaign
// chunks record their sent messages a batch at a time). errs[i] is the
// outcome of events[i], ErrNotFound for a customer that does not exist;
// err is set when the round trip failed.
func (s *Store) AddEvents(ctx context.Context, events []CustomerEvent) (errs []error, err error) {
	errs = make([]error, len(events))
	calls := make([]scriptCall, 0, len(events))
	at := make([]int, 0, len(events))
	for i, ev := range events {
		call, err := s.eventCall(ev.ID, ev.Event)
		if err != nil {
			errs[i] = err
			continue
		}
		calls = append(calls, call)
		at = append(at, i)
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("add %d events: %w", len(calls), err)
	}
	for k, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			errs[at[k]] = eventErr(events[at[k]].ID, events[at[k]].Event, err)
		}
	}
	return errs, nil
}

// eventCall is the script call that adds e to customer id's timeline.
func (s *Store) eventCall(id string, e Event) (scriptCall, error) {
	if err := s.checkEvent(id, &e); err != nil {
		return scriptCall{}, err
	}
	args := append([]any{e.Key, s.maxLen}, eventArgs(e)...)
	return scriptCall{addEventScript, []string{s.keys.record(id), s.keys.timeline(id), s.keys.evkeys(id)}, args}, nil
}

// eventErr is the error of an event the script refused.
func eventErr(id string, e Event, err error) error {
	if redis.HasErrorPrefix(err, "NOTFOUND") {
		return fmt.Errorf("add %s event: customer %s: %w", e.Kind, id, ErrNotFound)
	}
	return fmt.Errorf("add %s event for customer %s: %w", e.Kind, id, err)
}

// checkEvent validates e and fills its defaults.
func (s *Store) checkEvent(id string, e *Event) error {
	if !ValidID(id) {
		return fmt.Errorf("add event: customer %.70q: %w", id, ErrNotFound)
	}
	for _, f := range []struct{ name, v string }{{"kind", e.Kind}, {"channel", e.Channel}, {"ref", e.Ref}, {"key", e.Key}} {
		if len(f.v) > maxEventField || !utf8.ValidString(f.v) {
			return fmt.Errorf("add event for customer %s: %w", id, fieldErr(f.name, "must be valid UTF-8 of at most %d bytes", maxEventField))
		}
	}
	if strings.TrimSpace(e.Kind) == "" {
		return fmt.Errorf("add event for customer %s: %w", id, fieldErr("kind", "is required"))
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.At = stamp(e.At)
	e.Text = truncateRunes(strings.ToValidUTF8(e.Text, "\uFFFD"), maxEventText)
	return nil
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := range s {
		if i == n {
			return s[:k]
		}
		i++
	}
	return s
}

// Timeline returns up to n of customer id's newest events, newest first;
// n <= 0 means 100. A customer that does not exist is ErrNotFound.
func (s *Store) Timeline(ctx context.Context, id string, n int64) ([]Event, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("timeline: customer %.70q: %w", id, ErrNotFound)
	}
	if n <= 0 {
		n = 100
	}
	var exists *redis.IntCmd
	var entries *redis.XMessageSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, s.keys.record(id))
		entries = p.XRevRangeN(ctx, s.keys.timeline(id), "+", "-", n)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("timeline of customer %s: %w", id, err)
	}
	if exists.Val() == 0 {
		return nil, fmt.Errorf("timeline: customer %s: %w", id, ErrNotFound)
	}
	out := make([]Event, 0, len(entries.Val()))
	for _, m := range entries.Val() {
		out = append(out, decodeEvent(m))
	}
	return out, nil
}

func decodeEvent(m redis.XMessage) Event {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	at, _ := time.Parse(time.RFC3339Nano, str("at"))
	return Event{ID: m.ID, At: at, Channel: str("ch"), Kind: str("kind"), Ref: str("ref"), Text: str("text")}
}
