// Package localstack starts a private redis-server and backofficed for the
// load tools (cmd/loadcampaign, cmd/loadwebhook): each on a free loopback
// port, in one directory that holds redis.log, daemon.log and the daemon's
// data and schedules directories, and stops them again.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Stack is a redis-server and a backofficed started in Dir. The zero value
// is not usable; make one with New.
type Stack struct {
	Dir       string // redis.log, daemon.log, data/, schedules/ (and the AOF)
	RedisURL  string // redis://127.0.0.1:port/0, set by StartRedis
	Addr      string // the daemon's host:port, set by StartDaemon
	PublicURL string // http://Addr, set by StartDaemon

	redis, daemon *exec.Cmd
	exited        chan struct{} // closed when the daemon exits
}

// Options says how Start runs the stack.
type Options struct {
	AOF       bool     // redis-server with AOF (appendfsync everysec), as in production
	DaemonBin string   // path of the backofficed binary
	BaseEnv   []string // environment the daemon's settings are added to, e.g. os.Environ()
	Env       []string // the caller's daemon settings, after (so overriding) the stack's own
}

// New returns a stack that will run in dir, which must exist. Nothing is
// started yet.
func New(dir string) *Stack { return &Stack{Dir: dir} }

// SchedulesDir is the daemon's BACKOFFICE_SCHEDULES_DIR.
func (s *Stack) SchedulesDir() string { return filepath.Join(s.Dir, "schedules") }

// Start starts redis-server and then the daemon (see StartRedis and
// StartDaemon). Its errors say that the logs are kept in Dir; the caller
// stops the stack (Stop(true) keeps them).
func (s *Stack) Start(ctx context.Context, o Options) error {
	if err := s.StartRedis(ctx, o.AOF); err != nil {
		return fmt.Errorf("%w (logs kept in %s)", err, s.Dir)
	}
	if err := s.StartDaemon(ctx, o.DaemonBin, o.BaseEnv, o.Env); err != nil {
		return fmt.Errorf("%w (logs kept in %s)", err, s.Dir)
	}
	return nil
}

// StartRedis starts redis-server on a free loopback port, without RDB
// snapshots and with AOF when aof, logging to Dir/redis.log, and waits up to
// 30 s until it accepts connections. Cancelling ctx kills it.
func (s *Stack) StartRedis(ctx context.Context, aof bool) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	appendonly := "no"
	if aof {
		appendonly = "yes"
	}
	s.redis = exec.CommandContext(ctx, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", s.Dir, "--save", "", "--appendonly", appendonly, "--appendfsync", "everysec",
		"--logfile", filepath.Join(s.Dir, "redis.log"))
	if err := s.redis.Start(); err != nil {
		return fmt.Errorf("local: start redis-server (make bench installs it): %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.RedisURL = "redis://" + addr + "/0"
	return WaitFor(30*time.Second, "redis-server at "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// StartDaemon starts bin on a free loopback port with the environment base
// plus BACKOFFICE_REDIS_URL (StartRedis's server), BACKOFFICE_HTTP_ADDR,
// BACKOFFICE_PUBLIC_URL, BACKOFFICE_DATA_DIR (Dir/data) and
// BACKOFFICE_SCHEDULES_DIR (SchedulesDir, made here), then settings. Its
// output goes to Dir/daemon.log. It waits up to 60 s for /readyz to answer
// 200, and fails early when the daemon exits. Cancelling ctx sends SIGTERM.
func (s *Stack) StartDaemon(ctx context.Context, bin string, base, settings []string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.PublicURL = "http://" + s.Addr
	if err := os.MkdirAll(s.SchedulesDir(), 0o755); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	logFile, err := os.Create(filepath.Join(s.Dir, "daemon.log"))
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	env := append([]string(nil), base...)
	env = append(env,
		"BACKOFFICE_REDIS_URL="+s.RedisURL, "BACKOFFICE_HTTP_ADDR="+s.Addr, "BACKOFFICE_PUBLIC_URL="+s.PublicURL,
		"BACKOFFICE_DATA_DIR="+filepath.Join(s.Dir, "data"), "BACKOFFICE_SCHEDULES_DIR="+s.SchedulesDir())
	s.daemon = exec.CommandContext(ctx, bin)
	s.daemon.Env = append(env, settings...)
	s.daemon.Stdout, s.daemon.Stderr = logFile, logFile
	daemon := s.daemon
	daemon.Cancel = func() error { return daemon.Process.Signal(syscall.SIGTERM) }
	if err := daemon.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("local: start %s: %w", bin, err)
	}
	logFile.Close() // the child holds its own descriptor
	exited := make(chan struct{})
	go func() { _ = daemon.Wait(); close(exited) }()
	s.exited = exited
	return WaitFor(60*time.Second, "backofficed at "+s.Addr, func() bool {
		select {
		case <-exited:
			return true // WaitFor sees the exit below
		default:
		}
		resp, err := http.Get(s.PublicURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, exited)
}

// DaemonPID is the process id of the daemon StartDaemon started.
func (s *Stack) DaemonPID() int { return s.daemon.Process.Pid }

// RedisPID is the process id of the redis-server StartRedis started.
func (s *Stack) RedisPID() int { return s.redis.Process.Pid }

// Stop ends the daemon (SIGTERM: a graceful shutdown) and then
// redis-server, each killed if still running after 45 s, and removes Dir
// unless keep. It may be called whatever was started.
func (s *Stack) Stop(keep bool) {
	if s.daemon != nil && s.exited != nil {
		terminate(s.daemon, s.exited)
	}
	if s.redis != nil && s.redis.Process != nil {
		done := make(chan struct{})
		go func() { _ = s.redis.Wait(); close(done) }()
		terminate(s.redis, done)
	}
	if !keep {
		_ = os.RemoveAll(s.Dir)
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

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("local: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor polls ready every 100 ms until it is true or timeout passes; what
// names the thing waited for in the error. A closed exited (optional) means
// the process being waited for has died, which is an error too.
func WaitFor(timeout time.Duration, what string, ready func() bool, exited ...chan struct{}) error {
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
