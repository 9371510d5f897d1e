package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/shopworks/backoffice/jobs"
)

// registerCampaigns registers campaign:launch, campaign:chunk,
// campaign:test and campaign:dryrun. The work is done by d.Campaigns
// (workers/campaigns).
func registerCampaigns(r registrar, d Deps) {
	r.handle(jobs.KindCampaignLaunch, asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var a jobs.CampaignLaunchArgs
		if err := jobs.Unmarshal(t, &a); err != nil {
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
		if d.Campaigns == nil {
			return errNoCampaigns
		}
		return d.Campaigns.HandleLaunch(ctx, a)
	}))
	r.handle(jobs.KindCampaignChunk, asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var a jobs.CampaignChunkArgs
		if err := jobs.Unmarshal(t, &a); err != nil {
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
		if d.Campaigns == nil {
			return errNoCampaigns
		}
		return d.Campaigns.HandleChunk(ctx, a)
	}))
	r.handle(jobs.KindCampaignTest, asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var a jobs.CampaignTestArgs
		if err := jobs.Unmarshal(t, &a); err != nil {
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
		if d.Campaigns == nil {
			return errNoCampaigns
		}
		res, err := d.Campaigns.TestSend(ctx, a)
		if err != nil {
			return err
		}
		return writeCampaignResult(t, res)
	}))
	r.handle(jobs.KindCampaignDryRun, asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var a jobs.CampaignDryRunArgs
		if err := jobs.Unmarshal(t, &a); err != nil {
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
		if d.Campaigns == nil {
			return errNoCampaigns
		}
		rep, err := d.Campaigns.DryRun(ctx, a.Campaign)
		if err != nil {
			return err
		}
		return writeCampaignResult(t, rep)
	}))
}

// writeCampaignResult stores v as the task's JSON result, shown by the dashboard
// and GET /api/jobs.
func writeCampaignResult(t *asynq.Task, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: encode result: %w", t.Type(), err)
	}
	if _, err := t.ResultWriter().Write(b); err != nil {
		return fmt.Errorf("%s: write result: %w", t.Type(), err)
	}
	return nil
}

// errNoCampaigns fails campaign tasks on a daemon built without the engine.
var errNoCampaigns = errors.New("workers: campaign engine not configured (Deps.Campaigns is nil)")
