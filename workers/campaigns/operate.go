package campaigns

import (
	"context"
	"errors"
	"fmt"

	"github.com/shopworks/backoffice/jobs"
)

// ErrNothingToRetry is returned by RetryFailed for a run without failed
// recipients.
var ErrNothingToRetry = errors.New("campaigns: the run has no failed recipients")

// runOrLatest returns run, or the campaign's latest run when run is "".
func (e *Engine) runOrLatest(ctx context.Context, campaign, run string) (string, error) {
	if run != "" {
		return run, nil
	}
	return e.store.Latest(ctx, campaign)
}

// Status returns the status of a run; run "" is the campaign's latest.
func (e *Engine) Status(ctx context.Context, campaign, run string) (RunStatus, error) {
	run, err := e.runOrLatest(ctx, campaign, run)
	if err != nil {
		return RunStatus{}, err
	}
	return e.store.Status(ctx, campaign, run)
}

// Pause pauses a running run (run "" is the latest): chunks stop before
// their next send and wait. reason is shown in its status.
func (e *Engine) Pause(ctx context.Context, campaign, run, reason string) error {
	run, err := e.runOrLatest(ctx, campaign, run)
	if err != nil {
		return err
	}
	return e.store.Pause(ctx, campaign, run, reason)
}

// Resume lets a paused run send again (run "" is the latest); its chunks
// pick up within Config.PausePoll.
func (e *Engine) Resume(ctx context.Context, campaign, run string) error {
	run, err := e.runOrLatest(ctx, campaign, run)
	if err != nil {
		return err
	}
	return e.store.Resume(ctx, campaign, run)
}

// Cancel ends a running or paused run for good (run "" is the latest).
func (e *Engine) Cancel(ctx context.Context, campaign, run, reason string) error {
	run, err := e.runOrLatest(ctx, campaign, run)
	if err != nil {
		return err
	}
	return e.store.Cancel(ctx, campaign, run, reason)
}

// RetryFailed launches a new run (trigger "retry-failed") whose audience
// is exactly the failed recipients of run (run "" is the latest), with the
// definition frozen in that run. The run must not be running. Asking twice
// returns the same new run, so a double click sends nothing twice.
func (e *Engine) RetryFailed(ctx context.Context, campaign, run string) (string, error) {
	run, err := e.runOrLatest(ctx, campaign, run)
	if err != nil {
		return "", err
	}
	st, err := e.store.Status(ctx, campaign, run)
	if err != nil {
		return "", err
	}
	if st.State == StateRunning || st.Planning {
		return "", fmt.Errorf("campaign %s run %s is %s (planning %v): pause, cancel or let it finish first: %w", campaign, run, st.State, st.Planning, ErrState)
	}
	if st.Counts.Failed == 0 && st.RetriedBy == "" {
		return "", fmt.Errorf("campaign %s run %s: %w", campaign, run, ErrNothingToRetry)
	}
	next, err := e.store.claimRetry(ctx, campaign, run, e.newRunID())
	if err != nil {
		return "", err
	}
	a := jobs.CampaignLaunchArgs{Campaign: st.Definition, Run: next, Trigger: "retry-failed", RetryOf: run}
	return next, e.enqueueLaunch(ctx, a)
}

// claimRetry records next as the retry run of run unless one is recorded,
// and returns the one that is.
func (s *Store) claimRetry(ctx context.Context, campaign, run, next string) (string, error) {
	rk := s.keys.run(campaign, run)
	if _, err := s.rdb.HSetNX(ctx, rk.run, "retried_by", next).Result(); err != nil {
		return "", fmt.Errorf("campaign %s run %s: record retry: %w", campaign, run, err)
	}
	got, err := s.rdb.HGet(ctx, rk.run, "retried_by").Result()
	if err != nil {
		return "", fmt.Errorf("campaign %s run %s: read retry: %w", campaign, run, err)
	}
	return got, nil
}
