package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shopworks/backoffice/cmd/internal/localstack"
)

// local is a private redis-server and backofficed started for one phase,
// in a temporary directory that also holds the phase's audience and
// schedule files. It is removed afterwards (kept when the phase failed,
// for its logs).
type local struct {
	dir         string
	stack       *localstack.Stack
	redisURL    string
	publicURL   string
	token       string // operator API token
	unsubSecret string // BACKOFFICE_UNSUBSCRIBE_SECRET
}

// newLocal makes the temporary directory (with its schedules
// subdirectory) and the secrets; start starts the servers.
func newLocal(phase string) (*local, error) {
	dir, err := os.MkdirTemp("", "loadcampaign-"+phase+"-")
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	l := &local{dir: dir, stack: localstack.New(dir), token: randomHex(16), unsubSecret: randomHex(16)}
	if err := os.MkdirAll(l.schedulesDir(), 0o755); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return l, nil
}

// schedulesDir is the daemon's BACKOFFICE_SCHEDULES_DIR (the stack's
// SchedulesDir), where the phase writes its schedule file.
func (l *local) schedulesDir() string { return filepath.Join(l.dir, "schedules") }

// start starts redis-server (with aof, AOF on as in production) and the
// daemon binary with the operator token, the unsubscribe secret and env
// added to its settings, on free loopback ports, and waits until the
// daemon is ready.
func (l *local) start(ctx context.Context, daemonBin string, aof bool, env []string) error {
	err := l.stack.Start(ctx, localstack.Options{AOF: aof, DaemonBin: daemonBin, BaseEnv: daemonEnv(os.Environ(), nil),
		Env: append([]string{"BACKOFFICE_API_TOKENS=bench:operator:" + l.token,
			"BACKOFFICE_UNSUBSCRIBE_SECRET=" + l.unsubSecret}, env...)})
	l.redisURL, l.publicURL = l.stack.RedisURL, l.stack.PublicURL
	return err
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

// daemonPID is the process id of the running daemon.
func (l *local) daemonPID() int { return l.stack.DaemonPID() }

// redisPID is the process id of the running redis-server.
func (l *local) redisPID() int { return l.stack.RedisPID() }

// stop ends the daemon (SIGTERM: a graceful shutdown) and then redis-server,
// and removes the directory unless keep.
func (l *local) stop(keep bool) { l.stack.Stop(keep) }

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
