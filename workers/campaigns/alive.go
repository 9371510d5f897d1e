package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
)

// A daemon that dies while its chunks hold in-flight slots (SIGKILL, a
// lost machine) keeps those slots until their leases run out (SlotLease,
// two minutes by default), and a run whose slots it held sends nothing
// meanwhile. A daemon that runs KeepAlive puts its id in the lease tokens
// of its chunks and keeps a key saying it is alive, refreshed every
// AliveTTL/4 and expiring after AliveTTL. A chunk refused a slot frees the
// slots whose daemon's key has expired, and every AliveTTL each daemon
// looks by itself in the runs the dead ones had slots in (reapDead), so
// the run goes on about AliveTTL after a crash instead of SlotLease. Each
// chunk freed is enqueued again (takeOver): its own task stays with the
// dead daemon until asynq gives it back, a minute or two later.
//
// The other side of it: a daemon that cannot refresh its key for
// AliveTTL/2 (Redis unreachable from it, the process stalled) stops
// sending before the others may take its slots over, so that no recipient
// is sent to by two daemons. The message on the wire at that moment is
// the one a crash can send twice, as before.

// errLostTouch stops a chunk whose daemon could not tell Redis it is alive.
var errLostTouch = errors.New("campaigns: this daemon could not refresh its alive key: stopped sending before another daemon takes over its slots")

// newDaemonID returns a random id for this engine's lease tokens.
func newDaemonID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// KeepAlive refreshes the engine's alive key until ctx is done; run it
// for as long as the engine's chunks may run (stop it after the workers
// have stopped). While it runs, chunks mark their slots with the engine's
// id, free the slots of engines whose key has expired, and stop sending
// when the key could not be refreshed for AliveTTL/2. The key is left to
// expire: a chunk still finishing elsewhere in the process keeps its slot.
func (e *Engine) KeepAlive(ctx context.Context) {
	key := e.store.keys.alive(e.id)
	tick := time.NewTicker(e.cfg.AliveTTL / 4)
	defer tick.Stop()
	var failing bool
	var reaping sync.WaitGroup
	defer reaping.Wait()
	for n := 0; ; n++ {
		sent := time.Now() // the key lives AliveTTL from about now
		pipe := e.store.rdb.Pipeline()
		pipe.Set(ctx, key, sent.UTC().Format(time.RFC3339), e.cfg.AliveTTL)
		pipe.SAdd(ctx, e.store.keys.daemons(), e.id)
		_, err := pipe.Exec(ctx)
		switch {
		case err == nil:
			e.aliveAt.Store(sent.UnixNano())
			e.keepAlive.Store(true) // from the first refresh on
			if failing {
				e.cfg.Logger.Info("campaigns: alive key refreshed again", "daemon", e.id)
			}
			failing = false
		case ctx.Err() == nil && !failing:
			e.cfg.Logger.Warn("campaigns: refresh the alive key", "daemon", e.id, "error", err)
			failing = true
		}
		// every AliveTTL, beside the refreshes: a dead daemon with many
		// runs must not delay this one's next refresh
		if err == nil && n%4 == 3 && e.reaping.CompareAndSwap(false, true) {
			reaping.Go(func() {
				defer e.reaping.Store(false)
				e.reapDead(ctx)
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reapDead frees the slots that daemons whose alive key has expired held
// in the runs they sent (their chunks are taken over), then forgets those
// daemons. It is what frees the slots of a run none of whose other chunks
// ask for a slot any more (its last chunks were all on the dead daemon).
func (e *Engine) reapDead(ctx context.Context) {
	k := e.store.keys
	ids, err := e.store.rdb.SMembers(ctx, k.daemons()).Result()
	if err != nil {
		e.cfg.Logger.Warn("campaigns: list daemons", "error", err)
		return
	}
	others := slices.DeleteFunc(ids, func(id string) bool { return id == e.id })
	dead, err := e.store.deadDaemons(ctx, others)
	if err != nil {
		e.cfg.Logger.Warn("campaigns: read alive keys", "error", err)
		return
	}
	for _, id := range dead {
		runs, err := e.store.rdb.SMembers(ctx, k.daemonRuns(id)).Result()
		if err != nil {
			e.cfg.Logger.Warn("campaigns: list a dead daemon's runs", "daemon", id, "error", err)
			continue
		}
		ok := true
		for _, cr := range runs {
			campaign, run, _ := strings.Cut(cr, "\n")
			l := &lease{store: e.store, rk: k.run(campaign, run), campaign: campaign, run: run, daemon: e.id, logger: e.cfg.Logger,
				takeOver: e.takeOver}
			if _, err := l.freeDeadSlots(ctx); err != nil {
				e.cfg.Logger.Warn("campaigns: free a dead daemon's slots", "daemon", id, "error", err)
				ok = false
			}
		}
		if ok {
			pipe := e.store.rdb.Pipeline()
			pipe.Del(ctx, k.daemonRuns(id))
			pipe.SRem(ctx, k.daemons(), id)
			if _, err := pipe.Exec(ctx); err != nil {
				e.cfg.Logger.Warn("campaigns: forget a dead daemon", "daemon", id, "error", err)
			}
		}
	}
}

// noteRun records that this daemon holds slots of run, for reapDead.
func (l *lease) noteRun(ctx context.Context) error {
	if err := l.store.rdb.SAdd(ctx, l.store.keys.daemonRuns(l.daemon), l.campaign+"\n"+l.run).Err(); err != nil {
		return fmt.Errorf("campaign %s run %s: note the run's slots: %w", l.campaign, l.run, err)
	}
	return nil
}

// checkAlive returns errLostTouch when KeepAlive runs but last refreshed
// the alive key more than AliveTTL/2 ago.
func (e *Engine) checkAlive() error {
	if !e.keepAlive.Load() {
		return nil
	}
	if since := time.Since(time.Unix(0, e.aliveAt.Load())); since > e.cfg.AliveTTL/2 {
		return fmt.Errorf("%w (last refresh %s ago)", errLostTouch, since.Round(time.Second))
	}
	return nil
}

// leaseToken is a new lease token: "<daemon id>/<random>" while KeepAlive
// runs, so that other daemons can tell whose it is.
func (e *Engine) leaseToken() string {
	t := NewRunID(e.cfg.Now())
	if e.keepAlive.Load() {
		t = e.id + "/" + t
	}
	return t
}

// tokenDaemon returns the daemon id of a lease token, "" for none.
func tokenDaemon(token string) string {
	id, _, ok := strings.Cut(token, "/")
	if !ok {
		return ""
	}
	return id
}

// freeDeadSlots releases the run's slots held by other daemons whose alive
// key has expired, hands each chunk freed to takeOver, and returns how
// many it released.
func (l *lease) freeDeadSlots(ctx context.Context) (int, error) {
	owners, err := l.store.rdb.HGetAll(ctx, l.rk.owners).Result()
	if err != nil {
		return 0, fmt.Errorf("campaign %s run %s: read slot owners: %w", l.campaign, l.run, err)
	}
	byDaemon := map[string]map[string]string{} // daemon -> chunk -> token
	for chunk, token := range owners {
		id := tokenDaemon(token)
		if id == "" || id == l.daemon {
			continue
		}
		if byDaemon[id] == nil {
			byDaemon[id] = map[string]string{}
		}
		byDaemon[id][chunk] = token
	}
	dead, err := l.store.deadDaemons(ctx, slices.Collect(maps.Keys(byDaemon)))
	if err != nil {
		return 0, fmt.Errorf("campaign %s run %s: read alive keys: %w", l.campaign, l.run, err)
	}
	freed := 0
	for _, id := range dead {
		chunks := byDaemon[id]
		for chunk, token := range chunks {
			n, err := releaseSlotScript.Run(ctx, l.store.rdb, []string{l.rk.slots, l.rk.owners}, chunk, token).Int()
			if err != nil {
				return freed, fmt.Errorf("campaign %s run %s: free chunk %s's slot: %w", l.campaign, l.run, chunk, err)
			}
			freed += n
			if k, err := strconv.Atoi(chunk); err == nil && n == 1 && l.takeOver != nil {
				l.takeOver(ctx, l.campaign, l.run, k, id)
			}
		}
		l.logger.Info("campaign slots freed: their daemon stopped refreshing its alive key",
			"campaign", l.campaign, "run", l.run, "daemon", id, "chunks", len(chunks))
	}
	return freed, nil
}

// deadDaemons returns those of ids whose alive key has expired, in one
// round trip.
func (s *Store) deadDaemons(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		exists[i] = pipe.Exists(ctx, s.keys.alive(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var dead []string
	for i, id := range ids {
		if exists[i].Val() == 0 {
			dead = append(dead, id)
		}
	}
	return dead, nil
}

// takeOver enqueues chunk n of run again, under a task id of its own: its
// task is still "active" in the queue, held by the daemon that died, and
// asynq gives such a task back only a minute or two after its last lease
// (30s) ran out. The ledger makes the two tasks safe together: whichever
// runs second finds the recipients sent and the chunk done.
func (e *Engine) takeOver(ctx context.Context, campaign, run string, n int, dead string) {
	id := jobs.CampaignChunkArgs{Campaign: campaign, Run: run, Chunk: n}.TaskID() + ":takeover:" + dead
	if err := e.enqueueChunk(ctx, campaign, run, n, asynq.TaskID(id)); err != nil {
		e.cfg.Logger.Warn("campaign chunk: take over a dead daemon's chunk", "campaign", campaign, "run", run, "chunk", n, "error", err)
		return
	}
	e.cfg.Logger.Info("campaign chunk taken over from a daemon that stopped", "campaign", campaign, "run", run, "chunk", n, "daemon", dead, "task_id", id)
}
