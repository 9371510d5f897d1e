// Package redistest starts real redis-server processes for tests: each on a
// free loopback port, in its own temp dir, stopped when the test ends. Tests
// that start their own server never share keys with other tests or packages,
// so packages run in parallel.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one running redis-server.
type Server struct {
	Addr string // host:port
	Dir  string // its working directory (AOF, logs)
	cmd  *exec.Cmd
	args []string
}

// URL returns the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Options changes how Start runs the server.
type Options struct {
	AppendOnly bool     // turn on AOF (appendfsync everysec) in the temp dir
	Extra      []string // more redis-server arguments
}

// Start starts a redis-server for t and stops it in t.Cleanup. The test is
// failed, not skipped, when redis-server is missing: `make test` installs it.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH (make test installs it): %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
		s.args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--logfile", filepath.Join(dir, "redis.log"), "--protected-mode", "no"}
		if o.AppendOnly {
			s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "everysec")
		} else {
			s.args = append(s.args, "--appendonly", "no")
		}
		s.args = append(s.args, o.Extra...)
		if lastErr = s.start(bin); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: could not start redis-server: %v", lastErr)
	return nil
}

func (s *Server) start(bin string) error {
	s.cmd = exec.Command(bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server exited at start (%v): %s", err, s.logTail())
		default:
		}
		if pid, err := serverPID(s.Addr); err == nil {
			if pid != s.cmd.Process.Pid {
				// the port was free when picked, but another test's
				// redis-server took it first: ours cannot bind and
				// exits, and that one is not ours to use
				_ = s.cmd.Process.Kill()
				<-exited
				s.cmd = nil
				return fmt.Errorf("port of %s taken by another redis-server (pid %d)", s.Addr, pid)
			}
			go func(c *exec.Cmd) { <-exited }(s.cmd)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = s.cmd.Process.Kill()
	return fmt.Errorf("redis-server did not answer PING within 10s: %s", s.logTail())
}

// Stop kills the server. It is safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ping(s.Addr) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port and dir
// (with AOF on, the data survives), to test behaviour across Redis restarts.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	bin, _ := exec.LookPath("redis-server")
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(bin); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redistest: restart: %v", err)
}

// Client returns a go-redis client on the server, closed in t.Cleanup.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// serverPID asks the redis-server at addr for its process id.
func serverPID(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil || n < 0 {
		return 0, fmt.Errorf("INFO answered %q", strings.TrimSpace(head))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Cluster is a Redis Cluster of several masters on loopback ports.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the node addresses, for redis.ClusterOptions.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// StartCluster starts n (at least 3) cluster-enabled masters, splits the
// 16384 slots among them and waits until the cluster reports ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		n = 3
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		c.Nodes = append(c.Nodes, Start(t, Options{Extra: []string{"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i), "--cluster-node-timeout", "5000"}}))
	}
	ctx := context.Background()
	per := 16384 / n
	for i, node := range c.Nodes {
		cl := node.Client(t)
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		slots := make([]int, 0, hi-lo+1)
		for s := lo; s <= hi; s++ {
			slots = append(slots, s)
		}
		if err := cl.ClusterAddSlots(ctx, slots...).Err(); err != nil {
			t.Fatalf("redistest: cluster addslots on %s: %v", node.Addr, err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(node.Addr)
			p, _ := strconv.Atoi(port)
			if err := c.Nodes[0].Client(t).ClusterMeet(ctx, host, strconv.Itoa(p)).Err(); err != nil {
				t.Fatalf("redistest: cluster meet %s: %v", node.Addr, err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, node := range c.Nodes {
			info, err := node.Client(t).ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				ok = false
				break
			}
		}
		if ok {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redistest: cluster of %d nodes did not reach cluster_state:ok within 30s", n)
	return nil
}
