// Package inbox keeps what back-office staff must look at by hand: the
// messages customers sent that nobody has answered yet, and the input that
// could not be filed anywhere else (a delivery report for a message we do
// not know, a malformed number, an empty or oversized message). Nothing
// that reaches the daemon is dropped silently: it is filed on the
// customer's record or it is here, until someone resolves it.
package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kind separates customers' messages from unfiled input.
type Kind string

// Kinds of inbox entries.
const (
	// KindMessage is a customer's message awaiting an answer.
	KindMessage Kind = "message"
	// KindUnmatched is input that could not be filed: Reason says why.
	KindUnmatched Kind = "unmatched"
)

// Kinds lists every kind, in the order staff see them.
func Kinds() []Kind { return []Kind{KindMessage, KindUnmatched} }

// Entry is one item of the inbox.
type Entry struct {
	// ID identifies the entry; adding the same ID twice keeps the first,
	// so a retried job files its input once. E.g. "sms:<MessageSid>".
	ID      string `json:"id"`
	Kind    Kind   `json:"kind"`
	Channel string `json:"channel"` // "sms"
	// Ref is the provider's id of the message (Twilio MessageSid).
	Ref        string   `json:"ref,omitempty"`
	CustomerID string   `json:"customer_id,omitempty"`
	From       string   `json:"from,omitempty"`
	To         string   `json:"to,omitempty"`
	Body       string   `json:"body,omitempty"`
	MediaURLs  []string `json:"media_urls,omitempty"`
	// Reason says why an unmatched entry could not be filed, or flags a
	// message ("empty body"); a short label, also used in Counts.
	Reason string `json:"reason,omitempty"`
	// Detail is what else staff need: the raw request of a malformed
	// webhook, the status and error code of an unknown delivery report.
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
	// ResolvedAt and ResolvedBy are set once staff dealt with the entry.
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy string     `json:"resolved_by,omitempty"`
}

// ErrNotFound is returned for an entry ID the inbox does not hold.
var ErrNotFound = errors.New("inbox: no such entry")

// DefaultResolvedTTL is how long a resolved entry is kept (and a repeat of
// its input still recognised) before Redis drops it.
const DefaultResolvedTTL = 90 * 24 * time.Hour

// Store is the inbox on Redis.
type Store struct {
	rdb         redis.UniversalClient
	keys        keys
	resolvedTTL time.Duration
}

// New returns the inbox stored on rdb under prefix (e.g. "bo:").
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, keys: keys{prefix: prefix}, resolvedTTL: DefaultResolvedTTL}
}

// validate checks an entry before it is stored.
func (e Entry) validate() error {
	switch {
	case e.ID == "" || len(e.ID) > 256:
		return fmt.Errorf("inbox entry: id must be 1-256 bytes, got %d", len(e.ID))
	case e.Kind != KindMessage && e.Kind != KindUnmatched:
		return fmt.Errorf("inbox entry %s: kind must be %q or %q, got %q", e.ID, KindMessage, KindUnmatched, e.Kind)
	case e.At.IsZero():
		return fmt.Errorf("inbox entry %s: at is required", e.ID)
	case e.Kind == KindUnmatched && e.Reason == "":
		return fmt.Errorf("inbox entry %s: an unmatched entry needs a reason", e.ID)
	}
	return nil
}

// addScript files an entry unless its ID is known.
//
// KEYS[1] entry hash, KEYS[2] open zset of its kind, KEYS[3] counts hash
// ARGV[1] entry JSON, ARGV[2] arrival (unix ms), ARGV[3] id, ARGV[4] counts field
// Returns 1 when added, 0 when the ID was already there (open or resolved).
var addScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'data', ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
return 1
`)

// Add files e unless an entry with its ID exists (open or resolved), and
// reports whether it did.
func (s *Store) Add(ctx context.Context, e Entry) (added bool, err error) {
	if err := e.validate(); err != nil {
		return false, err
	}
	e.At, e.ResolvedAt, e.ResolvedBy = e.At.UTC(), nil, ""
	data, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("inbox entry %s: encode: %w", e.ID, err)
	}
	n, err := addScript.Run(ctx, s.rdb,
		[]string{s.keys.entry(e.ID), s.keys.open(e.Kind), s.keys.counts()},
		data, e.At.UnixMilli(), e.ID, countField(e.Kind, e.Reason)).Int()
	if err != nil {
		return false, fmt.Errorf("inbox entry %s: add: %w", e.ID, err)
	}
	return n == 1, nil
}

func countField(k Kind, reason string) string {
	if reason == "" {
		return string(k)
	}
	return string(k) + ":" + reason
}

// Open returns the open entries of kind, newest first, at most limit
// (all when limit <= 0).
func (s *Store) Open(ctx context.Context, kind Kind, limit int) ([]Entry, error) {
	if kind != KindMessage && kind != KindUnmatched {
		return nil, fmt.Errorf("inbox: kind must be %q or %q, got %q", KindMessage, KindUnmatched, kind)
	}
	ids, err := s.rdb.ZRevRange(ctx, s.keys.open(kind), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("inbox: list open %s entries: %w", kind, err)
	}
	return s.entries(ctx, ids)
}

// OpenCount returns how many entries of kind are open.
func (s *Store) OpenCount(ctx context.Context, kind Kind) (int64, error) {
	n, err := s.rdb.ZCard(ctx, s.keys.open(kind)).Result()
	if err != nil {
		return 0, fmt.Errorf("inbox: count open %s entries: %w", kind, err)
	}
	return n, nil
}

// entries reads the entries of ids, skipping any that vanished meanwhile.
func (s *Store) entries(ctx context.Context, ids []string) ([]Entry, error) {
	out := make([]Entry, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.keys.entry(id), "data", "resolved_at", "resolved_by")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("inbox: read entries: %w", err)
	}
	for i, c := range cmds {
		e, ok, err := decodeEntry(c.Val())
		if err != nil {
			return nil, fmt.Errorf("inbox entry %s: %w", ids[i], err)
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// Get returns the entry id, open or resolved.
func (s *Store) Get(ctx context.Context, id string) (Entry, error) {
	vals, err := s.rdb.HMGet(ctx, s.keys.entry(id), "data", "resolved_at", "resolved_by").Result()
	if err != nil {
		return Entry{}, fmt.Errorf("inbox entry %s: read: %w", id, err)
	}
	e, ok, err := decodeEntry(vals)
	if err != nil {
		return Entry{}, fmt.Errorf("inbox entry %s: %w", id, err)
	}
	if !ok {
		return Entry{}, fmt.Errorf("inbox entry %s: %w", id, ErrNotFound)
	}
	return e, nil
}

// decodeEntry decodes the HMGET data, resolved_at, resolved_by of an entry;
// ok is false when the entry does not exist.
func decodeEntry(vals []any) (e Entry, ok bool, err error) {
	data, _ := vals[0].(string)
	if data == "" {
		return Entry{}, false, nil
	}
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		return Entry{}, false, fmt.Errorf("decode: %w", err)
	}
	if at, _ := vals[1].(string); at != "" {
		ms, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return Entry{}, false, fmt.Errorf("decode resolved_at %q: %w", at, err)
		}
		t := time.UnixMilli(ms).UTC()
		e.ResolvedAt = &t
	}
	e.ResolvedBy, _ = vals[2].(string)
	return e, true, nil
}

// resolveScript marks an open entry resolved and starts its expiry.
//
// KEYS[1] entry hash, KEYS[2] open zset of its kind
// ARGV[1] id, ARGV[2] resolved at (unix ms), ARGV[3] resolved by, ARGV[4] ttl (ms)
// Returns 1 when resolved now, 0 when it was already, -1 when there is no such entry.
var resolveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'resolved_at', ARGV[2], 'resolved_by', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// Resolve marks entry id as dealt with by by (a staff member or token
// name) at at. Resolving a resolved entry changes nothing.
func (s *Store) Resolve(ctx context.Context, id, by string, at time.Time) error {
	e, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	n, err := resolveScript.Run(ctx, s.rdb, []string{s.keys.entry(id), s.keys.open(e.Kind)},
		id, at.UnixMilli(), by, s.resolvedTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("inbox entry %s: resolve: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("inbox entry %s: %w", id, ErrNotFound)
	}
	return nil
}

// Counts returns how many entries were ever added, by "<kind>" for entries
// without a reason and "<kind>:<reason>" for the others.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.counts()).Result()
	if err != nil {
		return nil, fmt.Errorf("inbox: read counts: %w", err)
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inbox: count %s: %q is not a number", k, v)
		}
		out[k] = n
	}
	return out, nil
}
