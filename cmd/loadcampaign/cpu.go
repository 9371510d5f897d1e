package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// 100 on every Linux architecture.
const userHZ = 100

// procCPU parses the user and system CPU time of a process from the text
// of /proc/<pid>/stat (fields 14 and 15, counted after the command name,
// which is in parentheses and may hold spaces).
func procCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("proc stat: no command name in %q", stat)
	}
	fields := strings.Fields(stat[end+1:]) // fields[0] is field 3, the state
	if len(fields) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("proc stat: want clock ticks, got %q", f)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuOf returns the CPU time pid has used so far.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of process %d: %w", pid, err)
	}
	return procCPU(string(b))
}

// selfCPU returns the CPU time this process has used so far (the sink, the
// baseline's go-mail clients, the polling).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuUse is the CPU time each process of a phase used over a span.
type cpuUse struct {
	daemon, redis, tool time.Duration
}

func (c cpuUse) total() time.Duration { return c.daemon + c.redis + c.tool }

// perMessage describes c per message, in microseconds.
func (c cpuUse) perMessage(n int) string {
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(1, n)) }
	return fmt.Sprintf("%.0f µs (daemon %.0f, redis %.0f, this tool %.0f)", us(c.total()), us(c.daemon), us(c.redis), us(c.tool))
}

// cpuMeter samples the CPU time of a phase's daemon, its redis-server and
// this process.
type cpuMeter struct {
	l *local
}

func (m cpuMeter) sample() (cpuUse, error) {
	d, err := cpuOf(m.l.daemonPID())
	if err != nil {
		return cpuUse{}, err
	}
	r, err := cpuOf(m.l.redisPID())
	if err != nil {
		return cpuUse{}, err
	}
	return cpuUse{daemon: d, redis: r, tool: selfCPU()}, nil
}

// since returns the CPU used since before.
func (m cpuMeter) since(before cpuUse) (cpuUse, error) {
	now, err := m.sample()
	if err != nil {
		return cpuUse{}, err
	}
	return cpuUse{daemon: now.daemon - before.daemon, redis: now.redis - before.redis, tool: now.tool - before.tool}, nil
}

// perfRecord runs `perf record` with call graphs on pid into file until
// stop is called (-perf); `perf report -i file` shows where the time went.
func perfRecord(ctx context.Context, file string, pid int, out io.Writer) (stop func(), err error) {
	cmd := exec.CommandContext(ctx, "perf", "record", "-F", "499", "-g", "-o", file, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("-perf: start perf record: %w", err)
	}
	fmt.Fprintf(out, "  perf record -g on process %d into %s\n", pid, file)
	return func() {
		_ = cmd.Process.Signal(os.Interrupt) // perf writes its file on SIGINT
		_ = cmd.Wait()
	}, nil
}
