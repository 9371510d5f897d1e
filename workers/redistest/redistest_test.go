package redistest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartSetGet(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := s.Client(t)
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(t.Context(), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v; want \"v\", nil", got, err)
	}
}

func TestRestartKeepsAOFData(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{AppendOnly: true})
	c := s.Client(t)
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := c.Do(t.Context(), "BGREWRITEAOF").Err(); err != nil {
		t.Fatalf("BGREWRITEAOF: %v", err)
	}
	// appendfsync everysec: force the write out before the kill.
	if err := c.Do(t.Context(), "CONFIG", "SET", "appendfsync", "always").Err(); err != nil {
		t.Fatalf("CONFIG SET: %v", err)
	}
	if err := c.Set(t.Context(), "k2", "v2", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Restart(t)
	if got, err := c.Get(t.Context(), "k2").Result(); err != nil || got != "v2" {
		t.Fatalf("after restart GET k2 = %q, %v; want \"v2\", nil", got, err)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	cl := StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	defer c.Close()
	for _, k := range []string{"a", "b", "c", "d", "{x}1", "{x}2"} {
		if err := c.Set(t.Context(), k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s on cluster: %v", k, err)
		}
	}
	if n, err := c.DBSize(t.Context()).Result(); err != nil || n != 6 {
		t.Fatalf("DBSIZE over cluster = %d, %v; want 6", n, err)
	}
}

// A server whose port another test's redis-server took between the pick
// and the start must not pass for ours: it would be stopped under us.
func TestStartRefusesAnotherServersPort(t *testing.T) {
	t.Parallel()
	other := Start(t)
	_, port, _ := strings.Cut(other.Addr, ":")
	s := &Server{Addr: other.Addr, Dir: t.TempDir()}
	s.args = []string{"--port", port, "--bind", "127.0.0.1", "--dir", s.Dir, "--save", "", "--appendonly", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log")}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	err = s.start(bin)
	if err == nil {
		s.Stop()
		t.Fatal("start on a port another redis-server holds succeeded")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "taken by another redis-server") && !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("start: %v; want the port named as taken", err)
	}
	if pid, err := serverPID(other.Addr); err != nil || pid != other.cmd.Process.Pid {
		t.Fatalf("the other server after the refused start: pid %d, %v", pid, err)
	}
}
