package schedules

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNextTimes(t *testing.T) {
	t.Parallel()
	bratislava, prague := mustZone(t, "Europe/Bratislava"), mustZone(t, "Europe/Prague")
	dir := writeDir(t, map[string]string{"s.yaml": `timezone: Europe/Bratislava
jobs:
  - {name: monday, cron: "0 9 * * MON", kind: customers:import, args: {import_id: a, path: /a}, enabled: true}
  - {name: every, cron: "@every 10m", kind: customers:import, args: {import_id: b, path: /b}, enabled: true}
  - {name: odd, cron: "@every 90s", kind: customers:import, args: {import_id: c, path: /c}, enabled: true}
  - {name: prague, cron: "CRON_TZ=Europe/Prague 30 1 * * *", kind: customers:import, args: {import_id: d, path: /d}, enabled: false}
`})
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	// Summer time starts in Bratislava on Sunday 2026-03-29.
	from := time.Date(2026, 3, 20, 12, 3, 27, 0, time.UTC)
	tests := []struct {
		name string
		want []time.Time
	}{
		{"monday", []time.Time{
			time.Date(2026, 3, 23, 9, 0, 0, 0, bratislava), // 08:00 UTC
			time.Date(2026, 3, 30, 9, 0, 0, 0, bratislava), // 07:00 UTC
			time.Date(2026, 4, 6, 9, 0, 0, 0, bratislava),
		}},
		{"every", []time.Time{
			time.Date(2026, 3, 20, 13, 10, 0, 0, bratislava),
			time.Date(2026, 3, 20, 13, 20, 0, 0, bratislava),
			time.Date(2026, 3, 20, 13, 30, 0, 0, bratislava),
		}},
		{"odd", []time.Time{ // multiples of 90 s since the epoch
			time.Date(2026, 3, 20, 12, 4, 30, 0, time.UTC),
			time.Date(2026, 3, 20, 12, 6, 0, 0, time.UTC),
			time.Date(2026, 3, 20, 12, 7, 30, 0, time.UTC),
		}},
		{"prague", []time.Time{
			time.Date(2026, 3, 21, 1, 30, 0, 0, prague),
			time.Date(2026, 3, 22, 1, 30, 0, 0, prague),
			time.Date(2026, 3, 23, 1, 30, 0, 0, prague),
		}},
	}
	for _, tt := range tests {
		got, err := s.NextTimes(tt.name, from, 3)
		if err != nil {
			t.Fatalf("NextTimes(%s) error: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(time.Time.Equal)); diff != "" {
			t.Errorf("NextTimes(%s, %v, 3) (-want,+got):\n%s", tt.name, from, diff)
		}
		if got[0].Location().String() != s.Zone(tt.name) {
			t.Errorf("NextTimes(%s) in %v, want the entry's zone %s", tt.name, got[0].Location(), s.Zone(tt.name))
		}
	}
	if _, err := s.NextTimes("nope", from, 3); err == nil {
		t.Errorf("NextTimes(nope) = nil error, want one")
	}
}

func TestAlignedEveryAgreesAcrossStartTimes(t *testing.T) {
	t.Parallel()
	e := alignedEvery{every: 7 * time.Minute, loc: time.UTC}
	a := e.Next(time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC))
	b := e.Next(time.Date(2026, 1, 1, 0, 3, 59, 999, time.UTC))
	if !a.Equal(b) || a.UnixNano()%int64(7*time.Minute) != 0 {
		t.Errorf("Next from two start times = %v, %v; want the same multiple of 7m since the epoch", a, b)
	}
	if next := e.Next(a); !next.Equal(a.Add(7 * time.Minute)) {
		t.Errorf("Next(%v) = %v, want one interval later", a, next)
	}
}

func TestRunID(t *testing.T) {
	t.Parallel()
	tick := time.Date(2026, 11, 22, 10, 0, 30, 0, mustZone(t, "Europe/Bratislava"))
	for _, tt := range []struct {
		seconds bool
		want    string
	}{{false, "20261122T0900Z"}, {true, "20261122T090030Z"}} {
		if got := runID(tick, tt.seconds); got != tt.want {
			t.Errorf("runID(%v, %v) = %q, want %q", tick, tt.seconds, got, tt.want)
		}
	}
}

func TestEveryBounds(t *testing.T) {
	t.Parallel()
	s, err := parseCron("@every 8784h", "UTC")
	if err != nil {
		t.Fatalf("parseCron(@every 8784h) error: %v", err)
	}
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	next := s.sched.Next(from)
	if !next.After(from) || next.Sub(from) > maxEvery || next.UnixNano()%int64(maxEvery) != 0 {
		t.Errorf("Next(%v) = %v, want the next multiple of 366 days since the epoch", from, next)
	}
	if _, err := parseCron("@every 1000000h", "UTC"); err == nil || !strings.Contains(err.Error(), "at most 8784h0m0s") {
		t.Errorf("parseCron(@every 1000000h) error = %v, want at most 8784h0m0s", err)
	}
}
