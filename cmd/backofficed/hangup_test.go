package main_test

import (
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/redistest"
)

// TestHangupDuringShutdownDoesNotKill sends SIGHUP while the daemon waits
// for a task in flight on shutdown (a campaign test mail to a relay that
// never answers), after the scheduler, which reloads on SIGHUP, has
// stopped. SIGHUP's default action ends the process: the task would be
// neither finished nor put back, and the rest of the shutdown skipped. The
// README says SIGHUP does not stop anything; the shutdown must run to its
// end.
func TestHangupDuringShutdownDoesNotKill(t *testing.T) {
	t.Parallel()
	relay, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := relay.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close() // never greets: the sender waits
		}
	}()
	bin := buildBinaries(t)
	d := startDaemonEnv(t, bin, daemonEnv(t, redistest.Start(t).URL(), map[string]string{
		"BACKOFFICE_SHUTDOWN_TIMEOUT": "3s",
		"BACKOFFICE_SMTP_URL":         "smtp://" + relay.Addr().String() + "?tls=none",
	}))
	body := `{"campaign":{"name":"hup","channel":"email","template":"welcome","audience":{"tags":["new"]},
		"rate_per_second":10,"timezone":"Europe/Bratislava"},"to":"ops@example.com"}`
	req, err := http.NewRequest(http.MethodPost, d.url+"/api/jobs/campaign:test", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eOperator)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs/campaign:test = %d, want 202", resp.StatusCode)
	}
	waitUntil(t, 10*time.Second, "the test mail at the relay", func() bool { return accepted.Load() > 0 })

	d.once.Do(func() {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		waitUntil(t, 10*time.Second, "shutting down logged", func() bool {
			return strings.Contains(d.logs.String(), `"msg":"shutting down"`)
		})
		time.Sleep(500 * time.Millisecond) // HTTP and the scheduler are stopped by now
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
		select {
		case err := <-d.exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					t.Fatalf("backofficed was killed by %v during its shutdown", ws.Signal())
				}
			}
		case <-time.After(30 * time.Second):
			t.Fatal("backofficed did not exit within 30s of SIGTERM")
		}
	})
	if !strings.Contains(d.logs.String(), `"msg":"stopped"`) {
		t.Errorf("backofficed did not finish its shutdown (no \"stopped\" record)")
	}
}
