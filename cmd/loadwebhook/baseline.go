package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// runBaseline enqueues tasks shaped like sms:inbound (same options, a
// payload of the same size, a task ID each) into a private queue that no
// worker reads, from concurrency goroutines for d, then deletes the queue.
// It is the ceiling of the webhook: one enqueue is all the webhook does
// with Redis. cpu is the CPU time the processes of meter used meanwhile.
func runBaseline(ctx context.Context, rdb redis.UniversalClient, concurrency int, d time.Duration, meter cpuMeter) (_ stats, cpu cpuUse, _ error) {
	client := asynq.NewClientFromRedisClient(rdb)
	queue := "loadbench-" + randomHex(4)
	payload := []byte(`{"message_sid":"SM00000000000000000000000000000000","from":"+421905000000","to":"+421233000000",` +
		`"body":"` + strings.Repeat("x", 40) + `","num_media":"0","received_at":"2026-03-01T09:00:00Z"}`)
	run := randomHex(6)
	deadline := time.Now().Add(d)
	results := make([]stats, concurrency)
	var wg sync.WaitGroup
	cpu0 := meter.sample()
	start := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			st := &results[w]
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				task := asynq.NewTask("loadbench:noop", payload, asynq.Queue(queue), asynq.MaxRetry(25),
					asynq.Timeout(time.Minute), asynq.Retention(24*time.Hour), asynq.TaskID(fmt.Sprintf("loadbench:%s:%d:%d", run, w, n)))
				t0 := time.Now()
				_, err := client.EnqueueContext(ctx, task)
				st.lat = append(st.lat, time.Since(t0))
				st.calls++
				if err != nil {
					st.errors++
				}
			}
		})
	}
	wg.Wait()
	var total stats
	total.elapsed = time.Since(start)
	cpu = meter.since(cpu0)
	for _, r := range results {
		total.merge(r)
	}
	if err := asynq.NewInspectorFromRedisClient(rdb).DeleteQueue(queue, true); err != nil {
		return total, cpu, fmt.Errorf("baseline: delete queue %s: %w", queue, err)
	}
	return total, cpu, nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
