package main

import (
	"context"
	"fmt"
	"os"

	"github.com/shopworks/backoffice/cmd/internal/localstack"
)

// local is a private redis-server and backofficed started for one run, in
// a temporary directory that is removed afterwards (kept when the run
// failed, for its logs).
type local struct {
	dir           string
	stack         *localstack.Stack
	url, redisURL string
	publicURL     string
	token         string
}

// startLocal starts redis-server (with aof, AOF on as in production) and the daemon
// binary on free loopback ports, and waits until the daemon is ready.
func startLocal(ctx context.Context, daemonBin string, aof bool) (*local, error) {
	dir, err := os.MkdirTemp("", "loadwebhook-")
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	l := &local{dir: dir, stack: localstack.New(dir), token: randomHex(16)}
	err = l.stack.Start(ctx, localstack.Options{AOF: aof, DaemonBin: daemonBin, BaseEnv: os.Environ(), Env: []string{
		// A Twilio account whose API is a closed loopback port: the bench
		// sends nothing, and nothing may reach the real Twilio.
		"BACKOFFICE_TWILIO_AUTH_TOKEN=" + l.token, "BACKOFFICE_TWILIO_ACCOUNT_SID=AC" + randomHex(16),
		"BACKOFFICE_TWILIO_FROM=+421233000000", "BACKOFFICE_TWILIO_API_URL=http://127.0.0.1:9"}})
	if err != nil {
		l.stop(true)
		return nil, err
	}
	l.redisURL, l.publicURL = l.stack.RedisURL, l.stack.PublicURL
	l.url = l.publicURL + "/webhooks/twilio/sms"
	return l, nil
}

// stop ends the daemon (SIGTERM: a graceful shutdown) and then redis-server,
// and removes the directory unless keep.
func (l *local) stop(keep bool) { l.stack.Stop(keep) }
