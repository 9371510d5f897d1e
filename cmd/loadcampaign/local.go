package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// local is a private redis-server and backofficed started for one phase,
// in a temporary directory that also holds the phase's audience and
// schedule files. It is removed afterwards (kept when the phase failed,
// for its logs).
type local struct {
	dir           string
	redis, daemon *exec.Cmd
	redisURL      string
	publicURL     string
	token         string        // operator API token
	unsubSecret   string        // BACKOFFICE_UNSUBSCRIBE_SECRET
	exited        chan struct{} // closed when the daemon exits
}

// newLocal makes the temporary directory (with its schedules
// subdirectory) and the secrets; start starts the servers.
func newLocal(phase string) (*local, error) {
	dir, err := os.MkdirTemp("", "loadcampaign-"+phase+"-")
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	l := &local{dir: dir, token: randomHex(16), unsubSecret: randomHex(16)}
	if err := os.MkdirAll(l.schedulesDir(), 0o755); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return l, nil
}

func (l *local) schedulesDir() string { return filepath.Join(l.dir, "schedules") }

// start starts redis-server (with aof, AOF on as in production) and the
// daemon binary with env added to its settings, on free loopback ports,
// and waits until the daemon is ready.
func (l *local) start(ctx context.Context, daemonBin string, aof bool, env []string) error {
	if err := l.startRedis(ctx, aof); err != nil {
		return fmt.Errorf("%w (logs kept in %s)", err, l.dir)
	}
	if err := l.startDaemon(ctx, daemonBin, env); err != nil {
		return fmt.Errorf("%w (logs kept in %s)", err, l.dir)
	}
	return nil
}

func (l *local) startRedis(ctx context.Context, aof bool) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	appendonly := "no"
	if aof {
		appendonly = "yes"
	}
	l.redis = exec.CommandContext(ctx, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", l.dir, "--save", "", "--appendonly", appendonly, "--appendfsync", "everysec",
		"--logfile", filepath.Join(l.dir, "redis.log"))
	if err := l.redis.Start(); err != nil {
		return fmt.Errorf("local: start redis-server (make bench installs it): %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l.redisURL = "redis://" + addr + "/0"
	return waitFor(30*time.Second, "redis-server at "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// daemonEnv is the environment of the daemon: this process's, without any
// BACKOFFICE_* setting (a relay or Twilio account configured in the shell
// must never receive bench traffic), plus the phase's settings.
func daemonEnv(base, settings []string) []string {
	var env []string
	for _, kv := range base {
		if !strings.HasPrefix(kv, "BACKOFFICE_") {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

func (l *local) startDaemon(ctx context.Context, bin string, extra []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l.publicURL = "http://" + addr
	logFile, err := os.Create(filepath.Join(l.dir, "daemon.log"))
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	l.daemon = exec.CommandContext(ctx, bin)
	l.daemon.Env = daemonEnv(os.Environ(), append([]string{
		"BACKOFFICE_REDIS_URL=" + l.redisURL, "BACKOFFICE_HTTP_ADDR=" + addr, "BACKOFFICE_PUBLIC_URL=" + l.publicURL,
		"BACKOFFICE_DATA_DIR=" + filepath.Join(l.dir, "data"), "BACKOFFICE_SCHEDULES_DIR=" + l.schedulesDir(),
		"BACKOFFICE_API_TOKENS=bench:operator:" + l.token, "BACKOFFICE_UNSUBSCRIBE_SECRET=" + l.unsubSecret,
	}, extra...))
	l.daemon.Stdout, l.daemon.Stderr = logFile, logFile
	l.daemon.Cancel = func() error { return l.daemon.Process.Signal(syscall.SIGTERM) }
	if err := l.daemon.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("local: start %s: %w", bin, err)
	}
	logFile.Close() // the child holds its own descriptor
	exited := make(chan struct{})
	go func() { _ = l.daemon.Wait(); close(exited) }()
	l.exited = exited
	return waitFor(60*time.Second, "backofficed at "+addr, func() bool {
		select {
		case <-exited:
			return true // waitFor's caller sees the exit below
		default:
		}
		resp, err := http.Get(l.publicURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, exited)
}

// daemonPID is the process id of the running daemon.
func (l *local) daemonPID() int { return l.daemon.Process.Pid }

// stop ends the daemon (SIGTERM: a graceful shutdown) and then redis-server,
// and removes the directory unless keep.
func (l *local) stop(keep bool) {
	if l.daemon != nil && l.exited != nil {
		terminate(l.daemon, l.exited)
	}
	if l.redis != nil && l.redis.Process != nil {
		done := make(chan struct{})
		go func() { _ = l.redis.Wait(); close(done) }()
		terminate(l.redis, done)
	}
	if !keep {
		_ = os.RemoveAll(l.dir)
	}
}

// terminate sends c SIGTERM (a graceful shutdown) and kills it if it has
// not exited, as done reports, within 45 seconds.
func terminate(c *exec.Cmd, done <-chan struct{}) {
	_ = c.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("local: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls ready until it is true or timeout passes; a closed exited
// (optional) means the process being waited for has died.
func waitFor(timeout time.Duration, what string, ready func() bool, exited ...chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		if time.Now().After(deadline) {
			return errors.New("local: " + what + " not ready within " + timeout.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, e := range exited {
		select {
		case <-e:
			return errors.New("local: " + what + " exited at start-up; see daemon.log")
		default:
		}
	}
	return nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
