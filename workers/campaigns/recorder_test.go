package campaigns

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// Messages that finish while a group is being written are recorded
// together by the next group: one ledger call and one event round trip
// for all of them, each recorded once, and the waiting caller that got the
// queue writes it.
func TestRecorderGroupsConcurrentRecords(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	const n = 10
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("g%02d", i)
	}
	b.claimedRun(t, "group", ids)

	hold := make(chan struct{})
	var mu sync.Mutex
	var calls []int // events per call of AddEvents
	w := &recorder{store: b.engine.store, events: func(ctx context.Context, evs []customers.CustomerEvent) ([]error, error) {
		mu.Lock()
		calls = append(calls, len(evs))
		first := len(calls) == 1
		mu.Unlock()
		if first {
			<-hold // the first group is being written while the others finish
		}
		return b.customers.AddEvents(ctx, evs)
	}}
	record := func(i int) recordResult {
		return w.record(ctx, sentMail("group", ids[i], fmt.Sprintf("<m%d@x>", i)))
	}
	results := make([]recordResult, n)
	var wg sync.WaitGroup
	wg.Go(func() { results[0] = record(0) })
	for !func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 }() {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < n; i++ {
		wg.Go(func() { results[i] = record(i) })
	}
	for !func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.queue) == n-1 }() {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()

	for i, r := range results {
		if r.ledger != nil || r.event != nil || r.lead || !r.eventWritten {
			t.Errorf("record %d = %+v, want its event written", i, r)
		}
	}
	if len(calls) != 2 || calls[0] != 1 || calls[1] != n-1 {
		t.Errorf("AddEvents calls %v, want [1 %d]: the nine that finished meanwhile in one group", calls, n-1)
	}
	led := b.ledger(t, "group", "r1")
	for i, id := range ids {
		if want := fmt.Sprintf("|<m%d@x>", i); led[id][:5] != "sent|" || led[id][len(led[id])-len(want):] != want {
			t.Errorf("%s: %q, want sent with its Message-ID", id, led[id])
		}
		events, err := b.customers.Timeline(ctx, id, 10)
		if err != nil || len(events) != 1 {
			t.Errorf("timeline of %s = %+v, %v; want one event", id, events, err)
		}
	}
	if st := b.status(t, "group", "r1"); st.Counts.Sent != n || st.Counts.Sending != 0 {
		t.Errorf("counts %+v, want %d sent", st.Counts, n)
	}
	// noevent still names them: the chunks drop them when they end, one
	// call each (TestEmailCampaignSendsEachRecipientOnceInTheirLanguage
	// checks it is empty after a run).
	if left := b.rdb.SCard(ctx, b.engine.store.keys.run("group", "r1").noevent).Val(); left != n {
		t.Errorf("noevent holds %d recipients, want the %d the recorder left to their chunks", left, n)
	}
	// Recording again finds nothing sending: no second event, no error.
	if r := record(3); r.ledger != nil || r.event != nil || r.eventWritten {
		t.Errorf("recording a sent message again = %+v", r)
	}
	if events, _ := b.customers.Timeline(ctx, ids[3], 10); len(events) != 1 {
		t.Errorf("timeline of %s has %d events after a second record, want 1", ids[3], len(events))
	}
	// A run that is gone is a ledger error the caller sees.
	if r := w.record(ctx, &sentRecord{campaign: "group", run: "gone", id: ids[0], ref: "<x@x>"}); r.ledger == nil {
		t.Errorf("recording into a run that does not exist = %+v, want a ledger error", r)
	}
}

// A leader that finds other messages of the daemon on the wire waits for
// them, up to its linger, and records them in its group; with nothing
// else on the wire it writes at once.
func TestRecorderWaitsForTheMessagesOnTheWire(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	ids := []string{"w0", "w1", "w2", "w3"}
	b.claimedRun(t, "wire", ids)
	var mu sync.Mutex
	var groups []int // events per AddEvents call: one call per group
	var onWire atomic.Int64
	// An hour: the test would time out if the leader waited for its linger
	// instead of for the messages.
	w := &recorder{store: b.engine.store, onWire: &onWire, linger: time.Hour,
		events: func(ctx context.Context, evs []customers.CustomerEvent) ([]error, error) {
			mu.Lock()
			groups = append(groups, len(evs))
			mu.Unlock()
			return b.customers.AddEvents(ctx, evs)
		}}
	record := func(i int) recordResult {
		return w.record(ctx, sentMail("wire", ids[i], fmt.Sprintf("<w%d@x>", i)))
	}

	onWire.Store(2) // two other chunks are sending
	results := make([]recordResult, 3)
	var wg sync.WaitGroup
	wg.Go(func() { results[0] = record(0) })
	for !func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.writing && len(w.queue) == 1 }() {
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() { results[1] = record(1) })
	wg.Go(func() { results[2] = record(2) })
	wg.Wait()
	for i, r := range results {
		if r.ledger != nil || r.event != nil || !r.eventWritten {
			t.Errorf("record %d = %+v", i, r)
		}
	}

	onWire.Store(0) // nothing else on the wire: no wait
	if r := record(3); r.ledger != nil || r.event != nil || !r.eventWritten {
		t.Errorf("lone record = %+v", r)
	}
	if len(groups) != 2 || groups[0] != 3 || groups[1] != 1 {
		t.Errorf("groups %v, want [3 1]: the leader waited for the two on the wire, then the lone one went at once", groups)
	}
	led := b.ledger(t, "wire", "r1")
	for i, id := range ids {
		if want := fmt.Sprintf("|<w%d@x>", i); !strings.HasPrefix(led[id], "sent|") || !strings.HasSuffix(led[id], want) {
			t.Errorf("%s: %q, want sent with its Message-ID", id, led[id])
		}
	}
}

// claimedRun launches run r1 of an e-mail campaign to customers ids (each
// a customer tagged with the campaign's name) and claims them all, as a
// chunk does before it sends: their entries are "sending".
func (b *bundle) claimedRun(t *testing.T, campaign string, ids []string) {
	t.Helper()
	for _, id := range ids {
		b.addCustomers(t, customers.Customer{ID: id, Email: id + "@example.sk", Tags: []string{campaign}})
	}
	camp := emailCampaign(campaign, jobs.Audience{Tags: []string{campaign}})
	camp.RatePerSecond = 100
	if err := b.engine.HandleLaunch(t.Context(), launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.store.transitionMany(t.Context(), campaign, "r1", ids, transition{from: []EntryState{EntryPending}, to: EntrySending}); err != nil {
		t.Fatal(err)
	}
}

// sentMail is the record of the mail ref sent to customer id in run r1.
func sentMail(campaign, id, ref string) *sentRecord {
	return &sentRecord{campaign: campaign, run: "r1", id: id, ref: ref, customer: id,
		event: customers.Event{Kind: "mail.sent", Key: "campaign:" + campaign + ":r1:" + id}}
}

// A delivery report that arrives between the send and its record (the
// chunk indexes the SID first) takes the entry from sending to delivered;
// the record then still writes the customer's timeline event, once.
func TestRecordAfterAnEarlyDeliveryReportWritesTheEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	b.claimedRun(t, "early", []string{"e0"})
	if err := b.engine.store.indexSID(ctx, "SMearly", sidRef{campaign: "early", run: "r1", recipient: "e0", customer: "e0"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.Ledger().RecordDeliveryStatus(ctx, "SMearly", "delivered", ""); err != nil {
		t.Fatal(err)
	}
	w := &recorder{store: b.engine.store, events: b.customers.AddEvents}
	rec := &sentRecord{campaign: "early", run: "r1", id: "e0", ref: "SMearly", customer: "e0",
		event: customers.Event{Kind: "sms.out", Key: "campaign:early:r1:e0"}}
	if r := w.record(ctx, rec); r.ledger != nil || r.event != nil || !r.eventWritten {
		t.Errorf("record after the report = %+v, want the event written", r)
	}
	if r := w.record(ctx, &sentRecord{campaign: "early", run: "r1", id: "e0", ref: "SMearly", customer: "e0",
		event: customers.Event{Kind: "sms.out", Key: "campaign:early:r1:e0"}}); r.ledger != nil || r.event != nil {
		t.Errorf("second record = %+v", r)
	}
	events, err := b.customers.Timeline(ctx, "e0", 10)
	if err != nil || len(events) != 1 || events[0].Kind != "sms.out" {
		t.Errorf("timeline = %+v, %v; want one sms.out event", events, err)
	}
	if st := b.status(t, "early", "r1"); st.Counts.Delivered != 1 || st.Counts.Sending != 0 || st.Counts.Sent != 0 {
		t.Errorf("counts %+v, want 1 delivered", st.Counts)
	}
}
