package schedules

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func utc(month time.Month, day, hour, minute int) time.Time {
	return time.Date(2026, month, day, hour, minute, 0, 0, time.UTC)
}

// TestDaylightSaving checks Vixie cron's rule: fixed-time entries fire once
// on the day the clocks go back and at the end of the gap on the day they
// go forward; wildcard entries follow real time.
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	dir := writeDir(t, map[string]string{"s.yaml": `timezone: Europe/Prague
jobs:
  - {name: prague, cron: "30 2 * * *", kind: customers:import, args: {import_id: a, path: /a}, enabled: true}
  - {name: ny, cron: "CRON_TZ=America/New_York 30 2 * * *", kind: customers:import, args: {import_id: b, path: /b}, enabled: true}
  - {name: ny-back, cron: "CRON_TZ=America/New_York 30 1 * * *", kind: customers:import, args: {import_id: c, path: /c}, enabled: true}
  - {name: two, cron: "0,30 2,3 * * *", kind: customers:import, args: {import_id: d, path: /d}, enabled: true}
  - {name: sunday, cron: "30 2 * * SUN", kind: customers:import, args: {import_id: e, path: /e}, enabled: true}
  - {name: monday, cron: "30 2 * * MON", kind: customers:import, args: {import_id: f, path: /f}, enabled: true}
  - {name: quarter, cron: "*/30 * * * *", kind: customers:import, args: {import_id: g, path: /g}, enabled: true}
  - {name: hourly, cron: "0 * * * *", kind: customers:import, args: {import_id: h, path: /h}, enabled: true}
  - {name: range, cron: "30 0-23 * * *", kind: customers:import, args: {import_id: i, path: /i}, enabled: true}
  - {name: daily, cron: "@daily", kind: customers:import, args: {import_id: j, path: /j}, enabled: true}
`})
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	// Prague: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC);
	// 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
	// New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC);
	// 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).
	tests := []struct {
		name string
		from time.Time
		want []time.Time
	}{
		{"prague", utc(3, 28, 23, 0), []time.Time{utc(3, 29, 1, 0), utc(3, 30, 0, 30), utc(3, 31, 0, 30)}},
		{"prague", utc(3, 29, 0, 59), []time.Time{utc(3, 29, 1, 0), utc(3, 30, 0, 30)}},
		{"prague", utc(3, 29, 1, 0), []time.Time{utc(3, 30, 0, 30)}},
		{"prague", utc(10, 24, 23, 0), []time.Time{utc(10, 25, 0, 30), utc(10, 26, 1, 30), utc(10, 27, 1, 30)}},
		{"prague", utc(10, 25, 1, 10), []time.Time{utc(10, 26, 1, 30)}}, // 02:10 CET, the repeat
		{"ny", utc(3, 7, 12, 0), []time.Time{utc(3, 8, 7, 0), utc(3, 9, 6, 30)}},
		{"ny-back", utc(10, 31, 12, 0), []time.Time{utc(11, 1, 5, 30), utc(11, 2, 6, 30)}},
		// 02:00 and 02:30 skipped: one tick at 03:00 CEST, then 03:30.
		{"two", utc(3, 28, 23, 0), []time.Time{utc(3, 29, 1, 0), utc(3, 29, 1, 30), utc(3, 30, 0, 0)}},
		// Both hours once each on the way back: 02:00, 02:30 CEST, 03:00, 03:30 CET.
		{"two", utc(10, 24, 23, 0), []time.Time{utc(10, 25, 0, 0), utc(10, 25, 0, 30), utc(10, 25, 2, 0), utc(10, 25, 2, 30)}},
		{"sunday", utc(3, 28, 0, 0), []time.Time{utc(3, 29, 1, 0), utc(4, 5, 0, 30)}},
		{"monday", utc(3, 28, 0, 0), []time.Time{utc(3, 30, 0, 30)}}, // the gap is on a Sunday
		// Wildcard hours follow real time: every repeated instant, nothing in the gap.
		{"quarter", utc(10, 24, 23, 50), []time.Time{utc(10, 25, 0, 0), utc(10, 25, 0, 30), utc(10, 25, 1, 0), utc(10, 25, 1, 30), utc(10, 25, 2, 0)}},
		{"quarter", utc(3, 29, 0, 20), []time.Time{utc(3, 29, 0, 30), utc(3, 29, 1, 0), utc(3, 29, 1, 30)}},
		{"hourly", utc(10, 24, 23, 30), []time.Time{utc(10, 25, 0, 0), utc(10, 25, 1, 0), utc(10, 25, 2, 0)}},
		{"range", utc(10, 24, 23, 50), []time.Time{utc(10, 25, 0, 30), utc(10, 25, 1, 30), utc(10, 25, 2, 30)}},
		{"range", utc(3, 29, 0, 0), []time.Time{utc(3, 29, 0, 30), utc(3, 29, 1, 30)}},
		{"daily", utc(3, 28, 12, 0), []time.Time{utc(3, 28, 23, 0), utc(3, 29, 22, 0)}},
	}
	for _, tt := range tests {
		got, err := s.NextTimes(tt.name, tt.from, len(tt.want))
		if err != nil {
			t.Fatalf("NextTimes(%s) error: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(time.Time.Equal)); diff != "" {
			t.Errorf("NextTimes(%s, %v) (-want,+got):\n%s", tt.name, tt.from, diff)
		}
	}
	// Every start point inside the day gives the same ticks (no state).
	for from := utc(10, 24, 22, 0); from.Before(utc(10, 25, 4, 0)); from = from.Add(7 * time.Minute) {
		got, _ := s.NextTimes("prague", from, 1)
		want := utc(10, 25, 0, 30)
		if !from.Before(want) {
			want = utc(10, 26, 1, 30)
		}
		if !got[0].Equal(want) {
			t.Errorf("NextTimes(prague, %v) = %v, want %v", from, got[0], want)
		}
	}
}

// TestDaylightSavingRunIDs checks that the tick at the end of a gap gets
// its own task ID, and that the repeated hour adds none.
func TestDaylightSavingRunIDs(t *testing.T) {
	t.Parallel()
	dir := writeDir(t, map[string]string{"s.yaml": `timezone: Europe/Prague
jobs:
  - {name: nightly, cron: "30 2 * * *", kind: customers:import, args: {import_id: "n-{run}", path: /a}, enabled: true}
`})
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	var ids []string
	for _, from := range []time.Time{utc(3, 28, 23, 0), utc(10, 24, 23, 0)} {
		ticks, _ := s.NextTimes("nightly", from, 2)
		for _, tick := range ticks {
			_, id, err := s.task("nightly", tick)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	want := []string{
		"schedule:nightly:20260329T0100Z", "schedule:nightly:20260330T0030Z",
		"schedule:nightly:20261025T0030Z", "schedule:nightly:20261026T0130Z",
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("task IDs (-want,+got):\n%s", diff)
	}
}
