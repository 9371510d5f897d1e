package redisconn

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/workers/redistest"
)

func open(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c, err := Open(url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := Ping(t.Context(), c); err != nil {
		t.Fatalf("Ping(%q): %v", url, err)
	}
	return c
}

func TestOpenSingle(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := open(t, srv.URL()+"/3")
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	db3 := redis.NewClient(&redis.Options{Addr: srv.Addr, DB: 3})
	t.Cleanup(func() { _ = db3.Close() })
	if got, err := db3.Get(t.Context(), "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k in db 3 = %q, %v; want the value written through the URL with /3", got, err)
	}
}

func TestOpenWithPassword(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	// redistest pings without a password, so the password is set after start.
	if err := srv.Client(t).ConfigSet(t.Context(), "requirepass", "s3cret-pw").Err(); err != nil {
		t.Fatal(err)
	}
	c := open(t, "redis://:s3cret-pw@"+srv.Addr+"/0")
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Errorf("SET with the right password: %v", err)
	}
	wrong, err := Open("redis://:wrong@" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if err := Ping(t.Context(), wrong); err == nil {
		t.Error("Ping with a wrong password succeeded")
	}
}

func TestPingUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for _, url := range []string{"redis://" + addr + "?dial_timeout=1s", "redis-cluster://" + addr + "?dial_timeout=1s"} {
		c, err := Open(url)
		if err != nil {
			t.Fatal(err)
		}
		if err := Ping(t.Context(), c); err == nil {
			t.Errorf("Ping(%s) = nil, want an error: nothing listens", url)
		}
		c.Close()
	}
}

func TestOpenCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	c := open(t, "redis-cluster://"+strings.Join(cl.Addrs(), ","))
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("Open(redis-cluster://...) = %T, want *redis.ClusterClient", c)
	}
	ctx := t.Context()
	for i := range 50 {
		if err := c.Set(ctx, fmt.Sprintf("key-%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET key-%d: %v", i, err)
		}
	}
	used := 0
	for _, node := range cl.Nodes {
		n, err := node.Client(t).DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			used++
		}
	}
	if used != len(cl.Nodes) {
		t.Errorf("keys landed on %d of %d nodes, want all: the client does not route by slot", used, len(cl.Nodes))
	}
	for i := range 50 {
		if got, err := c.Get(ctx, fmt.Sprintf("key-%d", i)).Int(); err != nil || got != i {
			t.Errorf("GET key-%d = %d, %v; want %d", i, got, err, i)
		}
	}
	checkAsynq(t, c)
}

// checkAsynq enqueues tasks on two queues through c and waits until an
// asynq server on the same client has processed them.
func checkAsynq(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	done := make(chan string, 10)
	srv := asynq.NewServerFromRedisClient(c, asynq.Config{
		Concurrency: 2,
		Queues:      map[string]int{"critical": 2, "default": 1},
		LogLevel:    asynq.ErrorLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:ping", func(ctx context.Context, task *asynq.Task) error {
		done <- string(task.Payload())
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("asynq server start: %v", err)
	}
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(c)
	for _, q := range []string{"critical", "default"} {
		if _, err := client.EnqueueContext(t.Context(), asynq.NewTask("test:ping", []byte(q)), asynq.Queue(q)); err != nil {
			t.Fatalf("enqueue on %s: %v", q, err)
		}
	}
	got := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case q := <-done:
			got[q] = true
		case <-timeout:
			t.Fatalf("asynq processed %v within 30s, want tasks of both queues", got)
		}
	}
}

func TestOpenSentinel(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	sentinel := startSentinel(t, master.Addr, "mymaster")
	c := open(t, fmt.Sprintf("redis-sentinel://%s/mymaster?db=2", sentinel))
	if err := c.Set(t.Context(), "through-sentinel", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(&redis.Options{Addr: master.Addr, DB: 2})
	t.Cleanup(func() { _ = direct.Close() })
	if got, err := direct.Get(t.Context(), "through-sentinel").Result(); err != nil || got != "yes" {
		t.Errorf("GET on the master db 2 = %q, %v; want the value written through Sentinel", got, err)
	}
	checkAsynq(t, c)
}

// startSentinel runs `redis-server <conf> --sentinel` monitoring the master
// at masterAddr and returns the sentinel's address once it knows the master.
func startSentinel(t *testing.T, masterAddr, name string) string {
	t.Helper()
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(masterAddr)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sport := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "sentinel.conf")
	content := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor %s %s %s 1\n",
		sport, dir, filepath.Join(dir, "sentinel.log"), name, host, port)
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sentinel (redis-server --sentinel): %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sport))
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = sc.Close() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		got, err := sc.GetMasterAddrByName(t.Context(), name).Result()
		if err == nil && len(got) == 2 && net.JoinHostPort(got[0], got[1]) == masterAddr {
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
	t.Fatalf("sentinel on %s did not report master %s within 15s; log:\n%s", addr, masterAddr, log)
	return ""
}
