package schedules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Dir       string  // the schedule directory; required
	Options   Options // what entries are checked against
	Client    *asynq.Client
	Redis     redis.UniversalClient // where run records are kept
	KeyPrefix string                // prefix of every key, e.g. "bo:"
	Logger    *slog.Logger          // nil means slog.Default()
	Now       func() time.Time      // nil means time.Now; stamps run records
	// Daemon names this daemon in run records; "" means hostname:pid.
	Daemon string
	// PollInterval is how often the directory is checked for changed files;
	// 0 means every 2 seconds.
	PollInterval time.Duration
	// OnTick, when set, is called with the outcome of each tick this runner
	// fired, once it is final (for metrics).
	OnTick func(entry string, run Run)
}

// fireTimeout bounds one try at enqueueing a tick, and its record.
const fireTimeout = 10 * time.Second

// fireRetryWindow is how long after its time a tick whose enqueue keeps
// failing (Redis restarting or failing over) is tried again: a daily
// campaign then goes out late rather than not at all. Never past the
// entry's next tick.
const fireRetryWindow = 15 * time.Minute

// Runner fires the enabled entries of a schedule directory. Every daemon
// runs one; there is no leader: a tick's task ID is derived from the entry
// and the scheduled time, so whichever daemon comes first enqueues it and
// the others find the ID taken. The directory is reloaded when its files
// change and on Reload (the daemon calls it on SIGHUP); an invalid
// directory never replaces a valid one.
type Runner struct {
	o   RunnerOptions
	log *slog.Logger
	set atomic.Pointer[Set]

	mu        sync.Mutex // serialises Start, Reload and Stop; guards the fields below
	state     runnerState
	cron      *cron.Cron
	queues    map[string]*tickQueue // of cron, by entry name
	stopping  []context.Context     // done when a replaced cron's running jobs have finished
	seen      string                // fingerprint of the files last loaded
	ctx       context.Context       // for enqueues; cancelled when Stop is done
	cancel    context.CancelFunc
	stopWatch chan struct{}
	watchDone chan struct{}

	rejected atomic.Pointer[Rejection] // the files on disk, when a reload refused them

	observe func(Run) // tests: called after each tick is recorded
}

// Rejection is a reload the runner refused: the schedule files on disk
// were invalid, and the set loaded before stays in force until they are
// fixed.
type Rejection struct {
	At     time.Time    `json:"at"`
	Errors []*LoadError `json:"errors"`
}

type runnerState int

const (
	runnerNew runnerState = iota
	runnerStarted
	runnerStopped
)

// NewRunner returns a Runner; Start starts it.
func NewRunner(o RunnerOptions) *Runner {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Daemon == "" {
		host, _ := os.Hostname()
		o.Daemon = host + ":" + strconv.Itoa(os.Getpid())
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	return &Runner{o: o, log: o.Logger.With("component", "schedules")}
}

// Start loads the directory and starts firing its enabled entries. An
// invalid directory is an error naming every file:line at fault. Only the
// values of ctx are kept: the runner runs until Stop.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.state != runnerNew:
		return errors.New("schedules: start: runner already started")
	case r.o.Dir == "" || r.o.Client == nil || r.o.Redis == nil:
		return errors.New("schedules: start: Dir, Client and Redis are required")
	}
	fp := fingerprint(r.o.Dir)
	s, err := Load(r.o.Dir, r.o.Options)
	if err != nil {
		return fmt.Errorf("schedules: invalid schedule files in %s:\n%w", r.o.Dir, err)
	}
	r.seen = fp
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.install(s)
	r.state = runnerStarted
	r.stopWatch, r.watchDone = make(chan struct{}), make(chan struct{})
	go r.watch(r.stopWatch, r.watchDone)
	return nil
}

// Current returns the set in force; nil before Start.
func (r *Runner) Current() *Set { return r.set.Load() }

// Rejected returns the last reload refused since the set in force was
// loaded; nil when the files on disk are the ones in force.
func (r *Runner) Rejected() *Rejection { return r.rejected.Load() }

// Reload loads the directory again. When it is invalid, every problem is
// logged, the previous set stays in force and the error lists them.
func (r *Runner) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != runnerStarted {
		return errors.New("schedules: reload: runner is not running")
	}
	return r.reloadLocked(fingerprint(r.o.Dir))
}

func (r *Runner) reloadLocked(fp string) error {
	r.seen = fp
	s, err := Load(r.o.Dir, r.o.Options)
	if err != nil {
		errs := Errors(err)
		for _, e := range errs {
			r.log.Error("schedules: reload rejected, keeping the previous schedules",
				"file", e.File, "line", e.Line, "field", e.Field, "error", e.Msg)
		}
		r.rejected.Store(&Rejection{At: r.now().UTC(), Errors: errs})
		return fmt.Errorf("schedules: reload %s: %w", r.o.Dir, err)
	}
	r.install(s)
	return nil
}

// install puts s in force: the new cron starts before the old one stops,
// and an entry both have starts in the new one from the tick the old one
// was about to fire, so no tick falls between them (a tick both fire is
// enqueued once).
func (r *Runner) install(s *Set) {
	c, queues := r.newCron(s, r.queues, r.set.Load())
	c.Start()
	if r.cron != nil {
		r.stopping = append(pending(r.stopping), r.cron.Stop())
	}
	r.cron, r.queues = c, queues
	r.set.Store(s)
	r.rejected.Store(nil)
	r.log.Info("schedules loaded", "dir", r.o.Dir, "files", len(s.Files),
		"campaigns", len(s.Campaigns), "jobs", len(s.Jobs), "enabled", len(s.enabledNames()))
}

// Stop stops firing, waits until ctx is done for ticks being enqueued,
// then cancels those still going.
func (r *Runner) Stop(ctx context.Context) {
	r.mu.Lock()
	if r.state != runnerStarted {
		r.state = runnerStopped
		r.mu.Unlock()
		return
	}
	r.state = runnerStopped
	close(r.stopWatch)
	waits := append(pending(r.stopping), r.cron.Stop())
	r.mu.Unlock()
	<-r.watchDone
	defer r.cancel()
	for _, w := range waits {
		select {
		case <-w.Done():
		case <-ctx.Done():
			r.log.Warn("schedules: stopped before every tick was enqueued", "error", ctx.Err())
			return
		}
	}
}

// pending drops the contexts that are done.
func pending(waits []context.Context) []context.Context {
	out := waits[:0]
	for _, w := range waits {
		if w.Err() == nil {
			out = append(out, w)
		}
	}
	return out
}

func (r *Runner) now() time.Time {
	if r.o.Now != nil {
		return r.o.Now()
	}
	return time.Now()
}
