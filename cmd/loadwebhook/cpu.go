package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/localstack"
)

// cpuMeter reads the CPU time used so far by this process, by the whole
// machine and, when the run started them (-daemon), by the daemon and its
// redis-server.
type cpuMeter struct {
	daemonPID, redisPID int                   // 0: an external daemon, not measured
	processed           func() (int64, error) // tasks the daemon's workers have processed so far; nil: unknown
}

// cpuSample is the CPU time used up to a moment.
type cpuSample struct {
	at                  time.Time
	tool, daemon, redis time.Duration
	machine             time.Duration // every core's time not idle, all processes
	tasks               int64         // processed, -1: unknown
	err                 error         // reading the daemon's or redis-server's failed
}

func (m cpuMeter) sample() cpuSample {
	s := cpuSample{at: time.Now(), tool: localstack.SelfCPU(), tasks: -1}
	s.machine, _ = machineCPU() // 0 without /proc/stat: reported as unknown
	if m.daemonPID != 0 {
		if s.daemon, s.err = localstack.CPUOf(m.daemonPID); s.err == nil {
			s.redis, s.err = localstack.CPUOf(m.redisPID)
		}
	}
	if m.processed != nil {
		if n, err := m.processed(); err == nil {
			s.tasks = n
		}
	}
	return s
}

// cpuUse is the CPU time used over a span of wall time.
type cpuUse struct {
	wall, tool, daemon, redis time.Duration
	machine                   time.Duration // 0: unknown
	tasks                     int64         // processed by the daemon meanwhile, -1: unknown
	local                     bool          // daemon and redis were measured
	err                       error         // they could not be
}

// since returns the CPU used from before until now.
func (m cpuMeter) since(before cpuSample) cpuUse {
	now := m.sample()
	u := cpuUse{wall: now.at.Sub(before.at), tool: now.tool - before.tool, local: m.daemonPID != 0,
		daemon: now.daemon - before.daemon, redis: now.redis - before.redis, tasks: -1, err: errors.Join(before.err, now.err)}
	if before.machine > 0 && now.machine > 0 {
		u.machine = now.machine - before.machine
	}
	if before.tasks >= 0 && now.tasks >= 0 {
		u.tasks = now.tasks - before.tasks
	}
	return u
}

// line describes u per unit of work (n of them, e.g. "request"):
//
//	CPU per request: 180 µs (daemon 120, redis 35, this tool 25 = 14%); cores busy 1.80 of 2 (all processes 1.98)
func (u cpuUse) line(unit string, n int) string {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(max(1, n)) }
	cores := func(d time.Duration) float64 { return d.Seconds() / max(u.wall.Seconds(), 1e-9) }
	machine := "unknown"
	if u.machine > 0 {
		machine = fmt.Sprintf("%.2f", cores(u.machine))
	}
	total := u.tool + u.daemon + u.redis
	switch {
	case u.err != nil:
		return fmt.Sprintf("CPU per %s: this tool %.0f µs; daemon and redis-server unknown (%v)", unit, us(u.tool), u.err)
	case !u.local:
		return fmt.Sprintf("CPU per %s: this tool %.0f µs (the daemon's is not measured: not started here); this tool kept %.2f cores busy of %d (all processes %s)",
			unit, us(u.tool), cores(u.tool), runtime.NumCPU(), machine)
	}
	return fmt.Sprintf("CPU per %s: %.0f µs (daemon %.0f, redis %.0f, this tool %.0f = %.0f%%); cores busy %.2f of %d (all processes %s)",
		unit, us(total), us(u.daemon), us(u.redis), us(u.tool), 100*u.tool.Seconds()/max(total.Seconds(), 1e-9),
		cores(total), runtime.NumCPU(), machine)
}

// machineCPU returns the time all cores have spent not idle since boot,
// from the first line of /proc/stat: user, nice, system, irq, softirq and
// steal (guest time is counted in user).
func machineCPU() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return 0, fmt.Errorf("/proc/stat: %w", err)
	}
	return parseMachineCPU(line)
}

// parseMachineCPU parses the "cpu" line of /proc/stat.
func parseMachineCPU(line []byte) (time.Duration, error) {
	fields := bytes.Fields(line)
	if len(fields) < 9 || string(fields[0]) != "cpu" {
		return 0, fmt.Errorf("/proc/stat: want the cpu line with 8 counters, got %q", line)
	}
	var ticks int64
	for i, f := range fields[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("/proc/stat: want clock ticks, got %q", f)
		}
		if i != 3 && i != 4 { // idle, iowait
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ
}
