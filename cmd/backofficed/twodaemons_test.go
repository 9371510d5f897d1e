package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"github.com/shopworks/backoffice/workers/redistest"
)

// tickSchedule is a campaign to one recipient every second; %q is the
// audience file, %t whether it fires.
const tickSchedule = `timezone: UTC
campaigns:
  - name: tick
    cron: "@every 1s"
    channel: email
    template: promo
    audience: {file: %q}
    rate: 10/s
    enabled: %t
`

// TestTwoDaemonsFireEachTickOnce runs two daemon processes on one Redis
// with the same schedule directory: a campaign at "@every 1s". Every tick
// is launched once, with no gap, both daemons see every tick while both
// run, and each tick's run sends its one mail once.
func TestTwoDaemonsFireEachTickOnce(t *testing.T) {
	t.Parallel()
	bin := buildBinaries(t)
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	mail := smtptest.Start(t)
	audience, _ := writeAudience(t, 1)
	dir := t.TempDir()
	writeTickSchedule(t, dir, audience, true)
	extra := map[string]string{
		"BACKOFFICE_SCHEDULES_DIR": dir,
		"BACKOFFICE_SMTP_URL":      mail.URL(),
		"BACKOFFICE_MAIL_FROM":     "Shop <shop@shop.example>",
		"BACKOFFICE_LOG_LEVEL":     "debug", // shows the ticks the other daemon enqueued
	}
	// each daemon has its own data dir, as on two hosts
	a := startDaemonEnv(t, bin, daemonEnv(t, srv.URL(), extra))
	b := startDaemonEnv(t, bin, daemonEnv(t, srv.URL(), extra))
	bothUp := time.Now()

	waitUntil(t, time.Minute, "5 seconds of ticks with both daemons up", func() bool {
		runs := lastTicks(t, rdb)
		return len(runs) > 0 && runs[len(runs)-1].Tick.After(bothUp.Add(5*time.Second))
	})
	off := time.Now()
	writeTickSchedule(t, dir, audience, false)
	for _, d := range []*e2eDaemon{a, b} {
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
	}
	for _, d := range []*e2eDaemon{a, b} {
		waitUntil(t, 30*time.Second, "the reload that disables the entry", func() bool {
			return slices.ContainsFunc(logRecords(d, "schedules loaded"), func(r logRecord) bool { return r.Enabled != nil && *r.Enabled == 0 })
		})
	}

	// a tick fired as the reload came may still be recording: wait for
	// the runs of the ticks recorded until no new one appears
	store := campaigns.NewStore(rdb, keyPrefix, nil)
	var runs []schedules.Run
	for done := false; !done; {
		runs = lastTicks(t, rdb)
		for _, r := range runs {
			waitUntil(t, time.Minute, "run "+r.Run+" to finish", func() bool {
				st, err := store.Status(t.Context(), "tick", r.Run)
				return err == nil && st.State == campaigns.StateFinished
			})
		}
		done = len(lastTicks(t, rdb)) == len(runs)
	}
	a.stop(t)
	b.stop(t)

	t.Logf("%d ticks from %s to %s", len(runs), runs[0].Run, runs[len(runs)-1].Run)
	checkTicks(t, runs, bothUp, off, a, b)
	checkTickRuns(t, rdb, store, mail.Messages(), runs)
}

func writeTickSchedule(t *testing.T, dir, audience string, enabled bool) {
	t.Helper()
	content := fmt.Sprintf(tickSchedule, audience, enabled)
	if err := os.WriteFile(filepath.Join(dir, "tick.yaml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lastTicks returns the recorded ticks of the entry "tick", oldest first.
func lastTicks(t *testing.T, rdb redis.UniversalClient) []schedules.Run {
	t.Helper()
	runs, err := schedules.LastRuns(t.Context(), rdb, keyPrefix, "tick", 100)
	if err != nil {
		t.Fatalf("last runs: %v", err)
	}
	slices.Reverse(runs)
	return runs
}

// checkTicks checks the tick records: one per second without a gap, each
// enqueued once under its deterministic task ID by one of the daemons, and
// while both ran, seen by both (one enqueued it, the other found it taken).
func checkTicks(t *testing.T, runs []schedules.Run, bothUp, off time.Time, daemons ...*e2eDaemon) {
	t.Helper()
	if len(runs) < 5 || len(runs) >= 20 {
		t.Fatalf("%d ticks recorded, want 5 or more in ~5s (and fewer than the 20 kept)", len(runs))
	}
	fired := map[string][]int{}     // run -> daemons that logged "schedule fired"
	duplicate := map[string][]int{} // run -> daemons that found the tick enqueued
	for i, d := range daemons {
		for _, r := range logRecords(d, "schedule fired") {
			if r.Schedule == "tick" {
				fired[r.Run] = append(fired[r.Run], i)
			}
		}
		for _, r := range logRecords(d, "schedule tick enqueued by another daemon") {
			if r.Schedule == "tick" {
				duplicate[r.Run] = append(duplicate[r.Run], i)
			}
		}
	}
	both := 0
	for i, r := range runs {
		if i > 0 && !r.Tick.Equal(runs[i-1].Tick.Add(time.Second)) {
			t.Errorf("tick %s follows %s: a gap or a repeat", r.Tick, runs[i-1].Tick)
		}
		wantID := "campaign:tick:" + r.Run + ":launch"
		if r.Outcome != schedules.OutcomeEnqueued || r.TaskID != wantID || r.Run != r.Tick.UTC().Format("20060102T150405Z") {
			t.Errorf("tick %s: run %s, outcome %s, task %s; want enqueued as %s (%s)", r.Tick, r.Run, r.Outcome, r.TaskID, wantID, r.Message)
		}
		if len(fired[r.Run]) != 1 {
			t.Errorf("tick %s: daemons %v logged that they enqueued it, want exactly one", r.Run, fired[r.Run])
			continue
		}
		if d := daemons[fired[r.Run][0]]; !strings.HasSuffix(r.Daemon, ":"+strconv.Itoa(d.cmd.Process.Pid)) {
			t.Errorf("tick %s: recorded as enqueued by %s, but daemon pid %d logged it", r.Run, r.Daemon, d.cmd.Process.Pid)
		}
		if r.Tick.After(bothUp.Add(time.Second)) && r.Tick.Before(off.Add(-time.Second)) {
			both++
			if len(duplicate[r.Run]) != 1 || duplicate[r.Run][0] == fired[r.Run][0] {
				t.Errorf("tick %s while both daemons ran: enqueued by daemon %v, found taken by %v; want the other one", r.Run, fired[r.Run], duplicate[r.Run])
			}
		}
	}
	for run := range fired {
		if !slices.ContainsFunc(runs, func(r schedules.Run) bool { return r.Run == run }) {
			t.Errorf("tick %s was logged as enqueued but not recorded", run)
		}
	}
	if both < 3 {
		t.Errorf("only %d ticks fell while both daemons ran, want 3 or more", both)
	}
	t.Logf("%d ticks while both daemons ran, each seen by both and enqueued by one", both)
}

// checkTickRuns checks that each tick launched one campaign run that sent
// its one mail once, and that no other run exists.
func checkTickRuns(t *testing.T, rdb redis.UniversalClient, store *campaigns.Store, msgs []smtptest.Message, runs []schedules.Run) {
	t.Helper()
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	want := make([]string, len(runs))
	for i, r := range runs {
		want[i] = r.Run
		info, err := inspector.GetTaskInfo(jobs.QueueCampaigns, r.TaskID)
		if err != nil || info.State != asynq.TaskStateCompleted {
			t.Errorf("launch task %s: %v, %v; want completed", r.TaskID, taskState(info), err)
		}
		st, err := store.Status(t.Context(), "tick", r.Run)
		if err != nil {
			t.Errorf("run %s: %v", r.Run, err)
			continue
		}
		if c := st.Counts; st.State != campaigns.StateFinished || c.Total != 1 || c.Sent != 1 || st.Trigger != "schedule" {
			t.Errorf("run %s: %s, trigger %s, counts %+v; want finished, schedule, 1 sent", r.Run, st.State, st.Trigger, c)
		}
	}
	got, err := store.Runs(t.Context(), "tick", 100)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("campaign runs %v, want one per tick %v", got, want)
	}
	sent := map[string]int{}
	for _, m := range msgs {
		sent[strings.TrimPrefix(headerOf(m, "X-Backoffice-Campaign"), "tick/")]++
	}
	for _, run := range want {
		if sent[run] != 1 {
			t.Errorf("run %s: %d mails, want 1", run, sent[run])
		}
	}
	if len(msgs) != len(want) {
		t.Errorf("%d mails for %d ticks", len(msgs), len(want))
	}
}

func taskState(info *asynq.TaskInfo) string {
	if info == nil {
		return "missing"
	}
	return info.State.String()
}

// logRecord is the part of a daemon's JSON log line these tests read.
type logRecord struct {
	Msg      string `json:"msg"`
	Schedule string `json:"schedule"`
	Run      string `json:"run"`
	Enabled  *int   `json:"enabled"`
}

// logRecords returns the daemon's JSON log records whose msg is msg.
func logRecords(d *e2eDaemon, msg string) []logRecord {
	var out []logRecord
	sc := bufio.NewScanner(strings.NewReader(d.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r logRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}
