package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"
	"github.com/shopworks/backoffice/jobs"
)

// candidate is one audience row on its way into a run's ledger.
type candidate struct {
	id     string // ledger key: customer id, or the normalized address of a file row
	reason string // skip reason; "" plans the recipient
	data   string // recipient JSON for file rows, "" for customers
	line   int    // file line, for skipped rows without an id
	// resume is where a retried launch goes on after this row (file
	// audiences); the zero value for sources that re-read from the start.
	resume fileCheckpoint
}

// audienceSource streams an audience. each calls emit for every row after
// the checkpoint resume ("" for the start), each row saying where to
// resume after it; sources that cannot resume are re-read from the start,
// which the ledger's dedupe makes harmless.
type audienceSource interface {
	each(ctx context.Context, resume string, emit func(c candidate) error) error
	// dupMode says what a repeated recipient is: "skip" (a duplicate row
	// of a file, recorded) or "ignore" (a re-read of the same audience).
	dupMode() string
}

func (fileAudience) dupMode() string { return "skip" }

// errRunCancelled stops planning when an operator cancels the run.
var errRunCancelled = errors.New("campaigns: run cancelled")

// planner writes an audience into a run's ledger and chunks, a batch of at
// most one chunk at a time, and enqueues each chunk as soon as it is full.
// One batch is written while the next is read: the script call of batch n
// runs while the audience yields batch n+1, and batch n+1 is sent only
// once batch n's result (the chunk being filled) is known.
type planner struct {
	e        *Engine
	campaign string
	run      string
	rk       runKeys
	dupMode  string
	cur      int // chunk being filled
	enqueued int // chunks 0..enqueued-1 have their task
	batch    []any
	rows     int
	ckpt     fileCheckpoint   // resume point after the queued rows
	done     bool             // planning finished in an earlier attempt
	inflight chan batchResult // the batch being written, nil when none
}

// batchResult is what the script said about one batch.
type batchResult struct {
	cur   int
	state State
	err   error
}

func (e *Engine) newPlanner(ctx context.Context, campaign, run, dupMode string) (*planner, string, error) {
	p := &planner{e: e, campaign: campaign, run: run, rk: e.store.keys.run(campaign, run), dupMode: dupMode,
		batch: make([]any, 0, 4*e.cfg.ChunkSize)}
	f, err := e.store.rdb.HMGet(ctx, p.rk.run, "plan_chunk", "enqueued", "plan_ckpt", "planned").Result()
	if err != nil {
		return nil, "", fmt.Errorf("campaign %s run %s: read planning progress: %w", campaign, run, err)
	}
	p.cur, _ = strconv.Atoi(fmt.Sprint(f[0]))
	p.enqueued, _ = strconv.Atoi(fmt.Sprint(f[1]))
	resume, _ := f[2].(string)
	p.done = f[3] == "1"
	return p, resume, nil
}

// add queues one row; a full batch is written.
func (p *planner) add(ctx context.Context, c candidate) error {
	p.batch = append(p.batch, c.id, c.reason, c.data, c.line)
	p.rows++
	p.ckpt = c.resume
	if p.rows >= p.e.cfg.ChunkSize {
		return p.flush(ctx)
	}
	return nil
}

// flush waits for the batch in flight, then starts writing the queued rows
// with their checkpoint in one script call.
func (p *planner) flush(ctx context.Context) error {
	if p.rows == 0 {
		return nil
	}
	if err := p.wait(ctx); err != nil {
		return err
	}
	keys := []string{p.rk.run, p.rk.ledger, p.rk.skips, p.rk.chunk(p.cur), p.rk.chunk(p.cur + 1)}
	args := append([]any{p.e.cfg.ChunkSize, p.cur, p.ckpt.String(), p.e.store.nowMS(), p.dupMode}, p.batch...)
	p.batch, p.rows = p.batch[:0], 0
	ch := make(chan batchResult, 1)
	p.inflight = ch
	go func() {
		res, err := planBatchScript.Run(ctx, p.e.store.rdb, keys, args...).Slice()
		if err != nil {
			ch <- batchResult{err: fmt.Errorf("campaign %s run %s: plan batch: %w", p.campaign, p.run, noRun(err))}
			return
		}
		ch <- batchResult{cur: int(res[0].(int64)), state: State(fmt.Sprint(res[4]))}
	}()
	return nil
}

// wait takes the result of the batch in flight, if any, and enqueues the
// chunk it closed.
func (p *planner) wait(ctx context.Context) error {
	if p.inflight == nil {
		return nil
	}
	r := <-p.inflight
	p.inflight = nil
	if r.err != nil {
		return r.err
	}
	p.cur = r.cur
	if err := p.enqueue(ctx, p.cur); err != nil {
		return err
	}
	if r.state == StateCancelled {
		return errRunCancelled
	}
	return nil
}

// enqueue enqueues the tasks of chunks enqueued..upto-1 and moves the
// watermark. A task that exists already (an earlier attempt enqueued it)
// counts as enqueued.
func (p *planner) enqueue(ctx context.Context, upto int) error {
	for ; p.enqueued < upto; p.enqueued++ {
		if err := p.e.enqueueChunk(ctx, p.campaign, p.run, p.enqueued); err != nil {
			return err
		}
		if p.enqueued%64 == 63 || p.enqueued == upto-1 {
			if err := p.e.store.rdb.HSet(ctx, p.rk.run, "enqueued", p.enqueued+1).Err(); err != nil {
				return fmt.Errorf("campaign %s run %s: record enqueued chunks: %w", p.campaign, p.run, err)
			}
		}
	}
	return nil
}

// finish writes what is queued, closes the last chunk, marks planning
// done and enqueues what is left.
func (p *planner) finish(ctx context.Context) (State, error) {
	err := p.flush(ctx)
	if err == nil {
		err = p.wait(ctx)
	}
	if err != nil && !errors.Is(err, errRunCancelled) {
		return "", err
	}
	res, err := planFinishScript.Run(ctx, p.e.store.rdb, []string{p.rk.run}, p.e.store.nowMS()).Slice()
	if err != nil {
		return "", fmt.Errorf("campaign %s run %s: finish planning: %w", p.campaign, p.run, noRun(err))
	}
	if err := p.enqueue(ctx, int(res[0].(int64))); err != nil {
		return "", err
	}
	return State(fmt.Sprint(res[1])), nil
}

// enqueueChunk enqueues the task of one chunk (opts may give it another
// task id); one that exists is fine.
func (e *Engine) enqueueChunk(ctx context.Context, campaign, run string, n int, opts ...asynq.Option) error {
	task, err := jobs.NewTask(jobs.CampaignChunkArgs{Campaign: campaign, Run: run, Chunk: n}, opts...)
	if err != nil {
		return fmt.Errorf("campaign %s run %s: chunk %d: %w", campaign, run, n, err)
	}
	if _, err := e.cfg.Enqueuer.EnqueueContext(ctx, task); err != nil && !isTaskConflict(err) {
		return fmt.Errorf("campaign %s run %s: enqueue chunk %d: %w", campaign, run, n, err)
	}
	return nil
}

// plan snapshots the run's audience into its ledger and chunks. It resumes
// from the stored checkpoint, so a retried launch never plans a row twice.
func (e *Engine) plan(ctx context.Context, campaign, run string, src audienceSource) (State, error) {
	p, resume, err := e.newPlanner(ctx, campaign, run, src.dupMode())
	if err != nil {
		return "", err
	}
	if p.done {
		return p.finish(ctx)
	}
	if err := p.enqueue(ctx, p.cur); err != nil {
		return "", err
	}
	err = src.each(ctx, resume, func(c candidate) error { return p.add(ctx, c) })
	if err != nil && !errors.Is(err, errRunCancelled) {
		if werr := p.wait(ctx); werr != nil && !errors.Is(werr, errRunCancelled) {
			err = errors.Join(err, werr)
		}
		return "", err
	}
	return p.finish(ctx)
}
