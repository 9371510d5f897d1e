package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// verdict is the outcome of the check after a load run.
type verdict struct {
	messages   int // distinct messages answered 200
	found      int // of them, with exactly one timeline entry
	lost       int // with none
	duplicated int // with more than one
	drained    time.Duration
	archived   int // tasks that failed for good, left in the archive
}

// drain waits until the critical queue has nothing pending, running,
// scheduled or waiting for a retry, printing progress every few seconds.
func drain(ctx context.Context, rdb redis.UniversalClient, timeout time.Duration, out io.Writer) (time.Duration, int, error) {
	insp := asynq.NewInspectorFromRedisClient(rdb)
	start := time.Now()
	lastPrint := start
	for {
		q, err := insp.GetQueueInfo(jobs.QueueCritical)
		if err != nil {
			return time.Since(start), 0, fmt.Errorf("drain: queue %s: %w", jobs.QueueCritical, err)
		}
		if q.Pending+q.Active+q.Scheduled+q.Retry == 0 {
			return time.Since(start), q.Archived, nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), q.Archived, fmt.Errorf("drain: queue %s still holds %d pending, %d active, %d retry after %v",
				jobs.QueueCritical, q.Pending, q.Active, q.Retry, timeout)
		}
		if time.Since(lastPrint) >= 5*time.Second {
			fmt.Fprintf(out, "  draining: %d pending, %d active, %d retry, %d processed today\n", q.Pending, q.Active, q.Retry, q.Processed)
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Since(start), 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// check counts, for every message answered 200, the "sms.in" entries with
// its MessageSid on its sender's timeline.
func check(ctx context.Context, store *customers.Store, accepted map[string]string) (verdict, error) {
	bySender := map[string][]string{}
	for sid, phone := range accepted {
		bySender[phone] = append(bySender[phone], sid)
	}
	v := verdict{messages: len(accepted)}
	for phone, sids := range bySender {
		counts, err := timelineCounts(ctx, store, phone, len(sids))
		if err != nil {
			return v, err
		}
		for _, sid := range sids {
			switch counts[sid] {
			case 0:
				v.lost++
			case 1:
				v.found++
			default:
				v.duplicated++
			}
		}
	}
	return v, nil
}

// timelineCounts returns how many "sms.in" events each MessageSid has on
// the timeline of the customer with phone, who received about n of them.
func timelineCounts(ctx context.Context, store *customers.Store, phone string, n int) (map[string]int, error) {
	c, err := store.ByPhone(ctx, phone)
	if errors.Is(err, customers.ErrNotFound) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check: customer %s: %w", phone, err)
	}
	events, err := store.Timeline(ctx, c.ID, int64(2*n+100))
	if err != nil {
		return nil, fmt.Errorf("check: timeline of %s: %w", c.ID, err)
	}
	counts := map[string]int{}
	for _, e := range events {
		if e.Kind == "sms.in" {
			counts[e.Ref]++
		}
	}
	return counts, nil
}
