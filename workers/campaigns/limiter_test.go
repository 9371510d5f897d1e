package campaigns

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email/smtptest"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rate    float64
		maxWait time.Duration
		held    bool // the chunk is held for the limiter instead of waiting
	}{
		{"waits in process for a short wait", 2, 5 * time.Second, false},
		{"holds the chunk for a long wait", 1, time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, withMail := withSMTP(t, smtptest.Options{})
			b := setup(t, func(c *Config) { withMail(c); c.MaxRateWait = tt.maxWait; c.ChunkSize = 10 })
			ctx := t.Context()
			for i := range 4 {
				b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("r%d", i), Email: fmt.Sprintf("r%d@example.sk", i), Tags: []string{"n"}})
			}
			camp := emailCampaign("rate", jobs.Audience{Tags: []string{"n"}})
			camp.RatePerSecond = tt.rate
			if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r1")); err != nil {
				t.Fatal(err)
			}
			err := b.engine.HandleChunk(ctx, jobs.CampaignChunkArgs{Campaign: "rate", Run: "r1", Chunk: 0})
			var h *HoldError
			if tt.held {
				if !errors.As(err, &h) || !strings.Contains(h.Reason, "rate limit") || srv.Count() != 1 {
					t.Fatalf("HandleChunk = %v with %d sent, want a rate-limit hold after the burst of 1", err, srv.Count())
				}
				return
			}
			if err != nil || srv.Count() != 4 {
				t.Fatalf("HandleChunk = %v with %d sent, want all 4 sent", err, srv.Count())
			}
		})
	}
	if l := rateLimit(0.5); l.Rate != 30 || l.Period != time.Minute || l.Burst != 1 {
		t.Errorf("rateLimit(0.5) = %+v, want 30/min burst 1", l)
	}
}

// A chunk resolves about a second's worth of recipients at a time, so a
// slow campaign reads each recipient's consent right before its send.
func TestBatchFor(t *testing.T) {
	for rate, want := range map[float64]int{0.5: 1, 1: 1, 7.9: 7, 50: 50, 200: 50, 10000: 50} {
		if got := batchFor(rate); got != want {
			t.Errorf("batchFor(%v) = %d, want %d", rate, got, want)
		}
	}
}
