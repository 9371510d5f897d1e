package main

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
	"github.com/shopworks/backoffice/workers/sms"
)

// TestLoadAndCheck runs the load loop against a small server that checks
// signatures like the daemon and files each message on its sender's
// timeline inline, then checks the count: nothing lost, nothing twice; and
// a message filed twice on purpose is reported as duplicated.
func TestLoadAndCheck(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	store := customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"})
	const token = "load-test-token"
	var (
		mu      sync.Mutex
		signed  int
		invalid int
	)
	var ts *rawServer
	ts = newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		form, err := sms.ReadForm(r.Body, r.Header.Get("Content-Type"), sms.MaxWebhookBody)
		v := sms.NewValidator(token, ts.URL)
		if err != nil || !v.Valid(r.URL.Path, r.URL.RawQuery, form, r.Header.Get(sms.SignatureHeader)) {
			mu.Lock()
			invalid++
			mu.Unlock()
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		a := sms.ParseInbound(form, "", time.Now())
		c, _, err := store.FindOrCreateByPhone(r.Context(), a.From, "load")
		if err == nil {
			_, _, err = store.AddEvent(r.Context(), c.ID, customers.Event{Kind: "sms.in", Ref: a.MessageSID, Key: a.MessageSID})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		signed++
		mu.Unlock()
	})

	o := options{url: ts.URL + "/webhooks/twilio/sms", token: token, concurrency: 4, duration: 300 * time.Millisecond,
		phones: 7, replayRatio: 0.3}
	o.signURL = o.url
	l, err := newLoad(o, cpuMeter{})
	if err != nil {
		t.Fatal(err)
	}
	res := l.runLoad(t.Context())
	if res.errors != 0 || invalid != 0 || res.calls != signed || res.calls == 0 {
		t.Fatalf("load: %d calls, %d errors; server saw %d valid, %d invalid; want every call valid", res.calls, res.errors, signed, invalid)
	}
	if got := ts.conns.Load(); got != int64(o.concurrency) {
		t.Errorf("load: server saw %d connections for %d calls, want one per worker (%d), kept alive", got, res.calls, o.concurrency)
	}
	if res.statuses[http.StatusOK] != res.calls || len(res.statuses) != 1 {
		t.Errorf("load: statuses %v, want all %d calls answered 200", res.statuses, res.calls)
	}
	if res.cpu.local || res.cpu.wall <= 0 || res.cpu.tool <= 0 {
		t.Errorf("load: cpu %+v, want this tool's CPU over the measured time and nothing else", res.cpu)
	}
	if res.replays == 0 || len(res.accepted) != res.calls-res.replays {
		t.Errorf("load: %d calls, %d replays, %d distinct messages; want replays and one entry per new message",
			res.calls, res.replays, len(res.accepted))
	}
	v, err := check(t.Context(), store, res.accepted)
	if err != nil {
		t.Fatal(err)
	}
	if v.messages != len(res.accepted) || v.found != v.messages || v.lost != 0 || v.duplicated != 0 {
		t.Errorf("check = %+v, want all %d found once", v, len(res.accepted))
	}

	// One message filed twice (without its key), one never: both reported.
	var dupSID, phone string
	for sid, p := range res.accepted {
		dupSID, phone = sid, p
		break
	}
	c, err := store.ByPhone(t.Context(), phone)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.AddEvent(t.Context(), c.ID, customers.Event{Kind: "sms.in", Ref: dupSID}); err != nil {
		t.Fatal(err)
	}
	res.accepted["SM"+randomHex(16)] = phone
	v, err = check(t.Context(), store, res.accepted)
	if err != nil {
		t.Fatal(err)
	}
	if v.lost != 1 || v.duplicated != 1 {
		t.Errorf("check after one duplicate and one missing message = %+v, want lost 1, duplicated 1", v)
	}
}

func TestSlotPacesAtRate(t *testing.T) {
	t.Parallel()
	l := &load{rate: 1000}
	start := time.Now()
	deadline := start.Add(time.Hour)
	var dues []time.Time
	for range 5 {
		due, ok := l.slot(start, deadline)
		if !ok {
			t.Fatal("slot refused before the deadline")
		}
		dues = append(dues, due)
	}
	for i, due := range dues {
		if want := start.Add(time.Duration(i) * time.Millisecond); !due.Equal(want) {
			t.Errorf("slot %d due at +%v, want +%v", i, due.Sub(start), want.Sub(start))
		}
	}
	if _, ok := (&load{rate: 1000}).slot(start, start); ok {
		t.Error("slot at the deadline = ok, want the run over")
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	s := stats{}
	for i := 1; i <= 100; i++ {
		s.lat = append(s.lat, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := s.percentile(p); got != want {
			t.Errorf("percentile(%v) = %v, want %v", p, got, want)
		}
	}
}
