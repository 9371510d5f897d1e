package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopworks/backoffice/jobs"
)

// runInfo is what a chunk needs of its run.
type runInfo struct {
	state   State
	def     jobs.Campaign
	started time.Time
	quiet   quietHours
}

func (s *Store) runInfo(ctx context.Context, campaign, run string) (runInfo, error) {
	st, err := s.Status(ctx, campaign, run)
	if err != nil {
		return runInfo{}, err
	}
	q, err := parseQuiet(st.Definition.QuietHours)
	if err != nil {
		return runInfo{}, fmt.Errorf("campaign %s run %s: %w", campaign, run, err)
	}
	return runInfo{state: st.State, def: st.Definition, started: st.Started, quiet: q}, nil
}

// HandleChunk sends one chunk of a run. Each recipient's ledger entry is
// checked first, so a retried chunk only sends to those still pending.
//
// It returns nil when the chunk is done (or its run cancelled), a
// *HoldError when it must run again later without it being a failure, an
// error wrapping asynq.SkipRetry when the run is gone, and any other error
// for a transient failure (asynq retries with backoff).
//
// Crash policy: a recipient found in state "sending" was being sent when a
// worker died, and nobody knows whether the message left. E-mail is sent
// again with the same Message-ID (receivers and mailbox providers drop
// the duplicate by it); losing the message is the worse outcome. An SMS is
// not sent again (a second SMS costs money and annoys): it is recorded as
// failed with code "in_doubt", counted, and re-sent only if an operator
// retries the failed recipients; a delivery report that arrives for it
// later still moves it to delivered. Each send gets a deadline of a third
// of the slot lease, so the in-doubt window is one send long.
func (e *Engine) HandleChunk(ctx context.Context, a jobs.CampaignChunkArgs) error {
	info, err := e.store.runInfo(ctx, a.Campaign, a.Run)
	if errors.Is(err, ErrNoRun) {
		return permanent(err)
	}
	if err != nil {
		return err
	}
	switch info.state {
	case StateCancelled, StateFinished:
		return e.chunkDone(ctx, a, "")
	case StatePaused:
		return hold(e.cfg.PausePoll, "run paused")
	}
	select {
	case e.local <- struct{}{}:
		defer func() { <-e.local }()
	default:
		return hold(runFullPoll, "this daemon already sends %d chunks (LocalChunks)", cap(e.local))
	}
	c := &chunk{e: e, args: a, info: info, rk: e.store.keys.run(a.Campaign, a.Run)}
	c.lease = &lease{
		store: e.store, rk: c.rk, chunk: a.Chunk, token: e.leaseToken(), ttl: e.cfg.SlotLease,
		slots:    slotsFor(info.def.RatePerSecond, e.cfg.ChunkRate, e.cfg.MaxChunksInFlight),
		campaign: a.Campaign, run: a.Run, logger: e.cfg.Logger,
	}
	if tokenDaemon(c.lease.token) != "" {
		c.lease.daemon = e.id
		c.lease.takeOver = e.takeOver
	}
	if busy, err := c.lease.acquire(ctx); err != nil || busy != nil {
		return c.busy(busy, err)
	}
	err = c.send(ctx)
	if err == nil || errors.Is(err, errRunCancelled) {
		if err = e.chunkDone(ctx, a, c.lease.token); err != nil {
			c.releaseSlot(ctx)
		}
		return err
	}
	err = c.progressHold(err)
	c.releaseSlot(ctx)
	return err
}

// releaseFor is how long a chunk that stops keeps trying to give its slot
// back while Redis does not answer (a restart, a failover): well within
// asynq's 30 s task lease, which is not extended meanwhile either.
const releaseFor = 15 * time.Second

// releaseSlot gives the chunk's slot back before the attempt ends. A slot
// left held keeps its lease token, which no later attempt of the chunk has:
// the chunk would be refused as sent by another worker until the lease ran
// out (SlotLease, two minutes by default), its recipients waiting. So a
// failed release is tried again for up to releaseFor, until ctx is done.
func (c *chunk) releaseSlot(ctx context.Context) {
	err := keepTrying(ctx, releaseFor, func() error { return c.lease.release(context.WithoutCancel(ctx)) })
	if err != nil {
		c.e.cfg.Logger.Warn("campaign chunk: release slot", "campaign", c.args.Campaign, "run", c.args.Run, "chunk", c.args.Chunk, "error", err)
	}
}

// chunkDone records the chunk as done; the last one finishes the run.
func (e *Engine) chunkDone(ctx context.Context, a jobs.CampaignChunkArgs, token string) error {
	rk := e.store.keys.run(a.Campaign, a.Run)
	res, err := chunkDoneScript.Run(ctx, e.store.rdb, []string{rk.run, rk.done, rk.slots, rk.owners},
		a.Chunk, e.store.nowMS(), token, wakeCandidates).Slice()
	if err != nil {
		return fmt.Errorf("campaign %s run %s: chunk %d: record done: %w", a.Campaign, a.Run, a.Chunk, noRun(err))
	}
	if State(fmt.Sprint(res[0])) == StateFinished {
		e.cfg.Logger.Info("campaign run finished", "campaign", a.Campaign, "run", a.Run)
	}
	if token == "" {
		return nil // it held no slot: none freed
	}
	for _, v := range res[1:] {
		if n, ok := v.(int64); ok && e.wake(jobs.CampaignChunkArgs{Campaign: a.Campaign, Run: a.Run, Chunk: int(n)}) {
			break
		}
	}
	return nil
}

// wakeCandidates is how many chunks a chunk that ends looks at for one
// to wake: those already queued to run, or running but not yet holding a
// slot, are passed over for the next.
const wakeCandidates = 8

// wake runs chunk a now if it waits in the queue (held for a slot of its
// run, or for the daemon's chunk limit), and reports whether it did: a
// finished chunk's slot does not stay idle until the waiting chunk looks
// again. A chunk not found waiting keeps its own schedule.
func (e *Engine) wake(a jobs.CampaignChunkArgs) bool {
	if e.cfg.Waker == nil {
		return true // nothing can be woken: stop looking
	}
	id := a.TaskID()
	info, err := e.cfg.Waker.GetTaskInfo(jobs.QueueCampaigns, id)
	if err != nil || (info.State != asynq.TaskStateRetry && info.State != asynq.TaskStateScheduled) {
		return false
	}
	if err := e.cfg.Waker.RunTask(jobs.QueueCampaigns, id); err != nil {
		e.cfg.Logger.Debug("campaign chunk: wake the next chunk", "task_id", id, "error", err)
		return false
	}
	return true
}

// runFullPoll is the longest a chunk waits before it looks again for a
// free slot of its run: a slot frees whenever a chunk ends, and a run whose
// next chunks wait longer than that sends nothing meanwhile.
const runFullPoll = 5 * time.Second

// progressRetry is when a chunk that settled recipients before a
// transient failure runs again.
const progressRetry = 5 * time.Second

// progressHold turns a transient failure of an attempt that settled at
// least one recipient into a hold: the chunk comes back soon and the
// attempt does not spend its retry budget, so a provider that fails now
// and then never exhausts the retries of a chunk that makes progress (and
// strands its recipients). Only attempts that settled nobody count.
func (c *chunk) progressHold(err error) error {
	var h *HoldError
	if c.settled == 0 || errors.As(err, &h) || errors.Is(err, asynq.SkipRetry) {
		return err
	}
	return hold(progressRetry, "transient failure after %d recipients settled: %v", c.settled, err)
}

// chunk is one chunk being sent.
type chunk struct {
	e       *Engine
	args    jobs.CampaignChunkArgs
	info    runInfo
	rk      runKeys
	lease   *lease
	rows    map[string]string // file audience: recipient id -> stored row
	quiet   time.Time         // earliest end of a quiet-hours hold, zero if none
	events  []string          // recipients whose timeline event was written, to drop from noevent
	settled int               // recipients this attempt moved to sent, failed or skipped
	later   []deferred        // recipients the provider asked to try later, in order
	tries   map[string]int    // provider rate limits met per recipient in this attempt
}

func (c *chunk) busy(b *slotBusy, err error) error {
	if err != nil {
		return err
	}
	wait := b.until.Sub(c.e.cfg.Now())
	if b.why == "chunk" && c.lease.daemon != "" {
		// the holder may be a daemon that died: look again once its
		// alive key would have expired, not only when its lease does
		wait = min(wait, c.e.cfg.AliveTTL)
	}
	if b.why == "run" {
		// a slot frees when a chunk ends: about a chunk's worth of sends at
		// this chunk's share of the rate, but look again within runFullPoll
		share := c.info.def.RatePerSecond / float64(c.lease.slots)
		wait = min(time.Duration(float64(c.e.cfg.ChunkSize)/share*float64(time.Second)), runFullPoll)
	}
	return hold(wait, "%s", map[string]string{"run": "all in-flight slots of the run are taken", "chunk": "another worker is sending this chunk"}[b.why])
}

// resolveBatch is how many recipients a chunk resolves (and renders) at a
// time: their customer records come in one or two round trips.
const resolveBatch = 50

// batchFor is the batch of a campaign sending perSecond messages: about a
// second's worth, at most resolveBatch, so that a recipient's consent is
// never read more than about a second before the send.
func batchFor(perSecond float64) int { return min(max(int(perSecond), 1), resolveBatch) }

// send walks the chunk's recipients a batch at a time.
func (c *chunk) send(ctx context.Context) error {
	ids, rows, err := c.e.store.chunkRecipients(ctx, c.args.Campaign, c.args.Run, c.args.Chunk)
	if err != nil {
		return err
	}
	c.rows = rows
	entries, err := c.e.store.entries(ctx, c.args.Campaign, c.args.Run, ids)
	if err != nil {
		return err
	}
	if err := c.catchUpEvents(ctx, entries); err != nil {
		return err
	}
	defer c.flushEvents(context.WithoutCancel(ctx))
	var todo []Entry
	for _, en := range entries {
		if en.State == EntryPending || en.State == EntrySending {
			todo = append(todo, en)
		}
	}
	for size := batchFor(c.info.def.RatePerSecond); len(todo) > 0; {
		n := min(size, len(todo))
		if busy, err := c.lease.renew(ctx); err != nil || busy != nil {
			return c.busy(busy, err)
		}
		if err := c.sendBatch(ctx, todo[:n], false); err != nil {
			return err
		}
		todo = todo[n:]
	}
	if err := c.sendDeferred(ctx); err != nil {
		return err
	}
	if !c.quiet.IsZero() {
		return hold(c.quiet.Sub(c.e.cfg.Now()), "sms quiet hours")
	}
	return nil
}

// deliverOrDefer sends to one claimed recipient; one the provider
// rate-limited is put aside to be tried again after the provider's wait,
// at most sendAttempts times in all, while the chunk goes on with the
// others.
func (c *chunk) deliverOrDefer(ctx context.Context, p ready) error {
	err := c.deliver(ctx, p.r, p.msg)
	var later *laterError
	if !errors.As(err, &later) {
		return err
	}
	if c.tries == nil {
		c.tries = map[string]int{}
	}
	en := p.entry
	c.tries[en.Recipient]++
	if c.tries[en.Recipient] >= sendAttempts {
		return hold(later.after, "provider rate limit: %s", oneLine(later.err.Error()))
	}
	en.State = EntryPending
	c.later = append(c.later, deferred{entry: en, due: c.e.cfg.Now().Add(later.after)})
	return nil
}

// sendDeferred tries the recipients put aside, each when its wait is over
// and without taking another turn under the campaign's rate: the provider
// refused the message, so its turn is still unused. A wait longer than
// MaxRateWait holds the chunk instead.
func (c *chunk) sendDeferred(ctx context.Context) error {
	for len(c.later) > 0 {
		d := c.later[0]
		c.later = c.later[1:]
		if wait := d.due.Sub(c.e.cfg.Now()); wait > 0 {
			if wait > c.e.cfg.MaxRateWait {
				return hold(wait, "provider rate limit")
			}
			if err := sleepCtx(ctx, wait); err != nil {
				return err
			}
		}
		if busy, err := c.lease.renew(ctx); err != nil || busy != nil {
			return c.busy(busy, err)
		}
		if err := c.sendBatch(ctx, []Entry{d.entry}, true); err != nil {
			return err
		}
	}
	return nil
}

// catchUpEvents writes the timeline events a previous attempt sent but
// could not record.
func (c *chunk) catchUpEvents(ctx context.Context, entries []Entry) error {
	var sent []Entry
	for _, en := range entries {
		if en.State == EntrySent || en.State == EntryDelivered || en.State == EntryUndelivered {
			sent = append(sent, en)
		}
	}
	if len(sent) == 0 {
		return nil
	}
	ids := make([]any, len(sent))
	for i, en := range sent {
		ids[i] = en.Recipient
	}
	missing, err := c.e.store.rdb.SMIsMember(ctx, c.rk.noevent, ids...).Result()
	if err != nil {
		return fmt.Errorf("campaign %s run %s: chunk %d: read missing events: %w", c.args.Campaign, c.args.Run, c.args.Chunk, err)
	}
	var need, refs []string
	for i, m := range missing {
		if m {
			need = append(need, sent[i].Recipient)
			refs = append(refs, sent[i].Detail)
		}
	}
	for len(need) > 0 {
		n := min(resolveBatch, len(need))
		rs, _, err := c.e.resolveMany(ctx, c.info.def.Channel, c.info.def.Audience.File != "", need[:n], c.rows)
		if err != nil {
			return fmt.Errorf("campaign %s run %s: %w", c.args.Campaign, c.args.Run, err)
		}
		for i, r := range rs {
			if err := c.addEvent(ctx, r, refs[i], ""); err != nil {
				return err
			}
		}
		need, refs = need[n:], refs[n:]
	}
	return nil
}

// flushEvents drops the recipients whose event is written from noevent.
func (c *chunk) flushEvents(ctx context.Context) {
	if len(c.events) == 0 {
		return
	}
	members := make([]any, len(c.events))
	for i, id := range c.events {
		members[i] = id
	}
	if err := c.e.store.rdb.SRem(ctx, c.rk.noevent, members...).Err(); err != nil {
		c.e.cfg.Logger.Warn("campaign chunk: clear written events", "campaign", c.args.Campaign, "run", c.args.Run, "error", err)
		return
	}
	c.events = c.events[:0]
}

// chunkRecipients returns the recipient ids of chunk n in order and, for a
// file audience, their stored rows by id.
func (s *Store) chunkRecipients(ctx context.Context, campaign, run string, n int) ([]string, map[string]string, error) {
	items, err := s.rdb.LRange(ctx, s.keys.run(campaign, run).chunk(n), 0, -1).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("campaign %s run %s: chunk %d: read recipients: %w", campaign, run, n, err)
	}
	ids := make([]string, len(items))
	var rows map[string]string
	for i, item := range items {
		id, row, ok := strings.Cut(item, "\n")
		ids[i] = id
		if ok {
			if rows == nil {
				rows = make(map[string]string, len(items))
			}
			rows[id] = row
		}
	}
	return ids, rows, nil
}
