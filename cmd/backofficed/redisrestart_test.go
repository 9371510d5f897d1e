package main_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"github.com/shopworks/backoffice/workers/redistest"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// Settings of the campaign the Redis-restart test runs.
const (
	restartRecipients  = 3000
	restartRestarts    = 3
	restartPool        = 3   // BACKOFFICE_SMTP_POOL
	restartConcurrency = 5   // BACKOFFICE_CONCURRENCY: 3 campaign chunks at once
	restartRate        = 400 // sends per second
	restartCampaign    = "restart"
	restartRun         = "restart-1"
)

// redisOutage is what the test saw at one Redis restart.
type redisOutage struct {
	elapsed  time.Duration // since the launch, when Redis stopped
	down     time.Duration // how long Redis stayed down
	accepted int           // messages the SMTP server had accepted when Redis stopped
	during   int           // messages accepted while Redis was down
	readyz   int           // /readyz status while Redis was down
}

// TestCampaignSurvivesRedisRestarts sends an e-mail campaign from the
// daemon binary to a real SMTP server and stops the daemon's Redis (AOF
// on) three times while it sends, for 1 to 5 seconds each, then starts it
// again on the same port and data. The daemon process stays up, its
// /readyz answers 503 while Redis is down and 200 again after, the run
// finishes by itself, every recipient has the message once and the ledger
// agrees with what the SMTP server received.
func TestCampaignSurvivesRedisRestarts(t *testing.T) {
	t.Parallel()
	c := launchEmailCampaign(t, restartCampaign, restartRun, restartRecipients, restartPool, restartConcurrency, restartRate)
	srv, store, mail, addresses, d := c.srv, c.store, c.mail, c.addresses, c.d

	start := time.Now()
	outages := restartRedisDuring(t, srv, d, mail.Count, restartRecipients)
	// about 10 s of sends at the rate and a retry or two of each chunk: a
	// chunk that waits for its own slot's lease (two minutes) misses this
	st := waitRunFinished(t, store, restartCampaign, restartRun, time.Minute, 10*time.Second, start, mail.Count)
	t.Logf("run finished %s after the launch", time.Since(start).Round(time.Second))
	d.checkAlive(t, "the run")
	d.stop(t)
	checkOutages(t, outages, restartRecipients)
	checkRestartRun(t, store, st, mail.Messages(), addresses)
}

// restartRedisDuring stops srv restartRestarts times while the daemon d
// sends a run of total messages (count says how many the provider has
// accepted), each time for 1 to 5 s, and starts it again on its port and
// data. After each restart the daemon must still run and /readyz answer
// 200 again.
func restartRedisDuring(t *testing.T, srv *redistest.Server, d *e2eDaemon, count func() int, total int) []redisOutage {
	t.Helper()
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("restart points and outages drawn with seed %d", seed)
	var outages []redisOutage
	for k := range restartRestarts {
		// restart k+1 falls somewhere in quarter k+1 of the sends, once
		// the daemon has sent some since Redis came back
		threshold := total * (4*k + 1 + rng.IntN(3)) / 16
		resumed := count()
		waitUntil(t, time.Minute, fmt.Sprintf("restart %d: %d messages accepted", k+1, threshold), func() bool {
			n := count()
			return n >= threshold && n >= resumed+total/60
		})
		o := redisOutage{elapsed: time.Since(start), down: time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))}
		srv.Stop()
		o.accepted = count()
		stopped := time.Now()
		o.readyz = readyzStatus(d.url)
		time.Sleep(time.Until(stopped.Add(o.down)))
		o.during = count() - o.accepted
		srv.Restart(t)
		d.checkAlive(t, fmt.Sprintf("Redis restart %d", k+1))
		waitUntil(t, 30*time.Second, fmt.Sprintf("/readyz to answer 200 after restart %d", k+1), func() bool {
			return readyzStatus(d.url) == http.StatusOK
		})
		outages = append(outages, o)
	}
	return outages
}

// checkOutages reports the outages and checks that they fell during the
// run and that /readyz said so.
func checkOutages(t *testing.T, outages []redisOutage, total int) {
	t.Helper()
	for i, o := range outages {
		t.Logf("restart %d at %s: Redis down %s, %d messages accepted before, %d while down, /readyz %d while down",
			i+1, o.elapsed.Round(time.Millisecond), o.down.Round(time.Millisecond), o.accepted, o.during, o.readyz)
		if o.readyz != http.StatusServiceUnavailable {
			t.Errorf("restart %d: /readyz answered %d while Redis was down, want 503", i+1, o.readyz)
		}
		if o.accepted >= total {
			t.Errorf("restart %d came after all %d messages: not during the run", i+1, o.accepted)
		}
	}
}

// readyzStatus returns the status of GET /readyz, 0 when it fails.
func readyzStatus(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkAlive fails t when the daemon process has exited.
func (d *e2eDaemon) checkAlive(t *testing.T, during string) {
	t.Helper()
	select {
	case err := <-d.exited:
		d.exited <- err
		t.Fatalf("backofficed exited during %s: %v", during, err)
	default:
	}
}

// checkRestartRun checks the finished run's ledger against the audience
// and what the SMTP server received: every recipient sent once.
func checkRestartRun(t *testing.T, store *campaigns.Store, st campaigns.RunStatus, msgs []smtptest.Message, addresses []string) {
	t.Helper()
	c, n := st.Counts, int64(len(addresses))
	t.Logf("ledger: total %d, sent %d, failed %d, skipped %d, pending %d, sending %d; chunks %d/%d",
		c.Total, c.Sent, c.Failed, c.Skipped, c.Pending, c.Sending, st.ChunksDone, st.Chunks)
	if c.Total != n || c.Sent != n || c.Failed != 0 || c.Skipped != 0 ||
		c.Pending != 0 || c.Sending != 0 || c.Delivered != 0 || c.Undelivered != 0 {
		t.Errorf("finished run counts = %+v, want all %d recipients sent", c, len(addresses))
	}
	if st.Planning || st.ChunksDone != st.Chunks || st.Chunks == 0 {
		t.Errorf("finished run: planning %v, chunks done %d of %d", st.Planning, st.ChunksDone, st.Chunks)
	}
	entries := runEntries(t, store, restartCampaign, restartRun)
	if len(entries) != len(addresses) {
		t.Errorf("ledger has %d entries, want %d", len(entries), len(addresses))
	}
	ids := map[string]string{} // recipient -> Message-ID recorded in the ledger
	for _, e := range entries {
		if e.State != campaigns.EntrySent {
			t.Errorf("ledger entry of %s is %s (%s), want sent", e.Recipient, e.State, e.Detail)
		}
		ids[e.Recipient] = strings.Trim(e.Detail, "<>")
	}
	copies := map[string]int{}
	for _, m := range msgs {
		if len(m.To) != 1 {
			t.Errorf("a message went to %d recipients %v, want 1", len(m.To), m.To)
			continue
		}
		to := strings.ToLower(strings.Trim(m.To[0], "<>"))
		copies[to]++
		if id, ok := ids[to]; !ok {
			t.Errorf("a message went to %s, who is not in the ledger", to)
		} else if strings.Trim(headerOf(m, "Message-Id"), "<> ") != id {
			t.Errorf("a message to %s has Message-ID %q, the ledger says %q", to, headerOf(m, "Message-Id"), id)
		}
	}
	missing, duplicates := 0, 0
	for _, a := range addresses {
		switch n := copies[a]; {
		case n == 0:
			missing++
			if missing <= 10 {
				t.Errorf("%s received nothing", a)
			}
		case n > 1:
			duplicates += n - 1
			t.Logf("%s received %d copies", a, n)
		}
	}
	// At most one message per chunk is on the wire (and at most SMTPPool
	// in all) when Redis stops. A chunk keeps trying to record it until
	// Redis is back, so none is sent again: a duplicate means a send whose
	// record gave up (or a lost ledger write). The crash test's bound, one
	// per send on the wire, is reported for comparison.
	maxInFlight := min(restartPool, config.Config{Concurrency: restartConcurrency}.CampaignChunks(), 32)
	t.Logf("recipients %d, messages delivered %d, recipients missing %d, duplicates %d (want 0; crash bound: %d restarts x %d sends on the wire)",
		len(addresses), len(msgs), missing, duplicates, restartRestarts, maxInFlight)
	if missing > 0 {
		t.Errorf("%d recipients received nothing", missing)
	}
	if duplicates > 0 {
		t.Errorf("%d duplicates: sends on the wire at a Redis restart were sent again", duplicates)
	}
	if int64(len(msgs)) != c.Sent+int64(duplicates) {
		t.Errorf("the SMTP server received %d messages, the ledger counts %d sent and the audience explains %d duplicates", len(msgs), c.Sent, duplicates)
	}
}

// TestSMSCampaignSurvivesRedisRestarts is TestCampaignSurvivesRedisRestarts
// for an SMS campaign through a local Twilio API: an SMS found "sending"
// after an outage is failed as in doubt, never sent again, so an outage
// must cost neither a duplicate nor a failed recipient.
func TestSMSCampaignSurvivesRedisRestarts(t *testing.T) {
	t.Parallel()
	const recipients, rate, campaign, run = 1500, 200, "restart-sms", "restart-sms-1"
	bin := buildBinaries(t)
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	store := campaigns.NewStore(rdb, keyPrefix, nil)
	tw := twiliotest.Start(t, twiliotest.Options{Latency: time.Millisecond})
	var b strings.Builder
	b.WriteString("phone,name\n")
	phones := make([]string, recipients)
	for i := range phones {
		phones[i] = fmt.Sprintf("+42190510%04d", i)
		fmt.Fprintf(&b, "%s,Recipient %d\n", phones[i], i)
	}
	audience := filepath.Join(t.TempDir(), "audience.csv")
	if err := os.WriteFile(audience, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := daemonEnv(t, srv.URL(), map[string]string{
		"BACKOFFICE_TWILIO_ACCOUNT_SID": tw.AccountSID,
		"BACKOFFICE_TWILIO_AUTH_TOKEN":  tw.AuthToken,
		"BACKOFFICE_TWILIO_FROM":        "+421233000000",
		"BACKOFFICE_TWILIO_API_URL":     tw.URL,
		"BACKOFFICE_CONCURRENCY":        strconv.Itoa(restartConcurrency),
	})
	d := startDaemonEnv(t, bin, env)
	launchCampaign(t, d.url, jobs.CampaignLaunchArgs{
		Campaign: jobs.Campaign{
			Name: campaign, Channel: jobs.ChannelSMS, Template: "promo", Timezone: "UTC",
			Audience: jobs.Audience{File: audience}, RatePerSecond: rate,
		},
		Run: run, Trigger: "manual",
	})
	start := time.Now()
	outages := restartRedisDuring(t, srv, d, tw.Count, recipients)
	st := waitRunFinished(t, store, campaign, run, time.Minute, 10*time.Second, start, tw.Count)
	t.Logf("run finished %s after the launch", time.Since(start).Round(time.Second))
	d.checkAlive(t, "the run")
	d.stop(t)
	checkOutages(t, outages, recipients)

	c := st.Counts
	t.Logf("ledger: total %d, sent %d, failed %d, skipped %d, pending %d, sending %d; chunks %d/%d",
		c.Total, c.Sent, c.Failed, c.Skipped, c.Pending, c.Sending, st.ChunksDone, st.Chunks)
	for _, e := range runEntries(t, store, campaign, run, campaigns.EntryFailed, campaigns.EntrySkipped, campaigns.EntryPending, campaigns.EntrySending) {
		t.Errorf("ledger entry of %s is %s (%s), want sent", e.Recipient, e.State, e.Detail)
	}
	copies := map[string]int{}
	for _, m := range tw.Messages() {
		copies[m.To]++
	}
	missing, duplicates := 0, 0
	for _, p := range phones {
		switch n := copies[p]; {
		case n == 0:
			missing++
		case n > 1:
			duplicates += n - 1
		}
	}
	t.Logf("recipients %d, SMS accepted %d, recipients missing %d, duplicates %d", recipients, tw.Count(), missing, duplicates)
	if c.Total != recipients || c.Sent != recipients || missing > 0 || duplicates > 0 || tw.Count() != recipients {
		t.Errorf("counts %+v, %d SMS accepted, %d recipients missing, %d duplicates; want each of %d recipients sent one SMS",
			c, tw.Count(), missing, duplicates, recipients)
	}
}
