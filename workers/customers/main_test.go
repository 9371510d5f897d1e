package customers

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/workers/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bundle is what most tests need: a store on its own redis-server.
type bundle struct {
	store *Store
	rdb   *redis.Client
	clock *clock
}

func setup(t testing.TB) bundle {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	clk := newClock()
	return bundle{store: New(rdb, "bo:", Options{DefaultRegion: "SK", Now: clk.Now}), rdb: rdb, clock: clk}
}
