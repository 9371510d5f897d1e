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
	s := spec{sched: sched, zone: zone, loc: loc}
	if _, ok := sched.(cron.ConstantDelaySchedule); ok {
		every, err := parseEvery(rest)
		if err != nil {
			return spec{}, err
		}
		s.sched = alignedEvery{every: every, loc: loc}
		s.seconds = every%time.Minute != 0
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

// parseEvery parses the interval of "@every 10m". It must be a whole number
// of seconds, at least one.
func parseEvery(descriptor string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(descriptor, "@every")))
	switch {
	case err != nil:
		return 0, fmt.Errorf("@every: %w", err)
	case d < time.Second || d%time.Second != 0:
		return 0, fmt.Errorf("@every needs a whole number of seconds, at least 1s, got %s", d)
	}
	return d, nil
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
