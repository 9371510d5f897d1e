package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shopworks/backoffice/schedules"
)

const heartbeatSchedule = `timezone: UTC
jobs:
  - name: heartbeat
    cron: "@every 1s"
    kind: customers:import
    args: {import_id: "beat-{run}", path: /nonexistent/beat.csv}
    enabled: true
`

func writeSchedule(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonRunsSchedules checks the wiring: the daemon fires its entries
// and a SIGHUP reloads the files.
func TestDaemonRunsSchedules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeSchedule(t, dir, "beat.yaml", heartbeatSchedule)
	td := startTestDaemon(t, map[string]string{"BACKOFFICE_SCHEDULES_DIR": dir})
	waitFor(t, "a heartbeat tick", func() bool {
		runs, err := schedules.LastRuns(t.Context(), td.rdb, td.cfg.KeyPrefix, "heartbeat", 1)
		return err == nil && len(runs) == 1 && runs[0].Outcome == schedules.OutcomeEnqueued
	})

	writeSchedule(t, dir, "weekly.yaml", strings.NewReplacer("heartbeat", "weekly", "@every 1s", "@weekly", "true", "false").Replace(heartbeatSchedule))
	// The daemon listens for SIGHUP before it loads the schedules, and it
	// has fired a tick since: the signal cannot kill the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool {
		return len(td.Logs.records(t, "SIGHUP: reloading the schedule files")) > 0
	})
	waitFor(t, "the new entry", func() bool {
		_, ok := td.schedules.Current().Job("weekly")
		return ok
	})
}

func TestDaemonRefusesInvalidSchedules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeSchedule(t, dir, "beat.yaml", strings.Replace(heartbeatSchedule, "kind: customers:import", "kind: customers:explode", 1))
	td := startTestDaemon(t, map[string]string{"BACKOFFICE_SCHEDULES_DIR": dir})
	err := td.Stop(t)
	want := filepath.Join(dir, "beat.yaml") + `:5: jobs[0].kind: unknown job kind "customers:explode"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("serve() = %v, want an error naming %s", err, want)
	}
}
