package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSchedulesCheckShippedExample checks schedules/example.yaml alone, in
// a directory of its own: the README's walk-through adds files to
// ./schedules, and make test must not fail for a user who followed it.
func TestSchedulesCheckShippedExample(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../../schedules/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "schedules")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "example.yaml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) // a Friday
	code := runSchedulesCheck([]string{"-templates-dir=", dir}, &stdout, &stderr, now)
	if code != 0 {
		t.Fatalf("schedules check of example.yaml = %d; stderr:\n%s", code, &stderr)
	}
	want := []string{
		dir + ": all valid: files 1, campaigns 1, jobs 1",
		"",
		"NAME            TYPE      CHANNEL/KIND      CRON                   ZONE               ENABLED  NEXT",
		"spring-sale     campaign  email             0 9 * * MON            Europe/Bratislava  no       2026-11-23 09:00:00 CET, 2026-11-30 09:00:00 CET, 2026-12-07 09:00:00 CET",
		"nightly-import  job       customers:import  CRON_TZ=UTC 0 2 * * *  UTC                no       2026-11-21 02:00:00 UTC, 2026-11-22 02:00:00 UTC, 2026-11-23 02:00:00 UTC",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")); diff != "" {
		t.Errorf("schedules check output (-want,+got):\n%s", diff)
	}
}

func TestSchedulesCheckReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "shop.yaml")
	content := `timezone: Europe/Bratislava
campaigns:
  - name: spring-sale
    cron: "0 9 * * MON"
    channel: email
    template: no-such-template
    audience: {tags: [newsletter]}
    rate: fast
    enabled: true
`
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runSchedulesCheck([]string{"-templates-dir=", dir}, &stdout, &stderr, time.Now())
	want := []string{
		file + `:6: campaigns[0].template: no email template named "no-such-template"`,
		file + `:8: campaigns[0].rate: must look like 50/s, 300/m or 1000/h, got "fast"`,
		dir + ": 2 problems; the daemon would refuse these schedules",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")); code != 1 || diff != "" {
		t.Errorf("schedules check = %d, stderr (-want,+got):\n%s", code, diff)
	}
	// one problem is "1 problem"
	if err := os.WriteFile(file, []byte(strings.Replace(content, "no-such-template", "promo", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := runSchedulesCheck([]string{"-templates-dir=", dir}, &stdout, &stderr, time.Now()); code != 1 ||
		!strings.HasSuffix(stderr.String(), dir+": 1 problem; the daemon would refuse these schedules\n") {
		t.Errorf("schedules check with one problem = %d, stderr %q", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", &stdout)
	}
}

func TestSchedulesUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"lists"}, {"check", "a", "b"}, {"check", "-bogus"}} {
		var stdout, stderr bytes.Buffer
		if code := runSchedules(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "backoffice schedules check [-templates-dir DIR] [SCHEDULES_DIR]") {
			t.Errorf("runSchedules(%q) = %d, stderr %q; want 2 and the usage", args, code, &stderr)
		}
	}
}
