package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/workers/campaigns"
)

// deliveries is the check of what a server accepted against an audience:
// every recipient exactly once, or recorded as failed in the run's ledger.
type deliveries struct {
	recipients int // the audience
	once       int // accepted exactly once
	duplicated int // accepted more than once
	failed     int // never accepted, recorded as failed in the ledger
	unsent     int // never accepted, still pending in a run cut short by a timeout
	lost       int // never accepted, neither failed nor left pending by a cut run
	extra      int // messages to addresses outside the audience
	messages   int // messages accepted in all
}

// ok reports whether nothing was lost, duplicated or sent elsewhere.
func (d deliveries) ok() bool { return d.duplicated == 0 && d.lost == 0 && d.extra == 0 }

func (d deliveries) String() string {
	s := fmt.Sprintf("%d messages for %d recipients: %d once, %d duplicated, %d lost", d.messages, d.recipients, d.once, d.duplicated, d.lost)
	if d.failed > 0 {
		s += fmt.Sprintf(", %d recorded as failed", d.failed)
	}
	if d.unsent > 0 {
		s += fmt.Sprintf(", %d still pending when the run was cancelled", d.unsent)
	}
	if d.extra > 0 {
		s += fmt.Sprintf(", %d to addresses outside the audience", d.extra)
	}
	return s
}

// checkDeliveries compares got (address -> messages accepted for it) with
// the audience addr(0..n-1). ledger holds the run's ledger state of each
// recipient (nil when not read): a recipient recorded as failed is not
// lost, nor, when the run was cut (cancelled at a timeout), one still
// pending or sending.
func checkDeliveries(n int, addr func(int) string, got map[string]int, ledger map[string]campaigns.EntryState, cut bool) deliveries {
	d := deliveries{recipients: n}
	toAudience := 0
	for i := range n {
		a := addr(i)
		c := got[a]
		toAudience += c
		state := ledger[a]
		switch {
		case c == 1:
			d.once++
		case c > 1:
			d.duplicated++
		case state == campaigns.EntryFailed:
			d.failed++
		case cut && (state == campaigns.EntryPending || state == campaigns.EntrySending):
			d.unsent++
		default:
			d.lost++
		}
	}
	for _, c := range got {
		d.messages += c
	}
	d.extra = d.messages - toAudience
	return d
}

// rateBetween is the achieved rate of n events from first to last: n
// divided by the time between them (0 when there is no interval).
func rateBetween(n int, first, last time.Time) float64 {
	d := last.Sub(first)
	if n < 2 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// procStatusField reads a "kB" field such as VmHWM or VmRSS from the text
// of /proc/<pid>/status, in bytes.
func procStatusField(status, field string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil || unit != "kB" || kb < 0 {
			return 0, fmt.Errorf("proc status: %s: want <n> kB, got %q", field, strings.TrimSpace(v))
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("proc status: no %s field", field)
}

// processMemory returns VmHWM (peak resident set) and VmRSS of pid, in bytes.
func processMemory(pid int) (peak, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("memory of process %d: %w", pid, err)
	}
	if peak, err = procStatusField(string(b), "VmHWM"); err == nil {
		rss, err = procStatusField(string(b), "VmRSS")
	}
	return peak, rss, err
}

// infoField reads an integer field such as used_memory from the text of
// Redis INFO.
func infoField(info, field string) (int64, error) {
	for _, line := range strings.Split(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), field+":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redis info: %s: want an integer, got %q", field, v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("redis info: no %s field", field)
}

// commandStats is Redis's count of calls and time by command (INFO
// commandstats); a script's time counts for evalsha and again for the
// commands it runs.
type commandStats map[string]commandStat

type commandStat struct{ calls, usec int64 }

// redisCommands reads the calls of every command so far.
func redisCommands(ctx context.Context, rdb redis.UniversalClient) (commandStats, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("redis info commandstats: %w", err)
	}
	return parseCommandStats(info), nil
}

// parseCommandStats parses lines like "cmdstat_evalsha:calls=12,usec=80,...".
func parseCommandStats(info string) commandStats {
	out := commandStats{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var st commandStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil:
			case k == "calls":
				st.calls = n
			case k == "usec":
				st.usec = n
			}
		}
		out[name] = st
	}
	return out
}

// perMessage describes the commands run since before, per message: the
// total and the five most called (those run by scripts count too), then
// the three that took the most time (a script's time includes the
// commands it ran, which also appear on their own).
func (s commandStats) perMessage(before commandStats, n int) string {
	type c struct {
		name        string
		calls, usec int64
	}
	var all []c
	var calls int64
	for name, st := range s {
		d := c{name, st.calls - before[name].calls, st.usec - before[name].usec}
		if d.calls <= 0 || name == "info" {
			continue
		}
		all = append(all, d)
		calls += d.calls
	}
	per := func(v int64) float64 { return float64(v) / float64(max(1, n)) }
	top := func(by func(c) int64, k int, format string) string {
		slices.SortFunc(all, func(a, b c) int { return cmp.Compare(by(b), by(a)) })
		parts := make([]string, 0, k)
		for _, x := range all[:min(k, len(all))] {
			parts = append(parts, fmt.Sprintf(format, x.name, per(by(x))))
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%.2f (%s); time: %s", per(calls), top(func(x c) int64 { return x.calls }, 5, "%s %.2f"),
		top(func(x c) int64 { return x.usec }, 3, "%s %.1f µs"))
}
