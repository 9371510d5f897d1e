package campaigns

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"
)

// slotsFor is how many chunks of a run may send at once: enough for the
// campaign's rate when one chunk manages perChunk sends a second, at most
// limit. The rest wait in the queue instead of holding workers that would
// only wait for the rate limiter.
func slotsFor(perSecond, perChunk float64, limit int) int {
	n := int(math.Ceil(perSecond / perChunk))
	return min(max(n, 1), limit)
}

// lease is a chunk's hold on one of its run's in-flight slots.
type lease struct {
	store    *Store
	rk       runKeys
	chunk    int
	token    string
	ttl      time.Duration
	slots    int
	renewed  time.Time
	campaign string
	run      string
	// daemon is the engine's id while it keeps itself alive (see
	// KeepAlive): a refused chunk then frees dead daemons' slots
	daemon string
	logger *slog.Logger
	// takeOver is told of each chunk whose slot this lease freed from a
	// dead daemon (Engine.takeOver)
	takeOver func(ctx context.Context, campaign, run string, chunk int, daemon string)
}

// slotBusy says why a chunk could not get a slot and when one may free.
type slotBusy struct {
	why   string // "chunk": another worker has this chunk; "run": all slots taken
	until time.Time
}

// acquire takes or renews the lease. It returns a non-nil *slotBusy when
// refused. A refused chunk of a daemon that keeps itself alive first frees
// the slots of daemons that stopped doing so, and tries once more.
func (l *lease) acquire(ctx context.Context) (*slotBusy, error) {
	first := l.renewed.IsZero()
	busy, err := l.try(ctx)
	if err == nil && busy != nil && l.daemon != "" {
		var freed int
		if freed, err = l.freeDeadSlots(ctx); err == nil && freed > 0 {
			busy, err = l.try(ctx)
		}
	}
	if err == nil && busy == nil && first && l.daemon != "" {
		// the run is noted under this daemon, so that the others find its
		// slots should it die, even when no chunk of the run asks for one;
		// failing that, they are found by a refused chunk or their lease
		if nerr := l.noteRun(ctx); nerr != nil {
			l.logger.Warn("campaign chunk: note the run of a slot", "campaign", l.campaign, "run", l.run, "error", nerr)
		}
	}
	return busy, err
}

// try runs acquireSlotScript once.
func (l *lease) try(ctx context.Context) (*slotBusy, error) {
	now := l.store.now()
	res, err := acquireSlotScript.Run(ctx, l.store.rdb, []string{l.rk.slots, l.rk.owners},
		l.chunk, l.token, now.UnixMilli(), l.ttl.Milliseconds(), l.slots).Slice()
	if err != nil {
		return nil, fmt.Errorf("campaign %s run %s: chunk %d: take slot: %w", l.campaign, l.run, l.chunk, err)
	}
	if res[0].(int64) == 1 {
		l.renewed = now
		return nil, nil
	}
	b := &slotBusy{why: fmt.Sprint(res[1])}
	if len(res) > 2 {
		if ms, err := strconv.ParseFloat(fmt.Sprint(res[2]), 64); err == nil {
			b.until = time.UnixMilli(int64(ms))
		}
	}
	return b, nil
}

// renew extends the lease when a third of it has passed.
func (l *lease) renew(ctx context.Context) (*slotBusy, error) {
	if l.store.now().Sub(l.renewed) < l.ttl/3 {
		return nil, nil
	}
	return l.acquire(ctx)
}

// release gives the slot back (the chunk is deferred or failed).
func (l *lease) release(ctx context.Context) error {
	err := releaseSlotScript.Run(ctx, l.store.rdb, []string{l.rk.slots, l.rk.owners}, l.chunk, l.token).Err()
	if err != nil {
		return fmt.Errorf("campaign %s run %s: chunk %d: release slot: %w", l.campaign, l.run, l.chunk, err)
	}
	return nil
}
