package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/cmd/internal/logging"
	"github.com/shopworks/backoffice/cmd/internal/redisconn"
	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers"
	"github.com/shopworks/backoffice/workers/customers"
)

// delayedTaskCheck is how often the workers move due scheduled and retried
// tasks back to their queue.
const delayedTaskCheck = time.Second

// taskCheck is how long the workers wait before they look again when every
// queue was empty (asynq sleeps between half and one and a half times it).
// asynq's default of 1s leaves a woken campaign chunk, or an inbound STOP
// queued while the workers were idle, waiting up to 1.5s; at 100ms an idle
// daemon runs about ten dequeue scripts per queue a second.
const taskCheck = 100 * time.Millisecond

// redisPingTimeout bounds the start-up check that Redis answers.
const redisPingTimeout = 10 * time.Second

// daemon is one running backofficed: every component shares one Redis
// client. asynq's Client and Inspector are built on it and are never closed
// (closing them would close the shared client); Redis is closed last.
type daemon struct {
	cfg       config.Config
	log       *slog.Logger
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	customers *customers.Store // shared by the handlers and the API
	delivery  *delivery        // templates, senders, campaign engine
	schedules *scheduler
	workers   *asynq.Server
	mux       *asynq.ServeMux
	http      *http.Server
	listener  net.Listener
	// stopAlive stops the campaign engine's KeepAlive once the workers
	// have stopped
	stopAlive context.CancelFunc
	aliveDone chan struct{}
}

// run starts the daemon and blocks until ctx is cancelled (SIGINT, SIGTERM)
// or the HTTP server fails, then shuts down in order.
func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	d, err := newDaemon(ctx, cfg, log)
	if err != nil {
		return err
	}
	return d.serve(ctx)
}

// newDaemon checks the directories and Redis, builds every component and
// opens the HTTP listener. On error, what it opened is closed again.
func newDaemon(ctx context.Context, cfg config.Config, log *slog.Logger) (d *daemon, err error) {
	for _, dir := range []string{cfg.DataDir, cfg.OutboxDir()} {
		if err := ensureWritable(dir); err != nil {
			return nil, fmt.Errorf("BACKOFFICE_DATA_DIR: %w", err)
		}
	}
	rdb, err := openRedis(ctx, cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = rdb.Close()
		}
	}()
	d = &daemon{cfg: cfg, log: log, rdb: rdb,
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		customers: customers.New(rdb, cfg.KeyPrefix, customers.Options{DefaultRegion: cfg.PhoneRegion}),
	}
	reg := newRegistry()
	dl, err := d.newDelivery(reg)
	if err != nil {
		return nil, err
	}
	d.delivery = dl
	defer func() {
		if err != nil {
			dl.close()
		}
	}()
	d.workers, d.mux = d.newWorkers(reg)
	d.schedules = d.newScheduler(reg)
	if d.http, err = d.newHTTP(reg); err != nil {
		return nil, err
	}
	if d.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", cfg.HTTPAddr, err)
	}
	return d, nil
}

// ensureWritable makes dir if it is missing and checks that a file can be
// written in it: a data dir left read-only (another user's, a read-only
// mount) must stop the start, not fail every outbox mail and upload later
// while the daemon reports ready.
func ensureWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	return os.Remove(name)
}

// openRedis opens the shared client and checks that Redis answers, with an
// error that names the address but never the password.
func openRedis(ctx context.Context, rawURL string) (redis.UniversalClient, error) {
	target, err := redisconn.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("BACKOFFICE_REDIS_URL: %w", err)
	}
	rdb := target.Client()
	pingCtx, cancel := context.WithTimeout(ctx, redisPingTimeout)
	defer cancel()
	if err := redisconn.Ping(pingCtx, rdb); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s is not reachable: %w", target, err)
	}
	return rdb, nil
}

// newRegistry returns the registry /metrics serves, with the Go runtime and
// process collectors. The components register their own metrics on it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newWorkers builds the asynq server and the handler of every job kind,
// behind the logging, metrics and panic-recovery middleware.
func (d *daemon) newWorkers(reg prometheus.Registerer) (*asynq.Server, *asynq.ServeMux) {
	srv := asynq.NewServerFromRedisClient(d.rdb, asynq.Config{
		Concurrency:     d.cfg.Concurrency,
		Queues:          jobs.Queues(),
		Logger:          logging.AsynqLogger(d.log),
		LogLevel:        logging.AsynqLevel(d.cfg.LogLevel),
		ShutdownTimeout: d.cfg.ShutdownTimeout,
		RetryDelayFunc:  workers.RetryDelay,
		// Held chunks (rate limit, full run, provider's Retry-After) wait in
		// asynq's retry set for seconds; asynq's default of looking every
		// 5s would leave a campaign idle for most of that.
		DelayedTaskCheckInterval: delayedTaskCheck,
		TaskCheckInterval:        taskCheck,
		IsFailure:                workers.IsFailure,
		HealthCheckFunc: func(err error) {
			if err != nil {
				d.log.Warn("redis health check failed", "error", err)
			}
		},
	})
	mux := asynq.NewServeMux()
	workers.Use(mux, d.log, workers.NewMetrics(reg), d.rdb)
	workers.Register(mux, d.deps())
	return srv, mux
}

// deps are the collaborators of the handlers. Families add their field here.
func (d *daemon) deps() workers.Deps {
	return workers.Deps{
		Redis:     d.rdb,
		KeyPrefix: d.cfg.KeyPrefix,
		Client:    d.client,
		Logger:    d.log,
		DataDir:   d.cfg.DataDir,
		Customers: d.customers,
		Inbox:     d.delivery.inbox,
		Campaigns: d.delivery.engine,
		SMS:       d.delivery.sms,
		Templates: d.delivery.templates,
	}
}

// newHTTP builds the HTTP server of the dashboard, API, webhooks, probes
// and /metrics (which also registers asynq's queue collector on reg).
func (d *daemon) newHTTP(reg *prometheus.Registry) (*http.Server, error) {
	w, err := web.New(web.Options{
		Logger:          d.log,
		Redis:           d.rdb,
		Client:          d.client,
		Inspector:       d.inspector,
		Customers:       d.customers,
		Tokens:          d.cfg.APITokens,
		KeyPrefix:       d.cfg.KeyPrefix,
		DataDir:         d.cfg.DataDir,
		PublicURL:       d.cfg.PublicURL,
		TwilioAuthToken: d.cfg.TwilioAuthToken,
		Inbox:           d.delivery.inbox,
		Unsubscribe:     d.delivery.unsub,
		Campaigns:       d.delivery.engine,
		Schedules:       d.schedules,
		Reloads:         d.schedules,
		Gatherer:        reg,
		Registerer:      reg,
	})
	if err != nil {
		return nil, err
	}
	return &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}, nil
}

// addr is the address HTTP listens on (the real port when HTTPAddr ends in :0).
func (d *daemon) addr() string { return d.listener.Addr().String() }

// serve starts the workers and HTTP, waits for ctx or an HTTP failure, and
// shuts down.
func (d *daemon) serve(ctx context.Context) error {
	d.logStart()
	if err := d.schedules.start(ctx); err != nil {
		_ = d.listener.Close()
		d.delivery.close()
		_ = d.rdb.Close()
		return err
	}
	aliveCtx, stopAlive := context.WithCancel(context.WithoutCancel(ctx))
	d.stopAlive, d.aliveDone = stopAlive, make(chan struct{})
	go func() {
		defer close(d.aliveDone)
		d.delivery.engine.KeepAlive(aliveCtx)
	}()
	if err := d.workers.Start(d.mux); err != nil {
		d.stopAlive()
		<-d.aliveDone
		d.schedules.stop(ctx)
		_ = d.listener.Close()
		d.delivery.close()
		_ = d.rdb.Close()
		return fmt.Errorf("workers: %w", err)
	}
	httpErr := make(chan error, 1)
	go func() { httpErr <- d.http.Serve(d.listener) }()

	var failed error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down", "reason", context.Cause(ctx).Error())
	case err := <-httpErr:
		failed = fmt.Errorf("http: %w", err)
		d.log.Error("http server failed, shutting down", "error", err)
	}
	return errors.Join(failed, d.shutdown())
}

// shutdown stops the daemon. The order matters:
//  1. HTTP stops accepting requests and finishes those in flight (at most
//     ShutdownTimeout), so nothing new is enqueued by the API.
//  2. The scheduler stops firing; ticks being enqueued get ShutdownTimeout.
//  3. The asynq server stops fetching tasks and waits ShutdownTimeout for the
//     handlers; tasks still running then are cancelled and go back to their
//     queue, to be run again by this or another daemon.
//  4. The campaign engine stops refreshing its alive key (its slots are
//     released by now, and the key expires), and the SMTP and Twilio
//     connections are closed: no handler sends any more.
//  5. Redis is closed last: every component above uses it.
func (d *daemon) shutdown() error {
	var errs []error
	httpCtx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	if err := d.http.Shutdown(httpCtx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	schedCtx, cancelSched := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancelSched()
	d.schedules.stop(schedCtx)
	d.workers.Shutdown()
	d.stopAlive()
	<-d.aliveDone
	d.delivery.close()
	if err := d.rdb.Close(); err != nil {
		errs = append(errs, fmt.Errorf("redis close: %w", err))
	}
	d.log.Info("stopped")
	return errors.Join(errs...)
}

func (d *daemon) logStart() {
	d.log.Info("backofficed starting", "http_addr", d.addr(), "public_url", d.cfg.PublicURL, "config", d.cfg)
	for _, w := range warnings(d.cfg) {
		d.log.Warn(w)
	}
}

// warnings are settings that work but that an operator should know about.
func warnings(cfg config.Config) []string {
	var out []string
	if len(cfg.APITokens) == 0 {
		out = append(out, "no API tokens (BACKOFFICE_API_TOKENS): the API and dashboard refuse everything but /healthz and /readyz")
	}
	if !cfg.SMTPEnabled() {
		out = append(out, "no SMTP relay (BACKOFFICE_SMTP_URL): mail is written to "+cfg.OutboxDir())
	}
	if cfg.ShopURL == "" {
		out = append(out, "no shop web site (BACKOFFICE_SHOP_URL): the shipped templates' links to the shop are empty")
	}
	if !cfg.TwilioEnabled() {
		out = append(out, "no Twilio account (BACKOFFICE_TWILIO_ACCOUNT_SID): SMS are written to "+cfg.OutboxDir())
	}
	return out
}
