package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/shopworks/backoffice/jobs"
)

// ErrNothingToRetry is returned by RetryFailed for a run without failed
// recipients.
var ErrNothingToRetry = errors.New("campaigns: the run has no failed recipients")

// NewRunID returns a new run id for a manual launch: the UTC time and a
// random suffix, "20261123T090000Z-3fa2c1".
func NewRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// runOrLatest returns run, or the campaign's latest run when run is "".
func (s *Store) runOrLatest(ctx context.Context, campaign, run string) (string, error) {
	if run != "" {
		return run, nil
	}
	return s.Latest(ctx, campaign)
}

// Status returns the status of a run; run "" is the campaign's latest.
func (e *Engine) Status(ctx context.Context, campaign, run string) (RunStatus, error) {
	return e.store.Status(ctx, campaign, run)
}

// Pause pauses a running run (run "" is the latest); see Store.Pause.
func (e *Engine) Pause(ctx context.Context, campaign, run, reason string) error {
	return e.store.Pause(ctx, campaign, run, reason)
}

// Resume lets a paused run send again (run "" is the latest); its chunks
// pick up within Config.PausePoll.
func (e *Engine) Resume(ctx context.Context, campaign, run string) error {
	return e.store.Resume(ctx, campaign, run)
}

// Cancel ends a running or paused run for good (run "" is the latest).
func (e *Engine) Cancel(ctx context.Context, campaign, run, reason string) error {
	return e.store.Cancel(ctx, campaign, run, reason)
}

// RetryFailed launches a run of the failed recipients of run (run "" is
// the latest); see Store.RetryFailed.
func (e *Engine) RetryFailed(ctx context.Context, campaign, run string) (string, error) {
	return e.store.RetryFailed(ctx, e.cfg.Enqueuer, campaign, run)
}

// RetryFailed enqueues the launch of a new run (trigger "retry-failed")
// whose audience is exactly the failed recipients of run (run "" is the
// latest), with the definition frozen in that run, and returns its id. The
// run must have ended (finished or cancelled): a run can have one retry
// run, and a paused run resumed after it would fail recipients that no
// retry could reach. Asking twice returns the same new run, so a double
// click sends nothing twice.
func (s *Store) RetryFailed(ctx context.Context, enq Enqueuer, campaign, run string) (string, error) {
	run, err := s.runOrLatest(ctx, campaign, run)
	if err != nil {
		return "", err
	}
	st, err := s.Status(ctx, campaign, run)
	if err != nil {
		return "", err
	}
	if (st.State != StateFinished && st.State != StateCancelled) || st.Planning {
		return "", fmt.Errorf("campaign %s run %s is %s: cancel it or let it finish first (resume a paused run to send to its pending recipients): %w", campaign, run, st.State, ErrState)
	}
	if st.Counts.Failed == 0 && st.RetriedBy == "" {
		return "", fmt.Errorf("campaign %s run %s: %w", campaign, run, ErrNothingToRetry)
	}
	next, err := s.claimRetry(ctx, campaign, run, NewRunID(s.now()))
	if err != nil {
		return "", err
	}
	a := jobs.CampaignLaunchArgs{Campaign: st.Definition, Run: next, Trigger: "retry-failed", RetryOf: run}
	if err := enqueueLaunch(ctx, enq, a); err != nil {
		return next, err
	}
	// The launch is queued: a failure to record the run now is not one of
	// the retry, whose launch task records it.
	_ = s.recordLaunched(ctx, a)
	return next, nil
}

// recordLaunched records the run of a launch just enqueued (state running,
// planning) and makes it the campaign's latest, so that status, pause and
// cancel of the latest run act on it from the moment it is launched rather
// than from when its launch task starts: a cancel right after a launch by
// mistake stops it (the launch task then plans nothing). It runs after the
// enqueue, so that a launch that could not be queued leaves no run that
// nothing plans; the launch task creates the run too, whichever is first.
func (s *Store) recordLaunched(ctx context.Context, a jobs.CampaignLaunchArgs) error {
	_, err := s.createRun(ctx, a)
	return err
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

// enqueueLaunch enqueues a launch; one enqueued already is fine.
func enqueueLaunch(ctx context.Context, enq Enqueuer, a jobs.CampaignLaunchArgs) error {
	task, err := jobs.NewTask(a)
	if err != nil {
		return err
	}
	if _, err := enq.EnqueueContext(ctx, task); err != nil && !isTaskConflict(err) {
		return fmt.Errorf("campaign %s run %s: enqueue launch: %w", a.Campaign.Name, a.Run, err)
	}
	return nil
}
