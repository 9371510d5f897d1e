package campaigns

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/redistest"
)

// plannedRun launches a run of a file audience of the given addresses.
func plannedRun(t *testing.T, b *bundle, campaign, run string, emails ...string) {
	t.Helper()
	content := "email\n"
	for _, e := range emails {
		content += e + "\n"
	}
	b.writeFile(t, campaign+".csv", content)
	c := emailCampaign(campaign, jobs.Audience{File: campaign + ".csv"})
	c.MaxErrorRatio = 0.5
	if err := b.engine.HandleLaunch(t.Context(), launchArgs(c, run)); err != nil {
		t.Fatalf("HandleLaunch: %v", err)
	}
}

func TestTransitionsKeepCountsInStep(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MinAttempts = 4 })
	ctx := t.Context()
	plannedRun(t, b, "moves", "r1", "a@x.sk", "b@x.sk", "c@x.sk", "d@x.sk", "e@x.sk", "f@x.sk")
	s := b.engine.store
	steps := []struct {
		id   string
		t    transition
		want transitionResult
	}{
		{"a@x.sk", transition{from: []EntryState{EntryPending}, to: EntrySending, requireRun: StateRunning}, transitionResult{moved: true, old: EntryPending}},
		{"a@x.sk", transition{from: []EntryState{EntryPending}, to: EntrySending, requireRun: StateRunning}, transitionResult{old: EntrySending}},
		{"a@x.sk", transition{from: []EntryState{EntrySending}, to: EntrySent, detail: "<id>"}, transitionResult{moved: true, old: EntrySending}},
		{"b@x.sk", transition{from: []EntryState{EntryPending}, to: EntrySkipped, detail: ReasonOptedOut}, transitionResult{moved: true, old: EntryPending}},
		{"c@x.sk", transition{from: []EntryState{EntryPending}, to: EntryFailed, detail: "550|no", maxRatio: 0.5, minAttempts: 4}, transitionResult{moved: true, old: EntryPending}},
		{"d@x.sk", transition{from: []EntryState{EntryPending}, to: EntrySending}, transitionResult{moved: true, old: EntryPending}},
		{"d@x.sk", transition{from: []EntryState{EntrySending}, to: EntryPending}, transitionResult{moved: true, old: EntrySending}},
		{"d@x.sk", transition{from: []EntryState{EntryPending}, to: EntryFailed, detail: "550|no", maxRatio: 0.5, minAttempts: 4}, transitionResult{moved: true, old: EntryPending}},
		{"e@x.sk", transition{from: []EntryState{EntryPending}, to: EntryFailed, detail: "550|no", maxRatio: 0.5, minAttempts: 4}, transitionResult{moved: true, old: EntryPending, paused: true}},
		{"f@x.sk", transition{from: []EntryState{EntryPending}, to: EntrySending, requireRun: StateRunning}, transitionResult{runState: StatePaused}},
		{"nobody", transition{from: []EntryState{EntryPending}, to: EntrySending}, transitionResult{old: "missing"}},
	}
	for i, st := range steps {
		got, err := s.transition(ctx, "moves", "r1", st.id, st.t)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != st.want {
			t.Errorf("step %d (%s -> %s): got %+v, want %+v", i, st.id, st.t.to, got, st.want)
		}
		checkCounts(t, b.status(t, "moves", "r1"))
	}
	st := b.status(t, "moves", "r1")
	want := Counts{Total: 6, Pending: 1, Sent: 1, Failed: 3, Skipped: 1}
	if diff := cmp.Diff(want, st.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if st.State != StatePaused || st.Reason == "" || st.SentPerMinute != 1 {
		t.Errorf("state %s (%q), sent/min %d: want paused by the error ratio, 1 sent this minute", st.State, st.Reason, st.SentPerMinute)
	}
	e, err := s.Entry(ctx, "moves", "r1", "c@x.sk")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != EntryFailed || e.Code() != "550" || e.Text() != "no" || !e.At.Equal(b.clock.Now()) {
		t.Errorf("entry = %+v, want failed 550 'no' at the clock's time", e)
	}
}

// One script call moves a batch: each recipient is judged on the state it
// has when its turn comes, so one named twice moves once, and the
// counters and the noevent set follow the moves only.
func TestTransitionOfABatch(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	plannedRun(t, b, "batch", "r1", "a@x.sk", "b@x.sk", "c@x.sk")
	s := b.engine.store
	if _, err := s.transition(ctx, "batch", "r1", "c@x.sk", transition{from: []EntryState{EntryPending}, to: EntrySkipped, detail: ReasonOptedOut}); err != nil {
		t.Fatal(err)
	}
	moves := []move{
		{id: "a@x.sk", detail: "<1@x>", needEvent: true},
		{id: "b@x.sk", detail: "<2@x>"},
		{id: "a@x.sk", detail: "<3@x>", needEvent: true},
		{id: "c@x.sk", detail: "<4@x>", needEvent: true},
		{id: "nobody", detail: "<5@x>", needEvent: true},
	}
	res, err := s.applyMoves(ctx, "batch", "r1", moves, transition{from: []EntryState{EntryPending, EntrySending}, to: EntrySent})
	if err != nil {
		t.Fatal(err)
	}
	wantMoved := []bool{true, true, false, false, false}
	wantOld := []EntryState{EntryPending, EntryPending, EntrySent, EntrySkipped, "missing"}
	if diff := cmp.Diff(wantMoved, res.moved); diff != "" {
		t.Errorf("moved (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantOld, res.old); diff != "" {
		t.Errorf("old states (-want +got):\n%s", diff)
	}
	for id, want := range map[string]string{"a@x.sk": "<1@x>", "b@x.sk": "<2@x>"} {
		if e, err := s.Entry(ctx, "batch", "r1", id); err != nil || e.State != EntrySent || e.Detail != want {
			t.Errorf("%s: %+v, %v; want sent with %s, the detail of its first move", id, e, err, want)
		}
	}
	st := b.status(t, "batch", "r1")
	checkCounts(t, st)
	if want := (Counts{Total: 3, Sent: 2, Skipped: 1}); st.Counts != want || st.SentPerMinute != 2 {
		t.Errorf("counts %+v, sent/min %d; want %+v and 2", st.Counts, st.SentPerMinute, want)
	}
	noevent, err := b.rdb.SMembers(ctx, s.keys.run("batch", "r1").noevent).Result()
	if err != nil || len(noevent) != 1 || noevent[0] != "a@x.sk" {
		t.Errorf("noevent = %v, %v; want only a@x.sk, the one moved that needs its event", noevent, err)
	}
}

func TestPauseResumeCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	plannedRun(t, b, "states", "r1", "a@x.sk")
	e := b.engine
	steps := []struct {
		do    func() error
		state State
		err   error
	}{
		{func() error { return e.Resume(ctx, "states", "") }, StateRunning, ErrState},
		{func() error { return e.Pause(ctx, "states", "", "") }, StatePaused, nil},
		{func() error { return e.Pause(ctx, "states", "r1", "") }, StatePaused, ErrState},
		{func() error { return e.Resume(ctx, "states", "r1") }, StateRunning, nil},
		{func() error { return e.Cancel(ctx, "states", "", "enough") }, StateCancelled, nil},
		{func() error { return e.Resume(ctx, "states", "") }, StateCancelled, ErrState},
		{func() error { return e.Pause(ctx, "nope", "", "") }, "", ErrNoRun},
	}
	for i, s := range steps {
		if err := s.do(); !errors.Is(err, s.err) {
			t.Fatalf("step %d: error %v, want %v", i, err, s.err)
		}
		if s.state != "" {
			if got := b.status(t, "states", "r1").State; got != s.state {
				t.Errorf("step %d: state %s, want %s", i, got, s.state)
			}
		}
	}
	if st := b.status(t, "states", "r1"); st.Reason != "enough" || st.Finished.IsZero() {
		t.Errorf("cancelled run: reason %q finished %v", st.Reason, st.Finished)
	}
}

func TestSlotsLimitChunksInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	s := b.engine.store
	rk := s.keys.run("slots", "r1")
	mk := func(chunk int, token string) *lease {
		return &lease{store: s, rk: rk, chunk: chunk, token: token, ttl: time.Minute, slots: 2, campaign: "slots", run: "r1"}
	}
	a, bb, c, a2 := mk(0, "ta"), mk(1, "tb"), mk(2, "tc"), mk(0, "other")
	for _, l := range []*lease{a, bb} {
		if busy, err := l.acquire(ctx); err != nil || busy != nil {
			t.Fatalf("acquire chunk %d: %v %+v", l.chunk, err, busy)
		}
	}
	if busy, err := c.acquire(ctx); err != nil || busy == nil || busy.why != "run" {
		t.Fatalf("third chunk: %v %+v, want refused: run full", err, busy)
	}
	if busy, err := a2.acquire(ctx); err != nil || busy == nil || busy.why != "chunk" {
		t.Fatalf("chunk 0 by another worker: %v %+v, want refused: chunk held", err, busy)
	}
	if busy, err := a.acquire(ctx); err != nil || busy != nil {
		t.Fatalf("renew chunk 0: %v %+v", err, busy)
	}
	if err := a.release(ctx); err != nil {
		t.Fatal(err)
	}
	if busy, err := c.acquire(ctx); err != nil || busy != nil {
		t.Fatalf("third chunk after a release: %v %+v", err, busy)
	}
	// a crashed worker's lease expires
	b.clock.Set(b.clock.Now().Add(2 * time.Minute))
	if busy, err := a2.acquire(ctx); err != nil || busy != nil {
		t.Fatalf("chunk 0 after the leases expired: %v %+v", err, busy)
	}
	if got := slotsFor(10, 20, 8); got != 1 {
		t.Errorf("slotsFor(10/s) = %d, want 1", got)
	}
	if got := slotsFor(1000, 20, 8); got != 8 {
		t.Errorf("slotsFor(1000/s) = %d, want 8", got)
	}
}

func TestRecordDeliveryStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	plannedRun(t, b, "dlr", "r1", "a@x.sk", "b@x.sk", "c@x.sk")
	s := b.engine.store
	for _, id := range []string{"a@x.sk", "b@x.sk", "c@x.sk"} {
		if _, err := s.transition(ctx, "dlr", "r1", id, transition{from: []EntryState{EntryPending}, to: EntrySending}); err != nil {
			t.Fatal(err)
		}
		if err := s.indexSID(ctx, "SM"+id[:1], sidRef{campaign: "dlr", run: "r1", recipient: id, customer: "cust-" + id[:1]}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.transition(ctx, "dlr", "r1", "a@x.sk", transition{from: []EntryState{EntrySending}, to: EntrySent, detail: "SMa"}); err != nil {
		t.Fatal(err)
	}
	l := b.engine.Ledger()
	steps := []struct {
		sid, status, code string
		customer          string
		err               error
	}{
		{"SMa", "sent", "", "cust-a", nil},
		{"SMa", "delivered", "", "cust-a", nil},
		{"SMa", "delivered", "", "cust-a", nil},        // a repeated callback
		{"SMb", "undelivered", "30005", "cust-b", nil}, // before the sender recorded "sent"
		{"SMc", "failed", "30008", "cust-c", nil},
		{"SMzz", "delivered", "", "", ErrUnknownSID},
	}
	for _, st := range steps {
		customer, err := l.RecordDeliveryStatus(ctx, st.sid, st.status, st.code)
		if !errors.Is(err, st.err) || customer != st.customer {
			t.Errorf("RecordDeliveryStatus(%s, %s) = %q, %v; want %q, %v", st.sid, st.status, customer, err, st.customer, st.err)
		}
	}
	got := b.ledger(t, "dlr", "r1")
	want := map[string]string{"a@x.sk": "delivered|SMa", "b@x.sk": "undelivered|30005|undelivered (SMb)", "c@x.sk": "failed|30008|failed (SMc)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
	st := b.status(t, "dlr", "r1")
	checkCounts(t, st)
	if c := st.Counts; c.Delivered != 1 || c.Undelivered != 1 || c.Failed != 1 || c.Sending != 0 {
		t.Errorf("counts = %+v", c)
	}
}

// TestScriptsOnCluster runs a whole plan, the ledger moves, the slots and
// a delivery report on a Redis Cluster: every script's keys share a slot.
func TestScriptsOnCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	b := setupOn(t, rdb, nil)
	ctx := t.Context()
	plannedRun(t, b, "cluster", "r1", "a@x.sk", "b@x.sk", "c@x.sk", "d@x.sk")
	s := b.engine.store
	moves := []struct {
		id string
		t  transition
	}{
		{"a@x.sk", transition{from: []EntryState{EntryPending}, to: EntrySending, requireRun: StateRunning}},
		{"a@x.sk", transition{from: []EntryState{EntrySending}, to: EntrySent, detail: "SM1", needEvent: true}},
		{"b@x.sk", transition{from: []EntryState{EntryPending}, to: EntryFailed, detail: "550|x", maxRatio: 0.9, minAttempts: 1}},
	}
	for _, m := range moves {
		if res, err := s.transition(ctx, "cluster", "r1", m.id, m.t); err != nil || !res.moved {
			t.Fatalf("transition %s -> %s: %+v %v", m.id, m.t.to, res, err)
		}
	}
	// a batch claim, and a message recorded through the recorder
	if res, err := s.transitionMany(ctx, "cluster", "r1", []string{"c@x.sk", "d@x.sk"},
		transition{from: []EntryState{EntryPending}, to: EntrySending, requireRun: StateRunning}); err != nil || !res.moved[0] || !res.moved[1] {
		t.Fatalf("claim c, d: %+v %v", res, err)
	}
	if r := b.engine.rec.record(ctx, &sentRecord{campaign: "cluster", run: "r1", id: "c@x.sk", ref: "<c@x>"}); r.ledger != nil || r.event != nil {
		t.Fatalf("record c: %+v", r)
	}
	if _, err := s.transitionMany(ctx, "cluster", "r1", []string{"d@x.sk"}, transition{from: []EntryState{EntrySending}, to: EntrySkipped, detail: ReasonOptedOut}); err != nil {
		t.Fatal(err)
	}
	if err := s.indexSID(ctx, "SM1", sidRef{campaign: "cluster", run: "r1", recipient: "a@x.sk"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.Ledger().RecordDeliveryStatus(ctx, "SM1", "delivered", ""); err != nil {
		t.Fatal(err)
	}
	l := &lease{store: s, rk: s.keys.run("cluster", "r1"), chunk: 0, token: "t", ttl: time.Minute, slots: 1, campaign: "cluster", run: "r1"}
	if busy, err := l.acquire(ctx); err != nil || busy != nil {
		t.Fatalf("acquire: %v %+v", err, busy)
	}
	for n := range 2 {
		if err := b.engine.chunkDone(ctx, jobs.CampaignChunkArgs{Campaign: "cluster", Run: "r1", Chunk: n}, "t"); err != nil {
			t.Fatalf("chunkDone %d: %v", n, err)
		}
	}
	if err := b.engine.Pause(ctx, "cluster", "r1", ""); !errors.Is(err, ErrState) {
		t.Errorf("Pause of a finished run = %v, want ErrState", err)
	}
	st := b.status(t, "cluster", "r1")
	checkCounts(t, st)
	if st.State != StateFinished || st.Counts.Delivered != 1 || st.Counts.Failed != 1 || st.ChunksDone != 2 {
		t.Errorf("status = %+v", st)
	}
	if _, err := s.Status(context.Background(), "cluster", "nope"); !errors.Is(err, ErrNoRun) {
		t.Errorf("Status of a missing run = %v, want ErrNoRun", err)
	}
}
