package customers

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestConsentAndTimeline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1", Phone: "+421905111111"})
	t0 := b.clock.Now()

	steps := []struct {
		name    string
		ch      Channel
		st      ConsentStatus
		source  string
		at      time.Time
		changed bool
	}{
		{"opt out by STOP", ChannelSMS, OptedOut, "sms:STOP", t0, true},
		{"the same STOP again", ChannelSMS, OptedOut, "sms:STOP", t0.Add(time.Minute), false},
		{"an older opt-in arriving late", ChannelSMS, OptedIn, "import:old", t0.Add(-time.Hour), false},
		{"an opt-in sent between the two STOPs, arriving late", ChannelSMS, OptedIn, "sms:START", t0.Add(30 * time.Second), false},
		{"opt in by START", ChannelSMS, OptedIn, "sms:START", t0.Add(2 * time.Minute), true},
		{"e-mail opt in", ChannelEmail, OptedIn, "web", time.Time{}, true},
	}
	for _, st := range steps {
		changed, err := b.store.SetConsent(ctx, "c-1", st.ch, st.st, st.source, st.at)
		if err != nil || changed != st.changed {
			t.Fatalf("%s: SetConsent = %v, %v; want %v, nil", st.name, changed, err, st.changed)
		}
	}
	got, _ := b.store.Get(ctx, "c-1")
	wantConsent := map[Channel]Consent{
		ChannelSMS:   {Status: OptedIn, At: t0.Add(2 * time.Minute), Source: "sms:START"},
		ChannelEmail: {Status: OptedIn, At: t0, Source: "web"},
	}
	if diff := cmp.Diff(wantConsent, got.Consent); diff != "" {
		t.Fatalf("consent (-want,+got):\n%s", diff)
	}
	// An upsert without consent keeps it.
	mustUpsert(t, b.store, Customer{ID: "c-1", Phone: "+421905111111", Name: "Jana"})
	if got, _ := b.store.Get(ctx, "c-1"); !cmp.Equal(wantConsent, got.Consent) {
		t.Fatalf("consent after an upsert without consent = %v, want %v", got.Consent, wantConsent)
	}
	events, err := b.store.Timeline(ctx, "c-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{At: t0, Channel: "email", Kind: "consent.opt_in", Ref: "web", Text: "email opted in"},
		{At: t0.Add(2 * time.Minute), Channel: "sms", Kind: "consent.opt_in", Ref: "sms:START", Text: "sms opted in"},
		{At: t0, Channel: "sms", Kind: "consent.opt_out", Ref: "sms:STOP", Text: "sms opted out"},
	}
	if diff := cmp.Diff(want, events, cmpopts.IgnoreFields(Event{}, "ID")); diff != "" {
		t.Fatalf("Timeline (-want,+got):\n%s", diff)
	}
	if _, err := b.store.SetConsent(ctx, "nobody", ChannelSMS, OptedOut, "x", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetConsent(nobody) error = %v, want ErrNotFound", err)
	}
	if _, err := b.store.SetConsent(ctx, "c-1", "fax", OptedOut, "x", t0); err == nil || !strings.Contains(err.Error(), "field channel") {
		t.Errorf("SetConsent(fax) error = %v, want field channel", err)
	}
	if _, err := b.store.Timeline(ctx, "nobody", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("Timeline(nobody) error = %v, want ErrNotFound", err)
	}
}

func TestAddEventExactlyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1"})
	const n = 20
	type result struct {
		id    string
		added bool
		err   error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, added, err := b.store.AddEvent(ctx, "c-1", Event{Channel: "sms", Kind: "sms.in", Ref: "SM123", Text: "hello", Key: "sms:SM123"})
			results[i] = result{id, added, err}
		})
	}
	wg.Wait()
	added := 0
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("AddEvent: %v", r.err)
		}
		if r.added {
			added++
		}
		if r.id != results[0].id {
			t.Fatalf("AddEvent with one key returned ids %s and %s", results[0].id, r.id)
		}
	}
	if added != 1 {
		t.Fatalf("%d concurrent AddEvent calls with one key added %d events, want 1", n, added)
	}
	long := strings.Repeat("ž", 600)
	if _, added, err := b.store.AddEvent(ctx, "c-1", Event{Kind: "letter", Text: long}); err != nil || !added {
		t.Fatalf("AddEvent(no key) = %v, %v", added, err)
	}
	events, _ := b.store.Timeline(ctx, "c-1", 10)
	if len(events) != 2 || events[1].ID != results[0].id || events[1].Kind != "sms.in" || !events[1].At.Equal(b.clock.Now()) {
		t.Fatalf("Timeline = %+v; want the letter then the one sms.in %s", events, results[0].id)
	}
	if got := []rune(events[0].Text); len(got) != 500 {
		t.Errorf("event text has %d runes, want it cut to 500", len(got))
	}
	if _, _, err := b.store.AddEvent(ctx, "nobody", Event{Kind: "letter"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddEvent(nobody) error = %v, want ErrNotFound", err)
	}
	if _, _, err := b.store.AddEvent(ctx, "c-1", Event{}); err == nil || !strings.Contains(err.Error(), "field kind") {
		t.Errorf("AddEvent(no kind) error = %v, want field kind", err)
	}
}

// AddEvents adds a batch in one round trip with AddEvent's rules: once per
// key, and a per-event error for an unknown customer or a bad event.
func TestAddEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1"})
	mustUpsert(t, b.store, Customer{ID: "c-2"})
	batch := []CustomerEvent{
		{ID: "c-1", Event: Event{Kind: "mail.sent", Ref: "<m1@x>", Key: "campaign:a:r1:c-1"}},
		{ID: "nobody", Event: Event{Kind: "mail.sent", Key: "campaign:a:r1:nobody"}},
		{ID: "c-2", Event: Event{}}, // no kind
		{ID: "c-2", Event: Event{Kind: "mail.sent", Ref: "<m2@x>", Key: "campaign:a:r1:c-2"}},
	}
	errs, err := b.store.AddEvents(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrNotFound) || errs[2] == nil || !strings.Contains(errs[2].Error(), "field kind") || errs[3] != nil {
		t.Fatalf("AddEvents errors = %v", errs)
	}
	if _, err := b.store.AddEvents(ctx, batch[:1]); err != nil { // the same key again: nothing added
		t.Fatal(err)
	}
	for id, ref := range map[string]string{"c-1": "<m1@x>", "c-2": "<m2@x>"} {
		events, err := b.store.Timeline(ctx, id, 10)
		if err != nil || len(events) != 1 || events[0].Ref != ref {
			t.Errorf("timeline of %s = %+v, %v; want the one event %s", id, events, err, ref)
		}
	}
	if errs, err := b.store.AddEvents(ctx, nil); err != nil || len(errs) != 0 {
		t.Errorf("AddEvents(nil) = %v, %v", errs, err)
	}
}

func TestTimelineIsTrimmed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := New(b.rdb, "bo:", Options{TimelineMaxLen: 10, Now: b.clock.Now})
	mustUpsert(t, s, Customer{ID: "c-1"})
	for range 1000 {
		if _, _, err := s.AddEvent(t.Context(), "c-1", Event{Kind: "sms.out"}); err != nil {
			t.Fatal(err)
		}
	}
	// MAXLEN ~ trims whole stream nodes (100 entries by default).
	if n := b.rdb.XLen(t.Context(), "bo:customer:{c-1}:timeline").Val(); n > 200 {
		t.Fatalf("timeline length after 1000 events with TimelineMaxLen 10 = %d, want it trimmed", n)
	}
}

func TestFindOrCreateByPhone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	c, created, err := b.store.FindOrCreateByPhone(ctx, "0905 123 456", "sms:SM1")
	if err != nil || !created {
		t.Fatalf("FindOrCreateByPhone(new) = %+v, %v, %v", c, created, err)
	}
	if c.ID != UnknownID("+421905123456") || !c.Unknown || c.Phone != "+421905123456" {
		t.Fatalf("new contact = %+v; want unknown contact %s", c, UnknownID("+421905123456"))
	}
	again, created, err := b.store.FindOrCreateByPhone(ctx, "+421905123456", "sms:SM2")
	if err != nil || created || again.ID != c.ID {
		t.Fatalf("FindOrCreateByPhone(again) = %s, %v, %v; want %s, false", again.ID, created, err, c.ID)
	}
	events, _ := b.store.Timeline(ctx, c.ID, 10)
	if len(events) != 1 || events[0].Kind != "contact.created" || events[0].Ref != "sms:SM1" {
		t.Fatalf("timeline of the new contact = %+v; want one contact.created from sms:SM1", events)
	}
	mustUpsert(t, b.store, Customer{ID: "c-7", Phone: "+421905777777"})
	if got, created, err := b.store.FindOrCreateByPhone(ctx, "0905777777", "sms:SM3"); err != nil || created || got.ID != "c-7" {
		t.Fatalf("FindOrCreateByPhone(known) = %s, %v, %v; want c-7", got.ID, created, err)
	}
	if _, _, err := b.store.FindOrCreateByPhone(ctx, "garbage", "sms:SM4"); err == nil || !strings.Contains(err.Error(), `"garbage"`) {
		t.Fatalf("FindOrCreateByPhone(garbage) error = %v", err)
	}
}
