package workers

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/shopworks/backoffice/jobs"
)

// registerCampaigns registers campaign:launch, campaign:chunk and
// campaign:test. The work is done by d.Campaigns (workers/campaigns).
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
		_, werr := t.ResultWriter().Write([]byte(fmt.Sprintf("sent to %s (%s): %s", res.To, res.Language, res.Ref)))
		return werr
	}))
}

// errNoCampaigns fails campaign tasks on a daemon built without the engine.
var errNoCampaigns = errors.New("workers: campaign engine not configured (Deps.Campaigns is nil)")
