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

// takeUpTo waits for the turns of up to n sends of campaign and returns
// how many it got (at least one), in one round trip when the limit allows
// them at once: a chunk takes the turns of a batch together. When even one
// turn is further than maxWait away it returns 0 and the wait instead.
func (t throttle) takeUpTo(ctx context.Context, campaign string, perSecond float64, n int) (int, time.Duration, error) {
	for {
		res, err := t.limiter.AllowAtMost(ctx, t.keys.limiter(campaign), rateLimit(perSecond), n)
		if err != nil {
			return 0, 0, fmt.Errorf("campaign %s: rate limiter: %w", campaign, err)
		}
		if res.Allowed > 0 {
			return res.Allowed, 0, nil
		}
		if res.RetryAfter > t.maxWait {
			return 0, res.RetryAfter, nil
		}
		if err := t.sleep(ctx, res.RetryAfter); err != nil {
			return 0, 0, err
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
