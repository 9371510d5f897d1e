package campaigns

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/shopworks/backoffice/jobs"
)

// HandleLaunch creates the run (once), snapshots its audience into the
// ledger and chunks, and enqueues every chunk. A retried launch resumes
// where the last one stopped and never plans a recipient twice. An
// audience that cannot be read (missing file, bad header) cancels the run
// with the reason and returns an error wrapping asynq.SkipRetry.
func (e *Engine) HandleLaunch(ctx context.Context, a jobs.CampaignLaunchArgs) error {
	name := a.Campaign.Name
	if _, err := e.store.createRun(ctx, a); err != nil {
		return err
	}
	st, err := e.store.Status(ctx, name, a.Run)
	if err != nil {
		return err
	}
	if st.State == StateCancelled {
		return nil
	}
	src, err := e.source(ctx, st)
	if err == nil {
		var state State
		state, err = e.plan(ctx, name, a.Run, src)
		if err == nil {
			e.cfg.Logger.Info("campaign run planned", "campaign", name, "run", a.Run, "state", state)
			return nil
		}
	}
	if errors.Is(err, asynq.SkipRetry) {
		if _, serr := e.store.setState(context.WithoutCancel(ctx), name, a.Run, []State{StateRunning, StatePaused},
			StateCancelled, "launch failed: "+oneLine(err.Error())); serr != nil && !errors.Is(serr, ErrState) {
			return serr
		}
	}
	return err
}

// source returns the audience of a run: the failed recipients of the run
// it retries, the rows of its file, or the customers it selects.
func (e *Engine) source(ctx context.Context, st RunStatus) (audienceSource, error) {
	def := st.Definition
	switch {
	case st.Trigger == "retry-failed":
		if _, err := e.store.Status(ctx, def.Name, st.RetryOf); err != nil {
			if errors.Is(err, ErrNoRun) {
				return nil, permanent(fmt.Errorf("campaign %s run %s: retry of run %s: %w", def.Name, st.Run, st.RetryOf, err))
			}
			return nil, err
		}
		return retrySource{store: e.store, campaign: def.Name, run: st.RetryOf}, nil
	case def.Audience.File != "":
		return fileAudience{path: e.audiencePath(def.Audience.File), channel: def.Channel, region: e.cfg.PhoneRegion}, nil
	default:
		return e.customerSource(def), nil
	}
}

// retrySource is the audience of a retry-failed run: the recipients of an
// earlier run whose entry is failed, with their stored rows.
type retrySource struct {
	store    *Store
	campaign string
	run      string
}

func (retrySource) dupMode() string { return "ignore" }

func (r retrySource) each(ctx context.Context, _ string, emit func(candidate, string) error) error {
	var cursor uint64
	for {
		page, err := r.store.Entries(ctx, r.campaign, r.run, cursor, 500, EntryFailed)
		if err != nil {
			return err
		}
		if len(page.Entries) > 0 {
			if err := r.emitPage(ctx, page.Entries, emit); err != nil {
				return err
			}
		}
		if cursor = page.Cursor; cursor == 0 {
			return nil
		}
	}
}

func (r retrySource) emitPage(ctx context.Context, entries []Entry, emit func(candidate, string) error) error {
	ids := make([]string, len(entries))
	for i, en := range entries {
		ids[i] = en.Recipient
	}
	data, err := r.store.rdb.HMGet(ctx, r.store.keys.run(r.campaign, r.run).data, ids...).Result()
	if err != nil {
		return fmt.Errorf("campaign %s run %s: read failed recipients: %w", r.campaign, r.run, err)
	}
	for i, id := range ids {
		row, _ := data[i].(string)
		if err := emit(candidate{id: id, data: row}, ""); err != nil {
			return err
		}
	}
	return nil
}
