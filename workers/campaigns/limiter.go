package campaigns

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// rateLimit turns a campaign's rate per second into a GCRA limit: counted
// per minute so fractional rates (0.5/s) work, with a burst of one
// second's worth.
func rateLimit(perSecond float64) redis_rate.Limit {
	return redis_rate.Limit{
		Rate:   max(1, int(math.Round(perSecond*60))),
		Period: time.Minute,
		Burst:  max(1, int(perSecond)),
	}
}

// throttle is the campaign rate limit shared by every daemon (GCRA in
// Redis, one key per campaign).
type throttle struct {
	limiter *redis_rate.Limiter
	keys    keys
	maxWait time.Duration // longest in-process wait for the next send
	sleep   func(context.Context, time.Duration) error
}

// take waits for one send of campaign. When the wait would be longer than
// maxWait it does not wait and returns how long the caller should hold off.
func (t throttle) take(ctx context.Context, campaign string, perSecond float64) (time.Duration, error) {
	for {
		res, err := t.limiter.Allow(ctx, t.keys.limiter(campaign), rateLimit(perSecond))
		if err != nil {
			return 0, fmt.Errorf("campaign %s: rate limiter: %w", campaign, err)
		}
		if res.Allowed > 0 {
			return 0, nil
		}
		if res.RetryAfter > t.maxWait {
			return res.RetryAfter, nil
		}
		if err := t.sleep(ctx, res.RetryAfter); err != nil {
			return 0, err
		}
	}
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
