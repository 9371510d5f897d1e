package campaigns

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// bundle is what a test of the engine works with: real Redis, a real
// asynq client, the real customer store and templates.
type bundle struct {
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	customers *customers.Store
	templates *templates.Set
	clock     *clock
	engine    *Engine
	dir       string
}

// setup starts Redis and builds an engine on it; adjust changes the
// config before the engine is built.
func setup(t *testing.T, adjust func(*Config)) *bundle {
	t.Helper()
	srv := redistest.Start(t)
	return setupOn(t, srv.Client(t), adjust)
}

func setupOn(t testing.TB, rdb redis.UniversalClient, adjust func(*Config)) *bundle {
	t.Helper()
	set, err := templates.Load(templates.Options{FallbackLanguage: "en",
		Shop: templates.ShopData{Name: "Shop", URL: "https://shop.example"}})
	if err != nil {
		t.Fatalf("templates.Load: %v", err)
	}
	b := &bundle{
		rdb: rdb, client: asynq.NewClientFromRedisClient(rdb), inspector: asynq.NewInspectorFromRedisClient(rdb),
		templates: set, clock: newClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)), dir: t.TempDir(),
	}
	b.customers = customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK", Now: b.clock.Now})
	cfg := Config{
		Redis: rdb, KeyPrefix: "bo:", Enqueuer: b.client, Waker: b.inspector, Customers: b.customers, Templates: set,
		Unsubscribe: Unsubscriber{Secret: []byte("0123456789abcdef0123456789abcdef"), PublicURL: "https://shop.example"},
		MailFrom:    "Shop <news@shop.example>", PhoneRegion: "SK", DataDir: b.dir,
		ChunkSize: 3, Now: b.clock.Now, MaxRateWait: 5 * time.Second,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	b.engine, err = New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// writeFile writes an audience file into the bundle's data dir.
func (b *bundle) writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func emailCampaign(name string, aud jobs.Audience) jobs.Campaign {
	return jobs.Campaign{Name: name, Channel: jobs.ChannelEmail, Template: "promo", Audience: aud,
		RatePerSecond: 1000, Timezone: "Europe/Bratislava"}
}

func launchArgs(c jobs.Campaign, run string) jobs.CampaignLaunchArgs {
	return jobs.CampaignLaunchArgs{Campaign: c, Run: run, Trigger: "manual"}
}

// status returns a run's status or fails the test.
func (b *bundle) status(t *testing.T, campaign, run string) RunStatus {
	t.Helper()
	st, err := b.engine.Store().Status(context.Background(), campaign, run)
	if err != nil {
		t.Fatalf("Status(%s, %s): %v", campaign, run, err)
	}
	return st
}

// ledger returns every ledger entry of a run as recipient -> "state|detail".
func (b *bundle) ledger(t *testing.T, campaign, run string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var cursor uint64
	for {
		p, err := b.engine.Store().Entries(context.Background(), campaign, run, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			out[e.Recipient] = string(e.State) + "|" + e.Detail
		}
		if cursor = p.Cursor; cursor == 0 {
			return out
		}
	}
}

// chunks returns the recipients of every chunk of a run.
func (b *bundle) chunks(t *testing.T, campaign, run string) [][]string {
	t.Helper()
	st := b.status(t, campaign, run)
	out := make([][]string, st.Chunks)
	for i := range out {
		ids, _, err := b.engine.store.chunkRecipients(context.Background(), campaign, run, i)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ids
	}
	return out
}

// taskIDs returns the ids of the tasks waiting in the campaigns queue.
func (b *bundle) taskIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for page := 1; ; page++ {
		tasks, err := b.inspector.ListPendingTasks(jobs.QueueCampaigns, asynq.Page(page), asynq.PageSize(100))
		if err != nil && !strings.Contains(err.Error(), "does not exist") && !strings.Contains(err.Error(), "queue not found") {
			t.Fatal(err)
		}
		for _, ti := range tasks {
			ids = append(ids, ti.ID)
		}
		if len(tasks) < 100 {
			break
		}
	}
	sort.Strings(ids)
	return ids
}

// checkCounts fails when a run's counters do not add up to its total.
func checkCounts(t *testing.T, st RunStatus) {
	t.Helper()
	c := st.Counts
	if sum := c.Pending + c.Sending + c.Sent + c.Delivered + c.Undelivered + c.Failed + c.Skipped; sum != c.Total {
		t.Errorf("run %s: counts %+v sum to %d, want total %d", st.Run, c, sum, c.Total)
	}
}

func chunkTaskIDs(campaign, run string, n int) []string {
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, fmt.Sprintf("campaign:%s:%s:chunk:%d", campaign, run, i))
	}
	sort.Strings(ids)
	return ids
}

// addCustomers stores customers or fails the test.
func (b *bundle) addCustomers(t *testing.T, cs ...customers.Customer) {
	t.Helper()
	for _, c := range cs {
		if _, err := b.customers.Upsert(context.Background(), c); err != nil {
			t.Fatalf("Upsert(%s): %v", c.ID, err)
		}
	}
}

func optedOut(ch customers.Channel) map[customers.Channel]customers.Consent {
	return map[customers.Channel]customers.Consent{ch: {Status: customers.OptedOut, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Source: "test"}}
}

// runChunks runs every chunk of a run that is not done yet once, in
// order, as asynq would, and returns what each returned.
func (b *bundle) runChunks(t *testing.T, campaign, run string) map[int]error {
	t.Helper()
	st := b.status(t, campaign, run)
	rk := b.engine.store.keys.run(campaign, run)
	out := map[int]error{}
	for n := range st.Chunks {
		bit, err := b.rdb.GetBit(context.Background(), rk.done, int64(n)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if bit == 1 {
			continue
		}
		out[n] = b.engine.HandleChunk(context.Background(), jobs.CampaignChunkArgs{Campaign: campaign, Run: run, Chunk: n})
	}
	return out
}

// runUntilDone runs the chunks of a run until all are done, failing the
// test after rounds passes or on an error accept does not accept.
func (b *bundle) runUntilDone(t *testing.T, campaign, run string, rounds int, accept func(error) bool) {
	t.Helper()
	for range rounds + 1 {
		errs := b.runChunks(t, campaign, run)
		if len(errs) == 0 {
			return
		}
		for n, err := range errs {
			if err != nil && (accept == nil || !accept(err)) {
				t.Fatalf("chunk %d: %v", n, err)
			}
		}
	}
	t.Fatalf("run %s not done after %d rounds: %+v", run, rounds, b.status(t, campaign, run))
}
