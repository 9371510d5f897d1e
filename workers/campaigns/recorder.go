package campaigns

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopworks/backoffice/workers/customers"
)

// sentRecord is a message the provider accepted: its ledger entry moves
// from sending to sent and, for a customer, its timeline gets the event.
type sentRecord struct {
	campaign, run string
	id            string // ledger key
	ref           string // Message-ID or Twilio SID
	customer      string // "" when the recipient is no customer: no event
	event         customers.Event
	done          chan recordResult
}

// recordResult is what recording one message did. A ledger error leaves
// the entry "sending" (the caller tries again); an event error leaves the
// recipient in the run's noevent set, for the next attempt to catch up.
// eventWritten says the timeline has the event: the caller drops the
// recipient from noevent (a chunk does it once, when it ends).
type recordResult struct {
	ledger, event error
	eventWritten  bool
	run           State // the run's state when the message was recorded
	lead          bool  // no result yet: this caller flushes the queue now
}

// recorder records the messages of every chunk of the daemon in groups
// (group commit): a chunk waits until its message is recorded, as before
// it sends the next, but the chunks that finish a send while a group is
// being written are recorded together by the next one, in one script call
// per run and one round trip for their timeline events. The caller that
// finds nobody writing writes the queue (leader); when it is done it hands
// the next group to the first caller waiting, so that nobody writes for
// others longer than one group. A leader that finds other messages of the
// daemon on the wire (onWire) first waits for them to join, at most
// linger: with many chunks sending, groups of one or two would cost a
// script call and a round trip per message or two; a lone chunk never
// waits.
type recorder struct {
	store  *Store
	events func(context.Context, []customers.CustomerEvent) ([]error, error)
	onWire *atomic.Int64 // messages being sent by this daemon's chunks
	linger time.Duration

	mu      sync.Mutex
	queue   []*sentRecord
	writing bool
	// while the leader gathers: the queue length it waits for, and the
	// channel the record that brings the queue to it signals (only that
	// one: each wake-up of the leader costs a goroutine switch)
	gatherTo int
	joined   chan struct{}
}

// gather is the leader's wait, with w.mu held, for the messages on the
// wire when it took the lead: until each has joined the queue or linger
// is over (one that fails is never recorded).
func (w *recorder) gather() {
	want := 0
	if w.onWire != nil {
		want = int(w.onWire.Load())
	}
	if want == 0 || w.linger <= 0 {
		return
	}
	joined := make(chan struct{}, 1)
	w.joined, w.gatherTo = joined, 1+want
	timer := time.NewTimer(w.linger)
	defer timer.Stop()
	for len(w.queue) < w.gatherTo {
		w.mu.Unlock()
		select {
		case <-joined:
			w.mu.Lock()
		case <-timer.C:
			w.mu.Lock()
			w.joined = nil
			return
		}
	}
	w.joined = nil
}

// record records r and returns once it is written (or failed).
func (w *recorder) record(ctx context.Context, r *sentRecord) recordResult {
	r.done = make(chan recordResult, 1)
	w.mu.Lock()
	w.queue = append(w.queue, r)
	if w.writing {
		if w.joined != nil && len(w.queue) >= w.gatherTo {
			select {
			case w.joined <- struct{}{}:
			default: // the leader has a wake-up pending already
			}
		}
		w.mu.Unlock()
		if res := <-r.done; !res.lead {
			return res
		}
		w.mu.Lock() // handed the queue: writing stays true
	} else {
		w.writing = true
		w.gather()
	}
	group := w.queue
	w.queue = nil
	w.mu.Unlock()

	w.write(context.WithoutCancel(ctx), group)

	w.mu.Lock()
	if len(w.queue) > 0 {
		w.queue[0].done <- recordResult{lead: true}
	} else {
		w.writing = false
	}
	w.mu.Unlock()
	return <-r.done
}

// write records a group, run by run, and answers every record of it.
func (w *recorder) write(ctx context.Context, group []*sentRecord) {
	type runRef struct{ campaign, run string }
	byRun := map[runRef][]*sentRecord{}
	var order []runRef
	for _, r := range group {
		k := runRef{r.campaign, r.run}
		if _, ok := byRun[k]; !ok {
			order = append(order, k)
		}
		byRun[k] = append(byRun[k], r)
	}
	for _, k := range order {
		w.writeRun(ctx, k.campaign, k.run, byRun[k])
	}
}

// writeRun records the messages of one run: one script call for the
// ledger, one round trip for the timeline events. Clearing them from
// noevent is left to the chunks, one call each when they end: a recipient
// left there by a crash only gets its event written again, which the
// event's key makes a no-op.
func (w *recorder) writeRun(ctx context.Context, campaign, run string, recs []*sentRecord) {
	moves := make([]move, len(recs))
	for i, r := range recs {
		moves[i] = move{id: r.id, detail: r.ref, needEvent: r.customer != ""}
	}
	res, err := w.store.applyMoves(ctx, campaign, run, moves, transition{from: []EntryState{EntrySending}, to: EntrySent})
	if err == nil && res.runState != "" {
		err = errors.New("the run is " + string(res.runState))
	}
	if err != nil {
		for _, r := range recs {
			r.done <- recordResult{ledger: err}
		}
		return
	}
	// A move writes the event, and so does an entry a delivery report took
	// from "sending" to delivered or undelivered before this record: the
	// report writes no event (the event's key makes a second write a
	// no-op). An entry found "sent" was recorded by another attempt, which
	// wrote the event or left it in noevent for the catch-up.
	var evs []customers.CustomerEvent
	var withEvent []int // index in recs of each event
	results := make([]recordResult, len(recs))
	for i := range results {
		results[i].run = res.state
	}
	for i, r := range recs {
		if (res.moved[i] || res.old[i] == EntryDelivered || res.old[i] == EntryUndelivered) && r.customer != "" {
			evs = append(evs, customers.CustomerEvent{ID: r.customer, Event: r.event})
			withEvent = append(withEvent, i)
		}
	}
	if len(evs) > 0 {
		errs, err := w.events(ctx, evs)
		for j, i := range withEvent {
			switch {
			case err != nil:
				results[i].event = err
			case errs[j] != nil && !errors.Is(errs[j], customers.ErrNotFound):
				results[i].event = errs[j]
			default:
				results[i].eventWritten = true
			}
		}
	}
	for i, r := range recs {
		r.done <- results[i]
	}
}
