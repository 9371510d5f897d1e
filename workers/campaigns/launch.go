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
// earlier run whose entry is failed, chunk by chunk, with their stored rows.
type retrySource struct {
	store    *Store
	campaign string
	run      string
}

func (retrySource) dupMode() string { return "ignore" }

func (r retrySource) each(ctx context.Context, _ string, emit func(candidate) error) error {
	st, err := r.store.Status(ctx, r.campaign, r.run)
	if err != nil {
		return err
	}
	for n := range st.Chunks {
		ids, rows, err := r.store.chunkRecipients(ctx, r.campaign, r.run, n)
		if err != nil {
			return err
		}
		entries, err := r.store.entries(ctx, r.campaign, r.run, ids)
		if err != nil {
			return err
		}
		for _, en := range entries {
			if en.State != EntryFailed {
				continue
			}
			if err := emit(candidate{id: en.Recipient, data: rows[en.Recipient]}); err != nil {
				return err
			}
		}
	}
	return nil
}
