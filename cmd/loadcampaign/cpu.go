package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/localstack"
)

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
	d, err := localstack.CPUOf(m.l.daemonPID())
	if err != nil {
		return cpuUse{}, err
	}
	r, err := localstack.CPUOf(m.l.redisPID())
	if err != nil {
		return cpuUse{}, err
	}
	return cpuUse{daemon: d, redis: r, tool: localstack.SelfCPU()}, nil
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
