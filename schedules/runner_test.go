package schedules

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const prefix = "bo:"

// daemon returns a Runner as one daemon would build it: its own Redis
// client on the shared server.
func daemon(t *testing.T, srv *redistest.Server, dir, name string) *Runner {
	t.Helper()
	rdb := srv.Client(t)
	return NewRunner(RunnerOptions{
		Dir: dir, Options: testOptions(), Client: asynq.NewClientFromRedisClient(rdb), Redis: rdb,
		KeyPrefix: prefix, Logger: slog.New(slog.NewJSONHandler(t.Output(), nil)), Daemon: name,
		Now: func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) },
	})
}

func start(t *testing.T, r *Runner) {
	t.Helper()
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("Start() error: %v", err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
}

// pendingTasks returns the pending tasks of queue by task ID.
func pendingTasks(t *testing.T, rdb redis.UniversalClient, queue string) map[string]*asynq.TaskInfo {
	t.Helper()
	tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(queue, asynq.PageSize(1000))
	if err != nil {
		t.Fatalf("ListPendingTasks(%s): %v", queue, err)
	}
	out := map[string]*asynq.TaskInfo{}
	for _, task := range tasks {
		out[task.ID] = task
	}
	return out
}

func asTask(info *asynq.TaskInfo) *asynq.Task { return asynq.NewTask(info.Type, info.Payload) }

func TestTwoDaemonsEnqueueEachTickOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"shop.yaml": goodFile})
	a, b := daemon(t, srv, dir, "a"), daemon(t, srv, dir, "b")
	set, err := Load(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	// Three Mondays 09:00 in Bratislava, three midnights: all fired by both
	// daemons at once, as their crons would.
	var wg sync.WaitGroup
	results := make(chan Run, 12)
	for week := range 3 {
		monday := time.Date(2026, 11, 23+7*week, 8, 0, 0, 0, time.UTC)
		midnight := time.Date(2026, 11, 22+week, 23, 0, 0, 0, time.UTC)
		for _, r := range []*Runner{a, b} {
			wg.Go(func() { results <- r.fire(t.Context(), set, "spring-sale", monday) })
			wg.Go(func() { results <- r.fire(t.Context(), set, "nightly-import", midnight) })
		}
	}
	wg.Wait()
	close(results)
	outcomes := map[string][]string{} // task ID -> outcomes
	for run := range results {
		outcomes[run.TaskID] = append(outcomes[run.TaskID], run.Outcome)
	}
	wantIDs := []string{
		"campaign:spring-sale:20261123T0800Z:launch", "campaign:spring-sale:20261130T0800Z:launch", "campaign:spring-sale:20261207T0800Z:launch",
		"schedule:nightly-import:20261122T2300Z", "schedule:nightly-import:20261123T2300Z", "schedule:nightly-import:20261124T2300Z",
	}
	for _, id := range wantIDs {
		got := slices.Sorted(slices.Values(outcomes[id]))
		if diff := cmp.Diff([]string{OutcomeDuplicate, OutcomeEnqueued}, got); diff != "" {
			t.Errorf("outcomes of %s (-want,+got):\n%s", id, diff)
		}
	}

	rdb := srv.Client(t)
	campaigns, imports := pendingTasks(t, rdb, jobs.QueueCampaigns), pendingTasks(t, rdb, jobs.QueueBulk)
	gotIDs := slices.Sorted(func(yield func(string) bool) {
		for id := range campaigns {
			yield(id)
		}
		for id := range imports {
			yield(id)
		}
	})
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Fatalf("pending tasks (-want,+got):\n%s", diff)
	}
	var launch jobs.CampaignLaunchArgs
	if err := jobs.Unmarshal(asTask(campaigns[wantIDs[0]]), &launch); err != nil {
		t.Fatal(err)
	}
	if launch.Run != "20261123T0800Z" || launch.Trigger != "schedule" || launch.Campaign.Name != "spring-sale" {
		t.Errorf("launch args = %+v", launch)
	}
	var imp jobs.CustomersImportArgs
	if err := jobs.Unmarshal(asTask(imports[wantIDs[3]]), &imp); err != nil {
		t.Fatal(err)
	}
	if imp.ImportID != "nightly-20261122T2300Z" {
		t.Errorf("import args = %+v, want import_id with the run id", imp)
	}
	if r := imports[wantIDs[3]].Retention; r < retentionFloor {
		t.Errorf("scheduled task retention = %v, want at least %v", r, retentionFloor)
	}

	runs, err := LastRuns(t.Context(), rdb, prefix, "spring-sale", 10)
	if err != nil {
		t.Fatal(err)
	}
	var gotRuns []string
	for _, r := range runs {
		gotRuns = append(gotRuns, r.Run+" "+r.Outcome)
		if r.Daemon != "a" && r.Daemon != "b" || r.TaskID != "campaign:spring-sale:"+r.Run+":launch" {
			t.Errorf("run record %+v", r)
		}
	}
	wantRuns := []string{"20261207T0800Z enqueued", "20261130T0800Z enqueued", "20261123T0800Z enqueued"}
	if diff := cmp.Diff(wantRuns, gotRuns); diff != "" {
		t.Errorf("LastRuns(spring-sale) (-want,+got):\n%s", diff)
	}
}

// beatFile has an entry firing every second and a disabled one.
const beatFile = `timezone: UTC
jobs:
  - name: heartbeat
    cron: "@every 1s"
    kind: customers:import
    args: {import_id: "beat-{run}", path: /tmp/beat.csv}
    enabled: true
  - name: dormant
    cron: "@every 1s"
    kind: customers:import
    args: {import_id: "dormant-{run}", path: /tmp/dormant.csv}
    enabled: false
`

func TestEveryDaemonFiresEverySecondOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"beat.yaml": beatFile})
	var mu sync.Mutex
	seen := map[string]map[string]Run{} // daemon -> run id -> run
	daemons := []*Runner{daemon(t, srv, dir, "a"), daemon(t, srv, dir, "b")}
	for _, r := range daemons {
		r.observe = func(run Run) {
			mu.Lock()
			defer mu.Unlock()
			if seen[run.Daemon] == nil {
				seen[run.Daemon] = map[string]Run{}
			}
			if _, again := seen[run.Daemon][run.TaskID]; again {
				t.Errorf("daemon %s fired %s twice", run.Daemon, run.TaskID)
			}
			seen[run.Daemon][run.TaskID] = run
		}
		start(t, r)
	}
	// Wait until both daemons fired three of the same ticks.
	for deadline := time.Now().Add(20 * time.Second); ; {
		mu.Lock()
		common := 0
		for id := range seen["a"] {
			if _, ok := seen["b"][id]; ok {
				common++
			}
		}
		mu.Unlock()
		if common >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s the daemons share %d ticks, want 3", common)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range daemons {
		r.Stop(t.Context())
	}

	enqueued := map[string]int{} // task ID -> how many daemons enqueued it
	for _, runs := range seen {
		for id, run := range runs {
			if !strings.HasPrefix(id, "schedule:heartbeat:") || run.Tick.Nanosecond() != 0 {
				t.Errorf("unexpected run %+v: want heartbeat ticks on whole seconds", run)
			}
			switch run.Outcome {
			case OutcomeEnqueued:
				enqueued[id]++
			case OutcomeDuplicate:
				enqueued[id] += 0
			default:
				t.Errorf("run %+v failed", run)
			}
		}
	}
	tasks := pendingTasks(t, srv.Client(t), jobs.QueueBulk)
	if len(tasks) != len(enqueued) {
		t.Errorf("%d pending tasks for %d distinct ticks", len(tasks), len(enqueued))
	}
	for id, n := range enqueued {
		if n != 1 || tasks[id] == nil {
			t.Errorf("tick %s enqueued %d times, task pending: %v", id, n, tasks[id] != nil)
		}
	}
	if runs, err := LastRuns(t.Context(), srv.Client(t), prefix, "dormant", 5); err != nil || len(runs) != 0 {
		t.Errorf("LastRuns(dormant) = %v, %v; a disabled entry must never fire", runs, err)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"shop.yaml": goodFile})
	r := daemon(t, srv, dir, "a")
	r.o.PollInterval = 20 * time.Millisecond
	start(t, r)
	first := r.Current()

	writeFile(t, dir, "broken.yaml", strings.ReplaceAll(replaceLine(8, "    rate: fast"), "spring-sale", "autumn-sale"))
	err := r.Reload()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "broken.yaml")+":8: campaigns[0].rate: must look like 50/s") {
		t.Errorf("Reload() with a broken file = %v, want its file:line", err)
	}
	if r.Current() != first {
		t.Errorf("an invalid reload replaced the set")
	}
	if rej := r.Rejected(); rej == nil || len(rej.Errors) != 2 || rej.Errors[0].Line != 8 ||
		rej.Errors[0].File != filepath.Join(dir, "broken.yaml") || rej.At.IsZero() {
		t.Errorf("Rejected() after an invalid reload = %+v, want the rejection of broken.yaml:8", rej)
	}

	if err := os.Remove(filepath.Join(dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "more.yaml", "timezone: UTC\njobs:\n  - {name: weekly-import, cron: \"@weekly\", kind: customers:import, args: {import_id: w, path: /w}, enabled: true}\n")
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload() error: %v", err)
	}
	if _, ok := r.Current().Job("weekly-import"); !ok {
		t.Errorf("Reload() did not pick up weekly-import")
	}
	if rej := r.Rejected(); rej != nil {
		t.Errorf("Rejected() after a valid reload = %+v, want nil", rej)
	}

	// Without Reload: the poller notices the new file.
	writeFile(t, dir, "third.yaml", "timezone: UTC\njobs:\n  - {name: monthly-import, cron: \"@monthly\", kind: customers:import, args: {import_id: m, path: /m}, enabled: false}\n")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := r.Current().Job("monthly-import"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner did not reload after a file was added")
		}
	}
}

func TestStartRejectsAnInvalidDirectory(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"shop.yaml": replaceLine(13, "    kind: nope")})
	r := daemon(t, srv, dir, "a")
	err := r.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "shop.yaml")+`:13: jobs[0].kind: unknown job kind "nope"`) {
		t.Fatalf("Start() = %v, want the file:line of the unknown kind", err)
	}
	if err := r.Reload(); err == nil {
		t.Errorf("Reload() of a runner that did not start = nil error")
	}
	r.Stop(t.Context())
}

func TestRunRecords(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	tick := func(i int) time.Time { return time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC) }
	put := func(name string, i int, outcome, daemon string) {
		t.Helper()
		r := Run{Run: runID(tick(i), false), Tick: tick(i), TaskID: fmt.Sprint("t", i), Outcome: outcome, Daemon: daemon}
		if err := record(t.Context(), rdb, prefix, name, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		put("beat", i, OutcomeEnqueued, "a")
	}
	runs, err := LastRuns(t.Context(), rdb, prefix, "beat", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != keepRuns || runs[0].Run != runID(tick(24), false) || runs[keepRuns-1].Run != runID(tick(5), false) {
		t.Fatalf("LastRuns() = %d runs from %v to %v; want the newest %d", len(runs), runs[0].Run, runs[len(runs)-1].Run, keepRuns)
	}
	if n, _ := rdb.HLen(t.Context(), runsKey(prefix, "beat")).Result(); n != keepRuns {
		t.Errorf("the runs hash holds %d records, want %d", n, keepRuns)
	}

	// One record per tick: whoever enqueued it wins, whatever the order.
	put("few", 0, OutcomeDuplicate, "b")
	put("few", 0, OutcomeEnqueued, "a")
	put("few", 1, OutcomeEnqueued, "a")
	put("few", 1, OutcomeError, "b")
	put("few", 1, OutcomeDuplicate, "c")
	put("few", 2, OutcomeError, "b")
	put("few", 2, OutcomeDuplicate, "c")
	few, err := LastRuns(t.Context(), rdb, prefix, "few", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range few {
		got = append(got, r.Run+" "+r.Outcome+" "+r.Daemon)
	}
	want := []string{"20260101T0002Z error b", "20260101T0001Z enqueued a", "20260101T0000Z enqueued a"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LastRuns(few, 3) (-want,+got):\n%s", diff)
	}
	if _, err := LastRuns(t.Context(), rdb, prefix, "bad}name", 1); err == nil {
		t.Errorf("LastRuns(bad}name) = nil error")
	}
}

func TestFireRecordsEnqueueErrors(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"shop.yaml": goodFile})
	r := daemon(t, srv, dir, "a")
	broken := redis.NewClient(&redis.Options{Addr: srv.Addr})
	broken.Close()
	r.o.Client = asynq.NewClientFromRedisClient(broken)
	set, err := Load(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	run := r.fire(t.Context(), set, "spring-sale", tick)
	if run.Outcome != OutcomeError || !strings.Contains(run.Message, "closed") {
		t.Errorf("fire() with a closed client = %+v, want an error outcome", run)
	}
	runs, err := LastRuns(t.Context(), srv.Client(t), prefix, "spring-sale", 1)
	if err != nil || len(runs) != 1 || runs[0].Outcome != OutcomeError {
		t.Errorf("LastRuns() = %+v, %v; want the error recorded", runs, err)
	}
}

// TestFireRetriesWhileRedisRestarts: a tick that falls while Redis is down
// (a restart, a failover) is enqueued once it is back, not lost; the
// dashboard sees the tick in trouble meanwhile.
func TestFireRetriesWhileRedisRestarts(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"shop.yaml": goodFile})
	r := daemon(t, srv, dir, "a")
	var ticks []Run
	r.o.OnTick = func(entry string, run Run) {
		if entry != "spring-sale" {
			t.Errorf("OnTick(%q), want spring-sale", entry)
		}
		ticks = append(ticks, run)
	}
	set, err := Load(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan Run, 1)
	go func() { done <- r.fire(ctx, set, "spring-sale", tick) }()
	time.Sleep(3 * time.Second) // go-redis's own retries give up well before
	select {
	case run := <-done:
		t.Fatalf("fire() with Redis down returned %+v before Redis came back", run)
	default:
	}
	srv.Restart(t)
	run := <-done
	if run.Outcome != OutcomeEnqueued {
		t.Fatalf("fire() across a Redis restart = %+v, want enqueued", run)
	}
	if _, ok := pendingTasks(t, srv.Client(t), jobs.QueueCampaigns)[run.TaskID]; !ok {
		t.Errorf("task %s is not pending after the restart", run.TaskID)
	}
	runs, err := LastRuns(t.Context(), srv.Client(t), prefix, "spring-sale", 1)
	if err != nil || len(runs) != 1 || runs[0].Outcome != OutcomeEnqueued {
		t.Errorf("LastRuns() = %+v, %v; want the tick recorded enqueued", runs, err)
	}
	if len(ticks) != 1 || ticks[0].Outcome != OutcomeEnqueued {
		t.Errorf("OnTick saw %+v, want one enqueued tick", ticks)
	}
}

// TestRetryUntil: a tick is tried for fireRetryWindow, never into the
// entry's next tick, and always for at least one try's time.
func TestRetryUntil(t *testing.T) {
	t.Parallel()
	set, err := Load(writeDir(t, map[string]string{"shop.yaml": goodFile, "beat.yaml": "timezone: UTC\njobs:\n" +
		"  - {name: beat, cron: \"@every 1m\", kind: customers:import, args: {import_id: b, path: /b}, enabled: true}\n"}), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		now, want time.Time
	}{
		{"nightly-import", tick, tick.Add(fireRetryWindow)},
		{"beat", tick, tick.Add(time.Minute)},
		{"beat", tick.Add(55 * time.Second), tick.Add(55*time.Second + fireTimeout)},
	} {
		if got := set.retryUntil(tc.name, tick, tc.now); !got.Equal(tc.want) {
			t.Errorf("retryUntil(%s, now %s) = %s, want %s", tc.name, tc.now, got, tc.want)
		}
	}
}

func TestView(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"shop.yaml": strings.Replace(goodFile, "    enabled: true\njobs", "    enabled: false\njobs", 1)})
	r := daemon(t, srv, dir, "a")
	start(t, r)
	r.fire(t.Context(), r.Current(), "nightly-import", time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC))
	views, err := r.View(t.Context(), 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(views)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("View() = %s", b)
	}
	// The runner's clock says 2026-11-01 00:00 UTC, 01:00 in Bratislava.
	want := []map[string]any{
		{"name": "spring-sale", "type": "campaign", "target": "email", "enabled": false, "zone": "Europe/Bratislava",
			"next": []any{}, "last_runs": []any{}},
		{"name": "nightly-import", "type": "job", "target": "customers:import", "enabled": true, "zone": "Europe/Bratislava",
			"next": []any{"2026-11-02T00:00:00+01:00", "2026-11-03T00:00:00+01:00"}},
	}
	for i, w := range want {
		for k, v := range w {
			if diff := cmp.Diff(v, got[i][k]); diff != "" {
				t.Errorf("View()[%d].%s (-want,+got):\n%s", i, k, diff)
			}
		}
	}
	runs, _ := got[1]["last_runs"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["task_id"] != "schedule:nightly-import:20261031T2300Z" {
		t.Errorf("View()[1].last_runs = %v", got[1]["last_runs"])
	}
}

// A reload just before a tick loses no tick: the new cron starts from the
// tick the replaced one was about to fire (which it may never fire).
func TestReloadJustBeforeATickLosesNoTick(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := writeDir(t, map[string]string{"beat.yaml": beatFile})
	var mu sync.Mutex
	ticks := map[time.Time]bool{}
	r := daemon(t, srv, dir, "a")
	r.observe = func(run Run) {
		mu.Lock()
		defer mu.Unlock()
		ticks[run.Tick] = true
	}
	start(t, r)
	const reloads = 6
	for range reloads {
		next := time.Now().Truncate(time.Second).Add(time.Second)
		time.Sleep(time.Until(next.Add(-300 * time.Microsecond)))
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	r.Stop(t.Context())
	mu.Lock()
	defer mu.Unlock()
	var first, last time.Time
	for tick := range ticks {
		if first.IsZero() || tick.Before(first) {
			first = tick
		}
		if tick.After(last) {
			last = tick
		}
	}
	if n := int(last.Sub(first)/time.Second) + 1; n < reloads || len(ticks) != n {
		var missing []string
		for tick := first; !tick.After(last); tick = tick.Add(time.Second) {
			if !ticks[tick] {
				missing = append(missing, tick.Format("15:04:05"))
			}
		}
		t.Errorf("ticks %s..%s: %d fired of %d, missing %v", first.Format("15:04:05"), last.Format("15:04:05"), len(ticks), n, missing)
	}
}
