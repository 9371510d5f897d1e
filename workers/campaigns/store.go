package campaigns

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
)

// State is the state of a run.
type State string

// Run states. A run starts running; pause and resume switch between running
// and paused; it ends finished (every chunk done) or cancelled.
const (
	StateRunning   State = "running"
	StatePaused    State = "paused"
	StateFinished  State = "finished"
	StateCancelled State = "cancelled"
)

// Errors of the run store.
var (
	// ErrNoRun is returned for a campaign run that does not exist.
	ErrNoRun = errors.New("campaigns: no such run")
	// ErrState is returned when a run is not in a state that allows the
	// operation (resuming a finished run, retrying a running one).
	ErrState = errors.New("campaigns: run state does not allow this")
)

// Counts are a run's recipients by ledger state; they always sum to Total.
// Sent means accepted by the mail server or Twilio with no delivery report
// yet; Delivered and Undelivered are SMS whose report came back.
type Counts struct {
	Total       int64 `json:"total"`
	Pending     int64 `json:"pending"`
	Sending     int64 `json:"sending"`
	Sent        int64 `json:"sent"`
	Delivered   int64 `json:"delivered"`
	Undelivered int64 `json:"undelivered"`
	Failed      int64 `json:"failed"`
	Skipped     int64 `json:"skipped"`
}

// Attempted is the number of recipients a send was tried for and that
// have an outcome: the denominator of the error ratio.
func (c Counts) Attempted() int64 { return c.Sent + c.Delivered + c.Undelivered + c.Failed }

// RunStatus is what an operator sees of one run.
type RunStatus struct {
	Campaign   string        `json:"campaign"`
	Run        string        `json:"run"`
	State      State         `json:"state"`
	Reason     string        `json:"reason,omitempty"` // why it is paused or cancelled
	Trigger    string        `json:"trigger"`
	RetryOf    string        `json:"retry_of,omitempty"`
	RetriedBy  string        `json:"retried_by,omitempty"` // the retry-failed run made from this one
	Definition jobs.Campaign `json:"definition"`
	Started    time.Time     `json:"started"`
	Finished   time.Time     `json:"finished,omitzero"`
	Counts     Counts        `json:"counts"`
	Planning   bool          `json:"planning"`    // the audience is still being snapshotted
	Chunks     int           `json:"chunks"`      // chunks planned so far
	ChunksDone int           `json:"chunks_done"` // chunks finished
	// SentPerMinute is the number of sends in the last 60 seconds
	// (sliding-window estimate over two minute counters).
	SentPerMinute int64 `json:"sent_per_minute"`
}

// Store keeps campaign runs and their ledgers in Redis.
type Store struct {
	rdb  redis.UniversalClient
	keys keys
	now  func() time.Time
}

// NewStore returns a Store on rdb with every key under prefix. now may be
// nil (time.Now).
func NewStore(rdb redis.UniversalClient, prefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, keys: keys{prefix: prefix}, now: now}
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

// createRun records a new run of c (state running) unless it exists, and
// makes it the campaign's latest run. It reports whether it created it.
func (s *Store) createRun(ctx context.Context, a jobs.CampaignLaunchArgs) (bool, error) {
	def, err := json.Marshal(a.Campaign)
	if err != nil {
		return false, fmt.Errorf("campaign %s: encode definition: %w", a.Campaign.Name, err)
	}
	rk := s.keys.run(a.Campaign.Name, a.Run)
	now := s.nowMS()
	created, err := createRunScript.Run(ctx, s.rdb, []string{rk.run}, def, a.Trigger, a.RetryOf, now).Int()
	if err != nil {
		return false, fmt.Errorf("campaign %s run %s: create: %w", a.Campaign.Name, a.Run, err)
	}
	if created == 1 {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keys.latest(a.Campaign.Name), a.Run, 0)
			p.ZAdd(ctx, s.keys.runs(a.Campaign.Name), redis.Z{Score: float64(now), Member: a.Run})
			p.SAdd(ctx, s.keys.names(), a.Campaign.Name)
			return nil
		})
		if err != nil {
			return true, fmt.Errorf("campaign %s run %s: index: %w", a.Campaign.Name, a.Run, err)
		}
	}
	return created == 1, nil
}

// Status returns the status of one run; run "" is the campaign's latest.
func (s *Store) Status(ctx context.Context, campaign, run string) (RunStatus, error) {
	run, err := s.runOrLatest(ctx, campaign, run)
	if err != nil {
		return RunStatus{}, err
	}
	rk := s.keys.run(campaign, run)
	minute := s.now().Unix() / 60
	var h *redis.MapStringStringCmd
	var cur, prev *redis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, rk.run)
		cur = p.Get(ctx, rk.sentMinute(minute))
		prev = p.Get(ctx, rk.sentMinute(minute-1))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return RunStatus{}, fmt.Errorf("campaign %s run %s: status: %w", campaign, run, err)
	}
	m := h.Val()
	if len(m) == 0 {
		return RunStatus{}, fmt.Errorf("campaign %s run %s: %w", campaign, run, ErrNoRun)
	}
	st, err := parseRun(campaign, run, m)
	if err != nil {
		return RunStatus{}, err
	}
	c, _ := strconv.ParseInt(cur.Val(), 10, 64)
	p, _ := strconv.ParseInt(prev.Val(), 10, 64)
	elapsed := float64(s.now().Unix()%60) / 60
	st.SentPerMinute = c + int64(float64(p)*(1-elapsed))
	return st, nil
}

func parseRun(campaign, run string, m map[string]string) (RunStatus, error) {
	n := func(f string) int64 { v, _ := strconv.ParseInt(m[f], 10, 64); return v }
	ms := func(f string) time.Time {
		if v := n(f); v > 0 {
			return time.UnixMilli(v).UTC()
		}
		return time.Time{}
	}
	st := RunStatus{
		Campaign: campaign, Run: run, State: State(m["state"]), Reason: m["reason"],
		Trigger: m["trigger"], RetryOf: m["retry_of"], RetriedBy: m["retried_by"],
		Started: ms("started"), Finished: ms("finished"),
		Counts: Counts{
			Total: n("total"), Pending: n("pending"), Sending: n("sending"), Sent: n("sent"),
			Delivered: n("delivered"), Undelivered: n("undelivered"), Failed: n("failed"), Skipped: n("skipped"),
		},
		Planning: m["planned"] != "1", Chunks: int(n("chunks")), ChunksDone: int(n("chunks_done")),
	}
	if err := json.Unmarshal([]byte(m["campaign"]), &st.Definition); err != nil {
		return RunStatus{}, fmt.Errorf("campaign %s run %s: decode stored definition: %w", campaign, run, err)
	}
	return st, nil
}

// Latest returns the id of the campaign's newest run.
func (s *Store) Latest(ctx context.Context, campaign string) (string, error) {
	run, err := s.rdb.Get(ctx, s.keys.latest(campaign)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("campaign %s: %w (never launched)", campaign, ErrNoRun)
	}
	if err != nil {
		return "", fmt.Errorf("campaign %s: latest run: %w", campaign, err)
	}
	return run, nil
}

// Runs returns the ids of the campaign's runs, newest first, at most limit.
func (s *Store) Runs(ctx context.Context, campaign string, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 20
	}
	ids, err := s.rdb.ZRevRange(ctx, s.keys.runs(campaign), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("campaign %s: list runs: %w", campaign, err)
	}
	return ids, nil
}

// Campaigns returns the names of every campaign that was ever launched.
func (s *Store) Campaigns(ctx context.Context) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.keys.names()).Result()
	if err != nil {
		return nil, fmt.Errorf("campaigns: list names: %w", err)
	}
	return names, nil
}

// setState moves a run from one of the states in from to state to. It
// returns the state the run was in; ErrState when it was not allowed.
func (s *Store) setState(ctx context.Context, campaign, run string, from []State, to State, reason string) (State, error) {
	allowed := make([]string, len(from))
	for i, f := range from {
		allowed[i] = string(f)
	}
	rk := s.keys.run(campaign, run)
	res, err := setStateScript.Run(ctx, s.rdb, []string{rk.run}, strings.Join(allowed, ","), string(to), reason, s.nowMS()).Slice()
	if err != nil {
		return "", fmt.Errorf("campaign %s run %s: set state %s: %w", campaign, run, to, noRun(err))
	}
	old := State(fmt.Sprint(res[1]))
	if res[0].(int64) != 1 {
		return old, fmt.Errorf("campaign %s run %s: cannot move from %s to %s: %w", campaign, run, old, to, ErrState)
	}
	return old, nil
}

// Pause stops sending for a running run (run "" is the latest): chunks
// stop before their next send and hold until Resume. reason is shown in
// the status.
func (s *Store) Pause(ctx context.Context, campaign, run, reason string) error {
	run, err := s.runOrLatest(ctx, campaign, run)
	if err != nil {
		return err
	}
	_, err = s.setState(ctx, campaign, run, []State{StateRunning}, StatePaused, cmp.Or(reason, "paused by an operator"))
	return err
}

// Resume lets a paused run send again (run "" is the latest).
func (s *Store) Resume(ctx context.Context, campaign, run string) error {
	run, err := s.runOrLatest(ctx, campaign, run)
	if err != nil {
		return err
	}
	_, err = s.setState(ctx, campaign, run, []State{StatePaused}, StateRunning, "")
	return err
}

// Cancel ends a running or paused run (run "" is the latest): recipients
// not yet sent stay pending and are never sent.
func (s *Store) Cancel(ctx context.Context, campaign, run, reason string) error {
	run, err := s.runOrLatest(ctx, campaign, run)
	if err != nil {
		return err
	}
	_, err = s.setState(ctx, campaign, run, []State{StateRunning, StatePaused}, StateCancelled, cmp.Or(reason, "cancelled by an operator"))
	return err
}

// noRun turns the scripts' NORUN error into ErrNoRun.
func noRun(err error) error {
	if err != nil && strings.HasPrefix(err.Error(), "NORUN") {
		return ErrNoRun
	}
	return err
}
