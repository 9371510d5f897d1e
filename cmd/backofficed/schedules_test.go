package main

import (
	"encoding/json"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/templates"
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
		return len(td.Logs.records(t, "SIGHUP: reloading the templates and the schedule files")) > 0 &&
			len(td.Logs.records(t, "templates reloaded")) > 0
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

const seasonSchedule = `timezone: UTC
campaigns:
  - name: season
    cron: "0 9 * * MON"
    channel: sms
    template: season
    audience: {tags: [newsletter]}
    rate: 10/s
    enabled: false
`

// TestDaemonReloadsTemplates: the reload SIGHUP runs puts edited templates
// in force, and keeps the previous ones when the new ones do not load or
// lack a template a campaign entry needs; a template dropped together
// with its entry goes.
func TestDaemonReloadsTemplates(t *testing.T) {
	t.Parallel()
	tmpl, sched := t.TempDir(), t.TempDir()
	writeTemplate := func(body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(tmpl, "season"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeSchedule(t, filepath.Join(tmpl, "season"), "en.sms.tmpl", body)
	}
	writeTemplate("Spring sale at {{.Shop.Name}}")
	writeSchedule(t, sched, "season.yaml", seasonSchedule)
	td := startTestDaemon(t, map[string]string{"BACKOFFICE_TEMPLATES_DIR": tmpl, "BACKOFFICE_SCHEDULES_DIR": sched})
	body := func() string {
		t.Helper()
		m, err := td.delivery.templates.RenderSMS("season", "en", templates.Data{})
		if err != nil {
			return "error: " + err.Error()
		}
		return m.Body
	}

	writeTemplate("Summer sale at {{.Shop.Name}}")
	if err := td.reloadTemplates(); err != nil {
		t.Fatalf("reload of an edited template: %v", err)
	}
	if got := body(); got != "Summer sale at Shop" {
		t.Errorf("after the reload: %q, want the edited template", got)
	}

	writeTemplate("Autumn sale at {{.Shop.Nme}}")
	if err := td.reloadTemplates(); err == nil || !strings.Contains(err.Error(), "en.sms.tmpl:1") {
		t.Errorf("reload of a broken template = %v, want an error naming the file and line", err)
	}
	if err := os.RemoveAll(filepath.Join(tmpl, "season")); err != nil {
		t.Fatal(err)
	}
	if err := td.reloadTemplates(); err == nil || !strings.Contains(err.Error(), "season.yaml:3: campaign season needs sms template season") {
		t.Errorf("reload without a template an entry needs = %v, want an error naming the entry", err)
	}
	if got := body(); got != "Summer sale at Shop" {
		t.Errorf("after two refused reloads: %q, want the templates kept", got)
	}

	// the entry goes with its template: both are dropped
	if err := os.Remove(filepath.Join(sched, "season.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := td.reloadTemplates(); err != nil {
		t.Fatalf("reload without the template and its entry: %v", err)
	}
	if got := body(); !strings.Contains(got, "not found") {
		t.Errorf("after the template was dropped: %q, want it not found", got)
	}
}

// TestDaemonShowsRefusedReloads: an operator whose edit of a schedule file
// or a template was refused (the previous files stay in force) sees it in
// GET /api/schedules, on the dashboard and in /metrics, until it is fixed.
func TestDaemonShowsRefusedReloads(t *testing.T) {
	t.Parallel()
	tmpl, sched := t.TempDir(), t.TempDir()
	template := filepath.Join(tmpl, "season", "en.sms.tmpl")
	if err := os.MkdirAll(filepath.Dir(template), 0o755); err != nil {
		t.Fatal(err)
	}
	writeSchedule(t, filepath.Dir(template), "en.sms.tmpl", "Spring sale at {{.Shop.Name}}")
	writeSchedule(t, sched, "season.yaml", seasonSchedule)
	td := startTestDaemon(t, map[string]string{"BACKOFFICE_TEMPLATES_DIR": tmpl, "BACKOFFICE_SCHEDULES_DIR": sched})
	type listing struct {
		Rejected []struct {
			What     string    `json:"what"`
			At       time.Time `json:"at"`
			Problems []string  `json:"problems"`
		} `json:"rejected"`
	}
	rejected := func() map[string]string {
		t.Helper()
		code, body := td.get(t, "/api/schedules")
		var l listing
		if err := json.Unmarshal([]byte(body), &l); code != http.StatusOK || err != nil || l.Rejected == nil {
			t.Fatalf("GET /api/schedules = %d %s (%v), want 200 with a rejected list", code, body, err)
		}
		out := map[string]string{}
		for _, r := range l.Rejected {
			if r.At.IsZero() {
				t.Errorf("rejected %s has no time", r.What)
			}
			out[r.What] = strings.Join(r.Problems, "\n")
		}
		return out
	}
	metric := func(files string) string {
		t.Helper()
		_, body := td.get(t, "/metrics")
		prefix := `backoffice_reload_rejected{files="` + files + `"} `
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				return v
			}
		}
		return "missing"
	}
	if got := rejected(); len(got) != 0 {
		t.Errorf("rejected after start = %v, want none", got)
	}
	if a, b := metric("schedules"), metric("templates"); a != "0" || b != "0" {
		t.Errorf("backoffice_reload_rejected after start = %s, %s, want 0, 0", a, b)
	}

	// A broken schedule file: the watcher reloads it within seconds and refuses it.
	writeSchedule(t, sched, "broken.yaml", strings.Replace(seasonSchedule, "rate: 10/s", "rate: fast", 1))
	wantSched := filepath.Join(sched, "broken.yaml") + ":8: campaigns[0].rate: must look like"
	waitFor(t, "the refused schedule reload", func() bool { return strings.Contains(rejected()["schedules"], wantSched) })
	// A broken template: SIGHUP reloads it and refuses it.
	writeSchedule(t, filepath.Dir(template), "en.sms.tmpl", "Autumn sale at {{.Shop.Nme}}")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused template reload", func() bool { return strings.Contains(rejected()["templates"], "en.sms.tmpl:1") })
	if a, b := metric("schedules"), metric("templates"); a != "1" || b != "1" {
		t.Errorf("backoffice_reload_rejected after refused reloads = %s, %s, want 1, 1", a, b)
	}
	_, page := td.get(t, "/")
	for _, want := range []string{"The schedule files on disk were rejected", "The template files on disk were rejected", html.EscapeString(wantSched)} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard does not say %q", want)
		}
	}

	// Fixed: both go into force and the warnings go.
	if err := os.Remove(filepath.Join(sched, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	writeSchedule(t, filepath.Dir(template), "en.sms.tmpl", "Autumn sale at {{.Shop.Name}}")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fixed files in force", func() bool { return len(rejected()) == 0 })
	if a, b := metric("schedules"), metric("templates"); a != "0" || b != "0" {
		t.Errorf("backoffice_reload_rejected after the fix = %s, %s, want 0, 0", a, b)
	}
}
