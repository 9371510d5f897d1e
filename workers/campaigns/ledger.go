package campaigns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// EntryState is the state of one recipient in a run's ledger.
//
//	pending ──> sending ──> sent ──> delivered | undelivered | failed  (SMS delivery reports)
//	   │           │ └────> failed   (permanent error: SMTP 5xx, Twilio 21610)
//	   │           └──────> pending  (transient error: tried again by the retry)
//	   ├─────────────────> skipped   (opted out, no or invalid address, duplicate, expired)
//	   └─────────────────> failed    (the template did not render for this recipient)
//
// "sending" is written just before the send and left only by its outcome;
// a chunk that finds it after a crash applies the in-doubt policy
// (see chunk.go).
type EntryState string

// Ledger entry states.
const (
	EntryPending     EntryState = "pending"
	EntrySending     EntryState = "sending"
	EntrySent        EntryState = "sent"
	EntryDelivered   EntryState = "delivered"
	EntryUndelivered EntryState = "undelivered"
	EntryFailed      EntryState = "failed"
	EntrySkipped     EntryState = "skipped"
)

// Skip reasons recorded in the ledger.
const (
	ReasonOptedOut       = "opted_out"
	ReasonNoAddress      = "no_address"
	ReasonInvalidAddress = "invalid_address"
	ReasonDuplicate      = "duplicate"
	ReasonExpired        = "expired"
	ReasonNotFound       = "not_found"   // the customer was deleted after launch
	ReasonInvalidRow     = "invalid_row" // a CSV row that does not parse
)

// Entry is one recipient's line in a run's ledger.
type Entry struct {
	Recipient string     `json:"recipient"`
	State     EntryState `json:"state"`
	At        time.Time  `json:"at"`
	// Detail is the message id or Twilio SID (sent, delivered), the skip
	// reason (skipped), or "code|text" (failed, undelivered).
	Detail string `json:"detail,omitempty"`
}

// Code and Text split a failed entry's Detail into the error code and text.
func (e Entry) Code() string { c, _, _ := strings.Cut(e.Detail, "|"); return c }

// Text is the error text of a failed entry (see Code).
func (e Entry) Text() string { _, t, _ := strings.Cut(e.Detail, "|"); return t }

func parseEntry(recipient, v string) Entry {
	state, rest, _ := strings.Cut(v, "|")
	at, detail, _ := strings.Cut(rest, "|")
	e := Entry{Recipient: recipient, State: EntryState(state), Detail: detail}
	if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
		e.At = time.UnixMilli(ms).UTC()
	}
	return e
}

// ErrUnknownSID is returned by RecordDeliveryStatus for a Twilio message
// that no campaign sent (or whose index entry expired).
var ErrUnknownSID = errors.New("campaigns: unknown message sid")

// Ledger records delivery reports against campaign ledgers. The Twilio
// status webhook uses it.
type Ledger struct {
	store *Store
}

// NewLedger returns the ledger view of the campaign store on rdb.
func NewLedger(rdb redis.UniversalClient, prefix string) *Ledger {
	return &Ledger{store: NewStore(rdb, prefix, nil)}
}

// Ledger returns the ledger view of s.
func (s *Store) Ledger() *Ledger { return &Ledger{store: s} }

// transition is one ledger move (see transitionScript).
type transition struct {
	from        []EntryState
	to          EntryState
	detail      string
	needEvent   bool
	maxRatio    float64
	minAttempts int
	requireRun  State
}

// transitionResult says what a transition did.
type transitionResult struct {
	moved    bool
	old      EntryState // state before (when moved) or current state (when not)
	runState State      // set when the run was not in the required state
	paused   bool       // the error ratio paused the run
}

func (s *Store) transition(ctx context.Context, campaign, run, recipient string, t transition) (transitionResult, error) {
	res, err := s.applyMoves(ctx, campaign, run, []move{{id: recipient, detail: t.detail, needEvent: t.needEvent}}, t)
	if err != nil {
		return transitionResult{}, fmt.Errorf("campaign %s run %s: recipient %s: %s: %w", campaign, run, recipient, t.to, err)
	}
	if res.runState != "" {
		return transitionResult{runState: res.runState}, nil
	}
	return transitionResult{moved: res.moved[0], old: res.old[0], paused: res.paused}, nil
}

// movesResult says what a transition of many recipients did.
type movesResult struct {
	runState State        // set when the run was not in the required state: nothing moved
	state    State        // otherwise the run's state after the call
	paused   bool         // the error ratio paused the run
	moved    []bool       // per recipient, in order
	old      []EntryState // state before (moved) or current state (not moved)
}

// transitionMany applies t to every recipient in one script call.
func (s *Store) transitionMany(ctx context.Context, campaign, run string, recipients []string, t transition) (movesResult, error) {
	moves := make([]move, len(recipients))
	for i, r := range recipients {
		moves[i] = move{id: r, detail: t.detail, needEvent: t.needEvent}
	}
	res, err := s.applyMoves(ctx, campaign, run, moves, t)
	if err != nil {
		return movesResult{}, fmt.Errorf("campaign %s run %s: %d recipients: %s: %w", campaign, run, len(recipients), t.to, err)
	}
	return res, nil
}

// move is one recipient of a transition, with its own detail and event
// flag (t.detail and t.needEvent are not used).
type move struct {
	id, detail string
	needEvent  bool
}

// applyMoves runs transitionScript for moves.
func (s *Store) applyMoves(ctx context.Context, campaign, run string, moves []move, t transition) (movesResult, error) {
	rk := s.keys.run(campaign, run)
	now := s.now()
	from := make([]string, len(t.from))
	for i, f := range t.from {
		from[i] = string(f)
	}
	args := make([]any, 0, 6+3*len(moves))
	args = append(args, strings.Join(from, ","), string(t.to), now.UnixMilli(),
		strconv.FormatFloat(t.maxRatio, 'f', -1, 64), t.minAttempts, string(t.requireRun))
	for _, m := range moves {
		need := ""
		if m.needEvent {
			need = "1"
		}
		args = append(args, m.id, m.detail, need)
	}
	res, err := transitionScript.Run(ctx, s.rdb,
		[]string{rk.run, rk.ledger, rk.noevent, rk.sentMinute(now.Unix() / 60)}, args...).Slice()
	if err != nil {
		return movesResult{}, noRun(err)
	}
	if res[0].(int64) == -1 {
		return movesResult{runState: State(fmt.Sprint(res[1]))}, nil
	}
	if len(res) != 2+len(moves) {
		return movesResult{}, fmt.Errorf("the ledger script answered %d results for %d recipients", len(res)-2, len(moves))
	}
	out := movesResult{paused: res[0].(int64) == 1, state: State(fmt.Sprint(res[1])),
		moved: make([]bool, len(moves)), old: make([]EntryState, len(moves))}
	for i, v := range res[2:] {
		str := fmt.Sprint(v)
		out.moved[i] = strings.HasPrefix(str, "+")
		out.old[i] = EntryState(str[min(1, len(str)):])
	}
	return out, nil
}

// Entry returns one recipient's ledger entry.
func (s *Store) Entry(ctx context.Context, campaign, run, recipient string) (Entry, error) {
	v, err := s.rdb.HGet(ctx, s.keys.run(campaign, run).ledger, recipient).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, fmt.Errorf("campaign %s run %s: recipient %s: %w", campaign, run, recipient, ErrNoRun)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("campaign %s run %s: recipient %s: %w", campaign, run, recipient, err)
	}
	return parseEntry(recipient, v), nil
}

// entries returns the ledger entries of recipients, in order; a recipient
// without an entry comes back with an empty state.
func (s *Store) entries(ctx context.Context, campaign, run string, recipients []string) ([]Entry, error) {
	if len(recipients) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.run(campaign, run).ledger, recipients...).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign %s run %s: read ledger: %w", campaign, run, err)
	}
	out := make([]Entry, len(recipients))
	for i, v := range vals {
		str, _ := v.(string)
		out[i] = parseEntry(recipients[i], str)
	}
	return out, nil
}

// Page is one page of a run's ledger.
type Page struct {
	Entries []Entry `json:"entries"`
	Cursor  uint64  `json:"cursor"` // pass to the next call; 0 when done
}

// Entries pages through a run's ledger (HSCAN order, roughly count per
// page), keeping only entries in one of states (all when empty). Rows of a
// file audience skipped without a recipient id appear as "line:<n>".
func (s *Store) Entries(ctx context.Context, campaign, run string, cursor uint64, count int64, states ...EntryState) (Page, error) {
	kv, next, err := s.rdb.HScan(ctx, s.keys.run(campaign, run).ledger, cursor, "", count).Result()
	if err != nil {
		return Page{}, fmt.Errorf("campaign %s run %s: scan ledger: %w", campaign, run, err)
	}
	p := Page{Cursor: next, Entries: []Entry{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e := parseEntry(kv[i], kv[i+1])
		if len(states) == 0 || slices.Contains(states, e.State) {
			p.Entries = append(p.Entries, e)
		}
	}
	return p, nil
}

// Skips returns the rows of a file audience that were skipped without a
// ledger entry (no or invalid address, duplicate, unparsable), as
// "line:<n>" -> reason.
func (s *Store) Skips(ctx context.Context, campaign, run string) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.run(campaign, run).skips).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign %s run %s: read skipped rows: %w", campaign, run, err)
	}
	return m, nil
}
