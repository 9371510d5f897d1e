package localstack

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestStartRedis starts a redis-server through the package, writes and
// reads a key, and checks that Stop ends it and removes the directory.
func TestStartRedis(t *testing.T) {
	t.Parallel()
	for _, aof := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "stack")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := New(dir)
		if err := s.StartRedis(context.Background(), aof); err != nil {
			s.Stop(true)
			t.Fatalf("StartRedis(aof %v): %v", aof, err)
		}
		opts, err := redis.ParseURL(s.RedisURL)
		if err != nil {
			s.Stop(true)
			t.Fatalf("RedisURL %q: %v", s.RedisURL, err)
		}
		rdb := redis.NewClient(opts)
		ctx := context.Background()
		if err := rdb.Set(ctx, "localstack", "ok", 0).Err(); err != nil {
			t.Errorf("aof %v: SET: %v", aof, err)
		}
		if got, err := rdb.Get(ctx, "localstack").Result(); err != nil || got != "ok" {
			t.Errorf("aof %v: GET = %q, %v; want \"ok\"", aof, got, err)
		}
		if got, err := rdb.ConfigGet(ctx, "appendonly").Result(); err != nil || got["appendonly"] != map[bool]string{true: "yes", false: "no"}[aof] {
			t.Errorf("aof %v: CONFIG GET appendonly = %v, %v", aof, got, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "redis.log")); err != nil {
			t.Errorf("aof %v: redis.log: %v", aof, err)
		}
		rdb.Close()
		if s.RedisPID() <= 0 {
			t.Errorf("aof %v: RedisPID() = %d", aof, s.RedisPID())
		}
		s.Stop(false)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("aof %v: after Stop(false), stat %s: %v; want it removed", aof, dir, err)
		}
		if c, err := net.DialTimeout("tcp", opts.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("aof %v: redis-server at %s still accepts connections after Stop", aof, opts.Addr)
		}
	}
}

// TestStopKeep checks that Stop(true) leaves the directory (the logs).
func TestStopKeep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := New(dir)
	if err := s.StartRedis(context.Background(), false); err != nil {
		s.Stop(true)
		t.Fatal(err)
	}
	s.Stop(true)
	if _, err := os.Stat(filepath.Join(dir, "redis.log")); err != nil {
		t.Errorf("after Stop(true): %v; want redis.log kept", err)
	}
}

// TestStartDaemonExits checks that a daemon that exits at start-up is an
// error that points at daemon.log and says the logs are kept, and that
// daemon.log holds its output.
func TestStartDaemonExits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-daemon")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho \"no redis: $BACKOFFICE_REDIS_URL $BENCH_SETTING\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(dir)
	err := s.Start(context.Background(), Options{DaemonBin: bin, BaseEnv: []string{"PATH=" + os.Getenv("PATH")}, Env: []string{"BENCH_SETTING=x1"}})
	s.Stop(true)
	if err == nil || !strings.Contains(err.Error(), "exited at start-up; see daemon.log") || !strings.Contains(err.Error(), "(logs kept in "+dir+")") {
		t.Fatalf("Start with a daemon that exits = %v; want an exit at start-up, logs kept in %s", err, dir)
	}
	log, err := os.ReadFile(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "no redis: " + s.RedisURL + " x1\n"; string(log) != want {
		t.Errorf("daemon.log = %q, want %q", log, want)
	}
	if fi, err := os.Stat(s.SchedulesDir()); err != nil || !fi.IsDir() {
		t.Errorf("schedules dir: %v; want it made", err)
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort() = %d, want a port", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on FreePort() = %d: %v", port, err)
	}
	ln.Close()
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	err := WaitFor(200*time.Millisecond, "thing", func() bool { return false })
	if err == nil || err.Error() != "local: thing not ready within 200ms" {
		t.Errorf("WaitFor(never ready) = %v, want \"local: thing not ready within 200ms\"", err)
	}
	n := 0
	if err := WaitFor(time.Minute, "thing", func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Errorf("WaitFor(ready on the 3rd poll) = %v after %d polls, want nil after 3", err, n)
	}
	exited := make(chan struct{})
	close(exited)
	err = WaitFor(time.Minute, "thing", func() bool { return true }, exited)
	if err == nil || err.Error() != "local: thing exited at start-up; see daemon.log" {
		t.Errorf("WaitFor(exited) = %v, want an exit at start-up", err)
	}
}
