package campaigns

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/redistest"
)

// keepAlive runs e.KeepAlive until the returned stop is called, and waits
// for its first refresh.
func keepAlive(t *testing.T, e *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.KeepAlive(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	deadline := time.Now().Add(5 * time.Second)
	for !e.keepAlive.Load() {
		if time.Now().After(deadline) {
			t.Fatal("KeepAlive did not refresh its key")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return stop
}

// otherDaemonHolds starts a second engine on b's Redis, kept alive, whose
// chunk 0 of campaign's run r1 holds the run's only slot (as a lease that
// never runs out); kill stops its KeepAlive and leaves its key to expire,
// as a SIGKILL does.
func otherDaemonHolds(t *testing.T, b *bundle, campaign string) (other *Engine, kill func()) {
	t.Helper()
	other, err := New(b.engine.cfg)
	if err != nil {
		t.Fatal(err)
	}
	kill = keepAlive(t, other)
	held := &lease{store: other.store, rk: other.store.keys.run(campaign, "r1"), chunk: 0, token: other.leaseToken(),
		ttl: time.Hour, slots: 1, campaign: campaign, run: "r1", daemon: other.id, logger: other.cfg.Logger}
	if busy, err := held.acquire(t.Context()); err != nil || busy != nil {
		t.Fatalf("the other daemon takes the slot: %v %+v", err, busy)
	}
	return other, kill
}

// The slot of a daemon that died holding it is freed once its alive key
// expires, long before the slot's lease would (the test clock never moves,
// so the lease never expires here); while that daemon lives, its slot is
// respected.
func TestSlotsOfADeadDaemonAreFreed(t *testing.T) {
	t.Parallel()
	srv, b, chunk := oneSlotRun(t, "alive", 2)
	ctx := t.Context()
	const ttl = 600 * time.Millisecond
	b.engine.cfg.AliveTTL = ttl
	keepAlive(t, b.engine)
	dead, kill := otherDaemonHolds(t, b, "alive")

	var h *HoldError
	if err := b.engine.HandleChunk(ctx, chunk(1)); !errors.As(err, &h) {
		t.Fatalf("chunk 1 while the slot's daemon lives = %v, want a hold", err)
	}
	if n := srv.Count(); n != 0 {
		t.Fatalf("%d messages sent while the slot was taken", n)
	}

	kill() // its key stays until it expires, as after a SIGKILL
	aliveKey := dead.store.keys.alive(dead.id)
	deadline := time.Now().Add(10 * ttl)
	for b.rdb.Exists(ctx, aliveKey).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the dead daemon's alive key did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.engine.HandleChunk(ctx, chunk(1)); err != nil {
		t.Fatalf("chunk 1 after the slot's daemon died = %v, want it sent", err)
	}
	// chunk 0's own task is still "active", held by the dead daemon: it is
	// enqueued again under a task id of its own
	takeover := chunk(0).TaskID() + ":takeover:" + dead.id
	if info, err := b.inspector.GetTaskInfo(jobs.QueueCampaigns, takeover); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task %s: %+v, %v; want it pending", takeover, info, err)
	}
	if err := b.engine.HandleChunk(ctx, chunk(0)); err != nil {
		t.Fatalf("chunk 0, the dead daemon's, run again = %v, want it sent", err)
	}
	if n := srv.Count(); n != 2 {
		t.Errorf("%d messages, want one per recipient", n)
	}
	if st := b.status(t, "alive", "r1"); st.State != StateFinished || st.Counts.Sent != 2 {
		t.Errorf("run %s with %+v, want finished with 2 sent", st.State, st.Counts)
	}
}

// A daemon that could not refresh its alive key for half its TTL sends
// nothing more: the other daemons may take its slots over soon. The
// recipient goes back to pending and the chunk's slot is given back.
func TestChunkStopsWhenItsDaemonLostTouch(t *testing.T) {
	t.Parallel()
	srv, b, chunk := oneSlotRun(t, "touch", 1)
	ctx := t.Context()
	e := b.engine
	e.keepAlive.Store(true)
	e.aliveAt.Store(time.Now().Add(-time.Minute).UnixNano())
	if err := e.HandleChunk(ctx, chunk(0)); !errors.Is(err, errLostTouch) {
		t.Fatalf("HandleChunk = %v, want %v", err, errLostTouch)
	}
	if n := srv.Count(); n != 0 {
		t.Errorf("%d messages sent by a daemon that lost touch", n)
	}
	if st := b.status(t, "touch", "r1"); st.Counts.Pending != 1 || st.Counts.Sending != 0 {
		t.Errorf("counts %+v, want the recipient back to pending", st.Counts)
	}
	if n := b.rdb.HLen(ctx, e.store.keys.run("touch", "r1").owners).Val(); n != 0 {
		t.Errorf("%d slots still held, want the chunk's given back", n)
	}
	e.aliveAt.Store(time.Now().UnixNano()) // the key was refreshed again
	if err := e.HandleChunk(ctx, chunk(0)); err != nil {
		t.Fatalf("HandleChunk once in touch again = %v", err)
	}
	if n := srv.Count(); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// A live daemon frees a dead one's slots by itself, every AliveTTL, and
// enqueues their chunks again: the run's last chunks may all have been on
// the daemon that died, with no other chunk left to ask for a slot.
func TestLiveDaemonTakesOverADeadOnesChunks(t *testing.T) {
	t.Parallel()
	srv, b, chunk := oneSlotRun(t, "reap", 1)
	ctx := t.Context()
	const ttl = 400 * time.Millisecond
	b.engine.cfg.AliveTTL = ttl
	dead, kill := otherDaemonHolds(t, b, "reap")
	kill()
	keepAlive(t, b.engine)

	waitTakenOver(t, b, "reap", dead.id, 20*ttl)
	if err := b.engine.HandleChunk(ctx, chunk(0)); err != nil {
		t.Fatalf("the chunk taken over = %v, want it sent", err)
	}
	if n := srv.Count(); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// waitTakenOver waits, at most for, until chunk 0 of campaign's run r1,
// whose slot the dead daemon held, has its slot free and its takeover
// task queued, and the dead daemon is forgotten.
func waitTakenOver(t *testing.T, b *bundle, campaign, dead string, within time.Duration) {
	t.Helper()
	ctx := t.Context()
	takeover := jobs.CampaignChunkArgs{Campaign: campaign, Run: "r1", Chunk: 0}.TaskID() + ":takeover:" + dead
	k := b.engine.store.keys
	owners := k.run(campaign, "r1").owners
	deadline := time.Now().Add(within)
	for {
		info, err := b.inspector.GetTaskInfo(jobs.QueueCampaigns, takeover)
		if err == nil && info.State == asynq.TaskStatePending && b.rdb.HLen(ctx, owners).Val() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: %+v, %v; slots held %d: want it pending and the slot free", takeover, info, err, b.rdb.HLen(ctx, owners).Val())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for b.rdb.SIsMember(ctx, k.daemons(), dead).Val() {
		if time.Now().After(deadline) {
			t.Fatal("the dead daemon is still in the daemons set")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.rdb.Exists(ctx, k.daemonRuns(dead)).Val() != 0 {
		t.Error("the dead daemon's runs set is still there")
	}
}

// On Redis Cluster the alive keys, the daemons set and a run's slots live
// on different shards: the refresh, the look for dead daemons and the
// takeover work across them.
func TestDeadDaemonTakenOverOnCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	const ttl = 400 * time.Millisecond
	b := setupOn(t, rdb, func(c *Config) { c.AliveTTL = ttl })
	plannedRun(t, b, "clu", "r1", "a@x.sk")
	dead, kill := otherDaemonHolds(t, b, "clu")
	kill()
	keepAlive(t, b.engine)
	waitTakenOver(t, b, "clu", dead.id, 20*ttl)
}
