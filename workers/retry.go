package workers

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// ErrRateLimited marks an error as a rate limit: the task is retried after
// a while without spending its retry budget (IsFailure is false).
var ErrRateLimited = errors.New("rate limited")

// Packages below workers (workers/sms, workers/campaigns, ...) cannot import
// this one, so the retry hooks are also methods an error may have:
//
//	RetryAfter() time.Duration  // wait this long before the next attempt
//	RateLimited() bool          // true: not a failure, do not count it
//
// An error anywhere in the chain with these methods is honoured.
type (
	retryAfterer interface{ RetryAfter() time.Duration }
	rateLimiter  interface{ RateLimited() bool }
)

// Retry delays.
const (
	retryBase       = 10 * time.Second // first retry after 5-10s
	retryCap        = time.Hour        // longest backoff of an ordinary error
	retryAfterMax   = 24 * time.Hour   // longest wait an error may ask for
	rateLimitedWait = 10 * time.Second // a rate limit that names no wait
)

// RetryLater returns err (which may be nil) marked to be retried after d.
// With rateLimited, the attempt does not count against the retry budget.
func RetryLater(err error, d time.Duration, rateLimited bool) error {
	return &retryError{err: err, after: d, rateLimited: rateLimited}
}

type retryError struct {
	err         error
	after       time.Duration
	rateLimited bool
}

func (e *retryError) Error() string {
	msg := "retry after " + e.after.String()
	if e.rateLimited {
		msg = "rate limited: " + msg
	}
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *retryError) Unwrap() error             { return e.err }
func (e *retryError) RetryAfter() time.Duration { return e.after }
func (e *retryError) RateLimited() bool         { return e.rateLimited }

// RetryAfter returns the wait an error in err's chain asks for.
func RetryAfter(err error) (time.Duration, bool) {
	var ra retryAfterer
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter(), true
	}
	return 0, false
}

// IsRateLimited reports whether err is, or wraps, ErrRateLimited or an
// error whose RateLimited method returns true.
func IsRateLimited(err error) bool {
	if errors.Is(err, ErrRateLimited) {
		return true
	}
	var rl rateLimiter
	return errors.As(err, &rl) && rl.RateLimited()
}

// IsFailure is asynq.Config.IsFailure: a rate limit is not a failure, so it
// neither spends the retry budget nor counts as failed in the dashboard.
func IsFailure(err error) bool { return err != nil && !IsRateLimited(err) }

// RetryDelay is asynq.Config.RetryDelayFunc. An error that asks for a wait
// gets it (at most 24h, plus up to 10% jitter so daemons do not retry in
// step); a rate limit without one waits about 10s; any other error backs off
// exponentially from 5-10s after the first failure to at most one hour,
// with jitter.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if d, ok := RetryAfter(err); ok {
		d = min(d, retryAfterMax)
		return d + jitter(d/10)
	}
	if IsRateLimited(err) {
		return rateLimitedWait + jitter(rateLimitedWait/2)
	}
	return backoff(n)
}

// backoff is retryBase*2^n capped at retryCap, of which the upper half is
// random ("equal jitter").
func backoff(n int) time.Duration {
	d := retryCap
	if n >= 0 && n < 20 {
		d = min(retryBase<<n, retryCap)
	}
	return d/2 + jitter(d/2)
}

// jitter returns a random duration in [0, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}
