package campaigns

import (
	"context"
	"fmt"
	"sync"
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
		b.addCustomers(t, customers.Customer{ID: ids[i], Email: ids[i] + "@example.sk", Tags: []string{"n"}})
	}
	camp := emailCampaign("group", jobs.Audience{Tags: []string{"n"}})
	camp.RatePerSecond = 100
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.store.transitionMany(ctx, "group", "r1", ids, transition{from: []EntryState{EntryPending}, to: EntrySending}); err != nil {
		t.Fatal(err)
	}

	hold := make(chan struct{})
	var mu sync.Mutex
	var calls []int // events per call of AddEvents
	w := &recorder{store: b.engine.store, warn: t.Logf, events: func(ctx context.Context, evs []customers.CustomerEvent) ([]error, error) {
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
		return w.record(ctx, &sentRecord{campaign: "group", run: "r1", id: ids[i], ref: fmt.Sprintf("<m%d@x>", i),
			customer: ids[i], event: customers.Event{Kind: "mail.sent", Key: "campaign:group:r1:" + ids[i]}})
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
		if r.ledger != nil || r.event != nil || r.lead {
			t.Errorf("record %d = %+v", i, r)
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
	if left := b.rdb.SCard(ctx, b.engine.store.keys.run("group", "r1").noevent).Val(); left != 0 {
		t.Errorf("%d recipients still wait for their event", left)
	}
	// Recording again finds nothing sending: no second event, no error.
	if r := record(3); r.ledger != nil || r.event != nil {
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
