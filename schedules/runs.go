package schedules

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
)

// Outcomes of a tick.
const (
	OutcomeEnqueued  = "enqueued"  // this daemon enqueued the tick's task
	OutcomeDuplicate = "duplicate" // the task ID was taken: another daemon enqueued it
	OutcomeError     = "error"     // enqueueing failed; Message says why
)

// keepRuns is how many ticks of each entry are kept.
const keepRuns = 20

// Run is the record of one tick of an entry. All daemons record into the
// same record per tick: the one that enqueued the task wins, so a tick
// shows "enqueued" however many daemons saw it.
type Run struct {
	Run     string    `json:"run"`  // run id, e.g. "20261122T0900Z"
	Tick    time.Time `json:"tick"` // the scheduled time, UTC
	TaskID  string    `json:"task_id"`
	Outcome string    `json:"outcome"` // OutcomeEnqueued, OutcomeDuplicate or OutcomeError
	Message string    `json:"message,omitempty"`
	Daemon  string    `json:"daemon,omitempty"` // which daemon wrote the record
	At      time.Time `json:"at"`               // when it was written
}

// recordRun writes one tick's record and keeps the newest keepRuns.
//
// KEYS[1] runsIndexKey: zset run id -> tick Unix time
// KEYS[2] runsKey: hash run id -> JSON Run
// ARGV[1] run id, ARGV[2] tick Unix time, ARGV[3] JSON Run,
// ARGV[4] "1" to replace an existing record of the tick, else "0",
// ARGV[5] how many ticks to keep.
var recordRun = redis.NewScript(`
if ARGV[4] == "1" then
  redis.call("HSET", KEYS[2], ARGV[1], ARGV[3])
else
  redis.call("HSETNX", KEYS[2], ARGV[1], ARGV[3])
end
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
local keep = tonumber(ARGV[5])
local n = redis.call("ZCARD", KEYS[1])
if n > keep then
  local old = redis.call("ZRANGE", KEYS[1], 0, n - keep - 1)
  redis.call("ZREMRANGEBYRANK", KEYS[1], 0, n - keep - 1)
  redis.call("HDEL", KEYS[2], unpack(old))
end
return n
`)

// record stores r as the record of its tick of entry name. An enqueued
// record replaces whatever another daemon wrote for the tick; a duplicate or
// an error is written only when the tick has no record yet.
func record(ctx context.Context, rdb redis.UniversalClient, prefix, name string, r Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("schedule %s: encode run: %w", name, err)
	}
	replace := "0"
	if r.Outcome == OutcomeEnqueued {
		replace = "1"
	}
	keys := []string{runsIndexKey(prefix, name), runsKey(prefix, name)}
	if err := recordRun.Run(ctx, rdb, keys, r.Run, r.Tick.Unix(), b, replace, keepRuns).Err(); err != nil {
		return fmt.Errorf("schedule %s: record run %s: %w", name, r.Run, err)
	}
	return nil
}

// LastRuns returns the newest n recorded ticks of the entry called name,
// newest first, as every daemon recorded them.
func LastRuns(ctx context.Context, rdb redis.UniversalClient, prefix, name string, n int) ([]Run, error) {
	if !jobs.ValidName(name) {
		return nil, fmt.Errorf("schedules: last runs: invalid entry name %q", name)
	}
	if n <= 0 {
		return nil, nil
	}
	ids, err := rdb.ZRevRange(ctx, runsIndexKey(prefix, name), 0, int64(n-1)).Result()
	if err != nil || len(ids) == 0 {
		return nil, wrapLastRuns(name, err)
	}
	vals, err := rdb.HMGet(ctx, runsKey(prefix, name), ids...).Result()
	if err != nil {
		return nil, wrapLastRuns(name, err)
	}
	runs := make([]Run, 0, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // trimmed by another daemon between the two reads
		}
		var r Run
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("schedule %s: last runs: decode run %s: %w", name, ids[i], err)
		}
		runs = append(runs, r)
	}
	return runs, nil
}

func wrapLastRuns(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("schedule %s: last runs: %w", name, err)
}
