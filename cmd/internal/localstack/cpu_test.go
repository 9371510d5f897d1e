package localstack

import (
	"os"
	"testing"
	"time"
)

func TestProcCPU(t *testing.T) {
	t.Parallel()
	stat := "4242 (back office d) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 12 0 1000 1300000000 9000 18446744073709551615"
	if got, err := ProcCPU(stat); err != nil || got != 3*time.Second {
		t.Errorf("ProcCPU(utime 250, stime 50 ticks) = %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{"4242 (short) S 1 2", "no command name", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 1 0"} {
		if got, err := ProcCPU(bad); err == nil {
			t.Errorf("ProcCPU(%q) = %v, want an error", bad, got)
		}
	}
}

// TestCPUOfSelf checks that the /proc reading and getrusage agree about
// this process, within the 10 ms tick of /proc and the CPU burnt between
// the two readings.
func TestCPUOfSelf(t *testing.T) {
	t.Parallel()
	for start := SelfCPU(); SelfCPU()-start < 50*time.Millisecond; { // use some CPU so neither reads 0
	}
	before := SelfCPU()
	got, err := CPUOf(os.Getpid())
	after := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	if before <= 0 || got < before-20*time.Millisecond || got > after+20*time.Millisecond {
		t.Errorf("CPUOf(self) = %v, SelfCPU %v before and %v after; want them within a tick or two", got, before, after)
	}
	if _, err := CPUOf(-1); err == nil {
		t.Error("CPUOf(-1): want an error")
	}
}
