package workers

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// twilioBusy is an error of a package below workers that cannot import it:
// it speaks the hooks through methods.
type twilioBusy struct{ after time.Duration }

func (e twilioBusy) Error() string             { return "twilio 429" }
func (e twilioBusy) RetryAfter() time.Duration { return e.after }
func (e twilioBusy) RateLimited() bool         { return true }

func TestIsFailureAndRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err         error
		wantFailure bool
		wantAfter   time.Duration
		wantOK      bool
	}{
		{errors.New("smtp 451"), true, 0, false},
		{ErrRateLimited, false, 0, false},
		{fmt.Errorf("chunk 3: %w", ErrRateLimited), false, 0, false},
		{RetryLater(errors.New("quiet hours"), 8*time.Hour, false), true, 8 * time.Hour, true},
		{RetryLater(nil, 2*time.Second, true), false, 2 * time.Second, true},
		{fmt.Errorf("send: %w", twilioBusy{30 * time.Second}), false, 30 * time.Second, true},
		{RetryLater(nil, 0, false), true, 0, false},
	}
	for _, tt := range tests {
		if got := IsFailure(tt.err); got != tt.wantFailure {
			t.Errorf("IsFailure(%v) = %v, want %v", tt.err, got, tt.wantFailure)
		}
		after, ok := RetryAfter(tt.err)
		if after != tt.wantAfter || ok != tt.wantOK {
			t.Errorf("RetryAfter(%v) = %v, %v; want %v, %v", tt.err, after, ok, tt.wantAfter, tt.wantOK)
		}
	}
	if IsFailure(nil) {
		t.Error("IsFailure(nil) = true")
	}
	if got := RetryLater(errors.New("x"), time.Second, true).Error(); got != "rate limited: retry after 1s: x" {
		t.Errorf("RetryLater().Error() = %q", got)
	}
}

func TestRetryDelayBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		n      int
		err    error
		lo, hi time.Duration
	}{
		{"first retry", 0, errors.New("x"), 5 * time.Second, 10 * time.Second},
		{"third retry", 2, errors.New("x"), 20 * time.Second, 40 * time.Second},
		{"capped", 12, errors.New("x"), 30 * time.Minute, time.Hour},
		{"huge n", 1000, errors.New("x"), 30 * time.Minute, time.Hour},
		{"asked wait", 5, RetryLater(nil, time.Minute, false), time.Minute, 66 * time.Second},
		{"asked wait capped", 0, RetryLater(nil, 100*time.Hour, false), 24 * time.Hour, 24*time.Hour + 24*time.Hour/10},
		{"rate limit, no wait named", 0, ErrRateLimited, 10 * time.Second, 15 * time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			d := RetryDelay(tt.n, tt.err, nil)
			if d < tt.lo || d > tt.hi {
				t.Errorf("%s: RetryDelay(%d, %v) = %v, want within [%v, %v]", tt.name, tt.n, tt.err, d, tt.lo, tt.hi)
				break
			}
		}
	}
}
