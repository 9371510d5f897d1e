// Package campaigns is the campaign engine: a launch snapshots a campaign's
// audience into a run (ledger + chunks in Redis), chunk jobs send to each
// recipient exactly once under a rate limit shared by every daemon, and
// operators pause, resume, cancel and retry the failed recipients of a run.
//
// Every recipient has a ledger entry that a chunk checks before it sends
// and updates around the send, in Lua scripts that keep the run's counters
// in step (see EntryState for the states and chunk.go for the crash
// policy). All of a run's keys share one hash tag, so it works on Redis
// Cluster.
package campaigns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/sms"
)

// Enqueuer enqueues tasks (*asynq.Client).
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Renderer renders a campaign's template for one recipient (*templates.Set).
type Renderer interface {
	RenderEmail(name, lang string, d templates.Data) (templates.Email, error)
	RenderSMS(name, lang string, d templates.Data) (templates.SMS, error)
}

// MailSender sends one e-mail (*email.Pool, *email.Outbox).
type MailSender interface {
	Send(ctx context.Context, m *email.Message) error
}

// SMSSender sends one SMS (*sms.Twilio, *sms.Outbox).
type SMSSender interface {
	Send(ctx context.Context, m sms.Message) (sms.Result, error)
}

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	Redis     redis.UniversalClient // required
	KeyPrefix string                // prefix of every key, e.g. "bo:"
	Enqueuer  Enqueuer              // required: enqueues chunk and launch tasks
	// Waker, when set (an *asynq.Inspector), runs a chunk waiting for a
	// slot as soon as another chunk of its run is done.
	Waker     Waker
	Customers CustomerSource // required
	Templates Renderer       // required
	Mail      MailSender     // required to send e-mail campaigns
	SMS       SMSSender      // required to send SMS campaigns

	Unsubscribe Unsubscriber // signs the unsubscribe links of e-mails
	// MailFrom is the From of campaign mail ("Shop <shop@example.sk>"); its
	// domain also ends every Message-ID.
	MailFrom string
	// UnsubscribeMailto is added to List-Unsubscribe when set.
	UnsubscribeMailto string
	// SMSStatusCallback is the absolute URL Twilio posts delivery reports
	// to; empty sends no callback URL.
	SMSStatusCallback string
	// PhoneRegion reads numbers of audience files written without a
	// country code ("SK"); empty requires +<country>.
	PhoneRegion string
	// DataDir is where relative audience file paths are read from.
	DataDir string

	ChunkSize int // recipients per chunk, default 500
	// ChunkRate is the sends per second one chunk is expected to manage,
	// default 20: a run gets ceil(rate_per_second/ChunkRate) chunks in
	// flight across all daemons, at most MaxChunksInFlight (default 32:
	// four per connection of the default SMTP pool of 8, so that a
	// connection does not wait while chunks do their Redis work and render
	// the next messages; measured faster than 16 and no slower than 64).
	ChunkRate         float64
	MaxChunksInFlight int
	// LocalChunks is how many chunks this daemon sends at once, of all
	// runs (default 32). A chunk beyond it waits in the queue instead of
	// taking a worker, so that campaigns never occupy every worker of the
	// daemon and an inbound STOP or a ticket is processed meanwhile.
	LocalChunks int
	// MaxRateWait is the longest a chunk waits in-process for the rate
	// limiter (default 2s); longer waits hold the chunk in the queue.
	MaxRateWait time.Duration
	// PausePoll is how often the chunks of a paused run look whether it was
	// resumed (default 30s).
	PausePoll time.Duration
	// SlotLease is how long a chunk holds its in-flight slot without
	// renewing it (default 2m); a crashed worker's chunk is taken over after
	// it (or AliveTTL after its daemon died, while KeepAlive runs). Each send
	// gets at most a third of it.
	SlotLease time.Duration
	// AliveTTL is how long the alive key of a daemon that runs KeepAlive
	// lasts without a refresh (default 20s): its slots are freed for the
	// other daemons that long after it died, and it stops sending when it
	// could not refresh the key for half of it.
	AliveTTL time.Duration
	// SIDTTL is how long SMS delivery reports are accepted (default 30 days).
	SIDTTL time.Duration
	// MinAttempts is the number of attempted sends before max_error_ratio
	// applies (default 50).
	MinAttempts int

	Now    func() time.Time // nil means time.Now
	Logger *slog.Logger     // nil discards
	// Metrics counts sends and failures (NewMetrics; nil: not counted).
	Metrics *Metrics
}

func (c *Config) defaults() error {
	switch {
	case c.Redis == nil:
		return errors.New("campaigns: config: Redis is required")
	case c.Enqueuer == nil:
		return errors.New("campaigns: config: Enqueuer is required")
	case c.Customers == nil:
		return errors.New("campaigns: config: Customers is required")
	case c.Templates == nil:
		return errors.New("campaigns: config: Templates is required")
	}
	c.ChunkSize = cmp.Or(c.ChunkSize, 500)
	c.ChunkRate = cmp.Or(c.ChunkRate, 20)
	c.MaxChunksInFlight = cmp.Or(c.MaxChunksInFlight, 32)
	c.LocalChunks = cmp.Or(c.LocalChunks, 32)
	c.MaxRateWait = cmp.Or(c.MaxRateWait, 2*time.Second)
	c.PausePoll = cmp.Or(c.PausePoll, 30*time.Second)
	c.SlotLease = cmp.Or(c.SlotLease, 2*time.Minute)
	c.AliveTTL = cmp.Or(c.AliveTTL, 20*time.Second)
	c.SIDTTL = cmp.Or(c.SIDTTL, DefaultSIDTTL)
	c.MinAttempts = cmp.Or(c.MinAttempts, 50)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.ChunkSize < 1 || c.ChunkSize > 5000:
		return fmt.Errorf("campaigns: config: ChunkSize must be 1..5000, got %d", c.ChunkSize)
	case c.ChunkRate < 0 || c.MaxChunksInFlight < 1 || c.LocalChunks < 1 || c.MinAttempts < 1:
		return fmt.Errorf("campaigns: config: ChunkRate, MaxChunksInFlight, LocalChunks and MinAttempts must be positive")
	case c.MaxRateWait < 0 || c.PausePoll < 0 || c.SlotLease < 3*time.Second || c.SIDTTL < 0 || c.AliveTTL < 100*time.Millisecond:
		return fmt.Errorf("campaigns: config: durations must be positive, SlotLease at least 3s, AliveTTL at least 100ms")
	}
	return nil
}

// Waker runs a waiting task now; *asynq.Inspector is one.
type Waker interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	RunTask(queue, id string) error
}

// Engine runs campaigns: it plans launches, sends chunks and serves the
// operators' actions.
type Engine struct {
	cfg      Config
	store    *Store
	throttle throttle
	domain   string // of Message-IDs
	zones    zoneCache
	local    chan struct{} // one token per chunk this daemon is sending (LocalChunks)
	rec      *recorder     // records the sent messages of every chunk, in groups
	// id marks this engine's slots while KeepAlive runs (keepAlive), which
	// last refreshed the alive key at aliveAt (unix ns)
	id        string
	keepAlive atomic.Bool
	aliveAt   atomic.Int64
	reaping   atomic.Bool  // a reapDead is running
	onWire    atomic.Int64 // messages this daemon's chunks are sending now
}

// recordLinger is how long a recorder leader waits for the messages other
// chunks are sending before it writes (see recorder): about one SMTP
// exchange, so that the group holds a message per connection rather than
// one or two. Measured with 32 chunks on 8 connections: groups of 2.6 ->
// 5.6 messages, half the ledger scripts, and the same throughput (the
// chunks waiting for a connection cover the wait).
const recordLinger = time.Millisecond

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, store: NewStore(cfg.Redis, cfg.KeyPrefix, cfg.Now), domain: "backoffice.invalid",
		local: make(chan struct{}, cfg.LocalChunks), id: newDaemonID()}
	e.rec = &recorder{store: e.store, events: cfg.Customers.AddEvents, onWire: &e.onWire, linger: recordLinger}
	e.throttle = throttle{limiter: redis_rate.NewLimiter(cfg.Redis), keys: e.store.keys, maxWait: cfg.MaxRateWait, sleep: sleepCtx}
	if a, err := mail.ParseAddress(cfg.MailFrom); err == nil {
		if at := strings.LastIndexByte(a.Address, '@'); at >= 0 {
			e.domain = strings.ToLower(a.Address[at+1:])
		}
	}
	return e, nil
}

// Store returns the engine's run store (status, ledger pages).
func (e *Engine) Store() *Store { return e.store }

// Ledger returns the ledger view the Twilio status webhook uses.
func (e *Engine) Ledger() *Ledger { return e.store.Ledger() }

// HoldError is returned by HandleChunk when the chunk has to run again
// later and that is not a failure: its run is paused, the rate limit or
// SMS quiet hours hold it, or its in-flight slot is taken. It has the
// methods workers.RetryDelay and workers.IsFailure honour: RetryAfter (run
// again after this long) and RateLimited (true: no retry budget spent).
type HoldError struct {
	Reason string
	After  time.Duration
}

func (h *HoldError) Error() string {
	return fmt.Sprintf("campaigns: chunk held for %s: %s", h.After.Round(time.Second), h.Reason)
}

// RetryAfter is how long to wait before running the chunk again.
func (h *HoldError) RetryAfter() time.Duration { return h.After }

// RateLimited reports true: a hold is not a failure.
func (h *HoldError) RateLimited() bool { return true }

func hold(after time.Duration, format string, a ...any) *HoldError {
	return &HoldError{Reason: fmt.Sprintf(format, a...), After: max(after, time.Second)}
}

// permanent marks err as not worth retrying (asynq archives the task).
func permanent(err error) error { return fmt.Errorf("%w: %w", asynq.SkipRetry, err) }

func isTaskConflict(err error) bool { return errors.Is(err, asynq.ErrTaskIDConflict) }

// Launch enqueues the launch of a run of c and records the run at once
// (see Store.recordLaunched). An empty run gets a new id (NewRunID); the
// id is returned.
func (e *Engine) Launch(ctx context.Context, c jobs.Campaign, run, trigger string) (string, error) {
	if run == "" {
		run = NewRunID(e.cfg.Now())
	}
	a := jobs.CampaignLaunchArgs{Campaign: c, Run: run, Trigger: trigger}
	if err := enqueueLaunch(ctx, e.cfg.Enqueuer, a); err != nil {
		return run, err
	}
	if err := e.store.recordLaunched(ctx, a); err != nil {
		e.cfg.Logger.Warn("campaign run not recorded before its launch task; the task records it", "campaign", c.Name, "run", run, "err", err)
	}
	return run, nil
}

// audiencePath resolves a campaign's audience file against the data dir.
func (e *Engine) audiencePath(file string) string {
	if filepath.IsAbs(file) || e.cfg.DataDir == "" {
		return file
	}
	return filepath.Join(e.cfg.DataDir, file)
}
