package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/localstack"
)

func TestCPULine(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	cores := runtime.NumCPU()
	for _, tc := range []struct {
		use  cpuUse
		want string
	}{
		{cpuUse{wall: time.Second, tool: 250 * ms, daemon: 1200 * ms, redis: 350 * ms, machine: 1980 * ms, local: true},
			fmt.Sprintf("CPU per request: 180 µs (daemon 120, redis 35, this tool 25 = 14%%); cores busy 1.80 of %d (all processes 1.98)", cores)},
		{cpuUse{wall: 2 * time.Second, tool: 500 * ms},
			fmt.Sprintf("CPU per request: this tool 50 µs (the daemon's is not measured: not started here); this tool kept 0.25 cores busy of %d (all processes unknown)", cores)},
		{cpuUse{wall: time.Second, tool: 100 * ms, local: true, err: errors.New("cpu of process 7: gone")},
			"CPU per request: this tool 10 µs; daemon and redis-server unknown (cpu of process 7: gone)"},
	} {
		if got := tc.use.line("request", 10_000); got != tc.want {
			t.Errorf("%+v.line = %q, want %q", tc.use, got, tc.want)
		}
	}
}

// TestCPUMeter measures this process in the places of the daemon and
// redis-server: all readings grow over a spin, the machine's too.
func TestCPUMeter(t *testing.T) {
	t.Parallel()
	tasks := int64(40)
	m := cpuMeter{daemonPID: os.Getpid(), redisPID: os.Getpid(), processed: func() (int64, error) { tasks += 2; return tasks, nil }}
	before := m.sample()
	for localstack.SelfCPU()-before.tool < 50*time.Millisecond { // 5 ticks of /proc at least
	}
	u := m.since(before)
	if u.err != nil || !u.local || u.wall <= 0 || u.tool <= 0 || u.daemon <= 0 || u.redis <= 0 || u.machine <= 0 || u.tasks != 2 {
		t.Errorf("since = %+v, want CPU of all three and of the machine over a positive span, and 2 tasks", u)
	}
	failing := cpuMeter{daemonPID: -1, redisPID: -1, processed: func() (int64, error) { return 0, errors.New("no queue") }}
	if u := failing.since(failing.sample()); u.err == nil || u.tasks != -1 {
		t.Errorf("a meter of no process and no queue: since = %+v, want an error and tasks unknown", u)
	}
}

func TestParseMachineCPU(t *testing.T) {
	t.Parallel()
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseMachineCPU([]byte("cpu  260005 7 65761 83685 1478 3 15609 4576 10 0\n"))
	if want := time.Duration(260005+7+65761+3+15609+4576) * 10 * time.Millisecond; err != nil || got != want {
		t.Errorf("parseMachineCPU = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8", ""} {
		if _, err := parseMachineCPU([]byte(bad)); err == nil {
			t.Errorf("parseMachineCPU(%q): want an error", bad)
		}
	}
}
