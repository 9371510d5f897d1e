package schedules

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// spec is a parsed cron expression of one entry.
type spec struct {
	sched cron.Schedule  // stateless: safe for concurrent Next calls
	zone  string         // CRON_TZ of the entry, else its file's timezone
	loc   *time.Location // zone, loaded
	// seconds is true when ticks may fall inside a minute ("@every 30s"):
	// run ids then carry seconds.
	seconds bool
	// key is the expression in its zone: two specs with the same key tick
	// alike (a reload that keeps an entry's cron carries its ticks on).
	key string
}

// parseCron parses expr (five fields, a descriptor such as "@daily" or
// "@every 10m", optionally prefixed by "CRON_TZ=Zone ") in fileZone.
// "@every" ticks are aligned on multiples of the interval since the Unix
// epoch, so that every daemon computes the same ticks.
func parseCron(expr, fileZone string) (spec, error) {
	expr = strings.TrimSpace(expr)
	zone, rest, err := splitZone(expr, fileZone)
	if err != nil {
		return spec{}, err
	}
	sched, err := parseStandard("CRON_TZ=" + zone + " " + rest)
	if err != nil {
		return spec{}, err
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return spec{}, fmt.Errorf("unknown time zone %q", zone)
	}
	s := spec{sched: sched, zone: zone, loc: loc, key: zone + " " + rest}
	if _, ok := sched.(cron.ConstantDelaySchedule); ok {
		every, err := parseEvery(rest)
		if err != nil {
			return spec{}, err
		}
		s.sched = alignedEvery{every: every, loc: loc}
		s.seconds = every%time.Minute != 0
	} else if ss, ok := sched.(*cron.SpecSchedule); ok && fixedTime(rest, ss) {
		s.sched = wallClock{spec: ss, loc: loc}
	}
	if s.sched.Next(time.Now()).IsZero() {
		return spec{}, errors.New("never fires (no matching date within five years)")
	}
	return s, nil
}

// splitZone takes a leading "CRON_TZ=Zone " or "TZ=Zone " off expr.
func splitZone(expr, fileZone string) (zone, rest string, err error) {
	var prefix string
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if strings.HasPrefix(expr, p) {
			prefix = p
		}
	}
	if prefix == "" {
		return fileZone, expr, nil
	}
	zone, rest, _ = strings.Cut(strings.TrimPrefix(expr, prefix), " ")
	rest = strings.TrimSpace(rest)
	switch {
	case zone == "":
		return "", "", fmt.Errorf("%s needs a zone name, e.g. %sEurope/Prague 0 9 * * *", prefix, prefix)
	case rest == "":
		return "", "", fmt.Errorf("%s%s needs a schedule after it, e.g. %s%s 0 9 * * *", prefix, zone, prefix, zone)
	}
	if err := checkZone(zone); err != nil {
		return "", "", fmt.Errorf("%s: %w", prefix[:len(prefix)-1], err)
	}
	return zone, rest, nil
}

// checkZone accepts IANA zone names. "Local" is refused: daemons on hosts in
// different zones would disagree on the ticks.
func checkZone(zone string) error {
	if zone == "" || zone == "Local" {
		return fmt.Errorf("must be an IANA zone such as Europe/Bratislava, got %q", zone)
	}
	if _, err := time.LoadLocation(zone); err != nil {
		return fmt.Errorf("unknown time zone %q", zone)
	}
	return nil
}

// parseStandard runs robfig/cron's standard parser (five fields and
// descriptors), turning its panics (it panics on some malformed CRON_TZ
// prefixes) into errors.
func parseStandard(expr string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("malformed spec %q", expr)
		}
	}()
	return cron.ParseStandard(expr)
}

// maxEvery is the longest "@every" interval: 366 days. Longer ones would
// overflow alignedEvery's arithmetic (and fire years apart).
const maxEvery = 366 * 24 * time.Hour

// parseEvery parses the interval of "@every 10m". It must be a whole number
// of seconds, at least one, at most maxEvery.
func parseEvery(descriptor string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(descriptor, "@every")))
	switch {
	case err != nil:
		return 0, fmt.Errorf("@every: %w", err)
	case d < time.Second || d%time.Second != 0:
		return 0, fmt.Errorf("@every needs a whole number of seconds, at least 1s, got %s", d)
	case d > maxEvery:
		return 0, fmt.Errorf("@every takes at most %s (366 days), got %s", maxEvery, d)
	}
	return d, nil
}

// starBit is robfig/cron's mark of a field written "*" or "?".
const starBit = 1 << 63

// fixedTime reports whether the cron expression rest (without its CRON_TZ)
// fires at fixed wall-clock times: neither its minute nor its hour field is
// written with "*" ("*", "*/15") nor covers every value ("0-23"), as in
// Vixie cron. "@daily", "@weekly", "@monthly" and "@yearly" are fixed;
// "@hourly" is not.
func fixedTime(rest string, ss *cron.SpecSchedule) bool {
	if strings.HasPrefix(rest, "@") {
		return ss.Hour&starBit == 0 && ss.Hour != all(0, 23)
	}
	fields := strings.Fields(rest)
	if len(fields) < 2 {
		return false
	}
	for i, f := range fields[:2] {
		if strings.HasPrefix(f, "*") || strings.HasPrefix(f, "?") {
			return false
		}
		bits, full := ss.Minute, all(0, 59)
		if i == 1 {
			bits, full = ss.Hour, all(0, 23)
		}
		if bits&^starBit == full {
			return false
		}
	}
	return true
}

// all returns the bits lo..hi set.
func all(lo, hi uint) uint64 { return (1<<(hi+1) - 1) &^ (1<<lo - 1) }

// wallClock is the schedule of a fixed-time entry (see fixedTime), with
// Vixie cron's rule for daylight-saving changes: a wall-clock time that
// repeats because the clocks went back fires only the first time, and a
// wall-clock time the clocks skip going forward fires once, at the end of
// the gap (the first instant after it, 03:00 CEST for 02:30 in Prague).
// Next depends on its argument only, so every daemon computes the same
// ticks.
type wallClock struct {
	spec *cron.SpecSchedule
	loc  *time.Location
}

// Next implements cron.Schedule.
func (w wallClock) Next(t time.Time) time.Time {
	next := w.nextFirst(t)
	limit := next
	if next.IsZero() {
		limit = t.AddDate(5, 0, 0)
	}
	// A gap (clocks going forward) between t and next in which the spec
	// matches a wall-clock time fires at the gap's end.
	for cur := t; ; {
		_, end := cur.In(w.loc).ZoneBounds()
		if end.IsZero() || end.After(limit) || !end.After(cur) {
			break
		}
		if w.gapMatches(end) {
			return end.In(t.Location())
		}
		cur = end
	}
	return next
}

// nextFirst returns the spec's next tick after t, skipping the second
// occurrence of wall-clock times repeated when the clocks went back.
func (w wallClock) nextFirst(t time.Time) time.Time {
	for i := 0; i < 100000; i++ {
		next := w.spec.Next(t)
		if next.IsZero() || !w.repeated(next) {
			return next
		}
		t = next
	}
	return time.Time{}
}

// repeated reports whether the wall-clock time of instant t already
// occurred earlier, before the clocks went back.
func (w wallClock) repeated(t time.Time) bool {
	t = t.In(w.loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, before := start.Add(-time.Nanosecond).Zone()
	_, after := t.Zone()
	return before > after && t.Before(start.Add(time.Duration(before-after)*time.Second))
}

// gapMatches reports whether the clocks go forward at instant end and the
// spec matches a wall-clock time (a whole minute) they skip.
func (w wallClock) gapMatches(end time.Time) bool {
	_, before := end.Add(-time.Nanosecond).In(w.loc).Zone()
	_, after := end.In(w.loc).Zone()
	if after <= before {
		return false
	}
	// The skipped wall-clock times, written as UTC times.
	from := end.Add(time.Duration(before) * time.Second).UTC()
	to := end.Add(time.Duration(after) * time.Second).UTC()
	for m := from.Add(time.Minute - time.Nanosecond).Truncate(time.Minute); m.Before(to); m = m.Add(time.Minute) {
		if w.matches(m) {
			return true
		}
	}
	return false
}

// matches reports whether the spec matches the wall-clock minute m (fields
// read as they are, whatever m's location).
func (w wallClock) matches(m time.Time) bool {
	s := w.spec
	if s.Month&(1<<uint(m.Month())) == 0 || s.Hour&(1<<uint(m.Hour())) == 0 || s.Minute&(1<<uint(m.Minute())) == 0 {
		return false
	}
	dom := s.Dom&(1<<uint(m.Day())) != 0
	dow := s.Dow&(1<<uint(m.Weekday())) != 0
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// alignedEvery fires on every multiple of its interval since the Unix
// epoch, unlike cron.Every which counts from when the entry was added.
type alignedEvery struct {
	every time.Duration
	loc   *time.Location
}

// Next implements cron.Schedule.
func (e alignedEvery) Next(t time.Time) time.Time {
	d := int64(e.every)
	n := t.UnixNano()
	k := n / d
	if n < 0 && n%d != 0 {
		k-- // floor division before the epoch
	}
	return time.Unix(0, (k+1)*d).In(e.loc)
}

// runID names the run of a tick: its UTC time, "20261122T0900Z", with
// seconds ("20261122T090030Z") when the entry ticks inside minutes.
func runID(tick time.Time, seconds bool) string {
	if seconds {
		return tick.UTC().Format("20060102T150405Z")
	}
	return tick.UTC().Format("20060102T1504Z")
}
