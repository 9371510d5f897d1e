package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
)

// Settings of the campaign the crash test runs.
const (
	crashRecipients  = 20000
	crashKills       = 3
	crashPool        = 3    // BACKOFFICE_SMTP_POOL
	crashConcurrency = 5    // BACKOFFICE_CONCURRENCY: 3 campaign chunks at once
	crashRate        = 2000 // sends per second
	crashSMTPDelay   = time.Millisecond
	crashCampaign    = "crash"
	crashRun         = "crash-1"
	keyPrefix        = "bo:" // the daemon's default BACKOFFICE_KEY_PREFIX
)

// crashKill is what the test saw at one SIGKILL.
type crashKill struct {
	at       time.Time
	elapsed  time.Duration    // since the launch
	accepted int              // messages the SMTP server had accepted
	counts   campaigns.Counts // the run's ledger counts
	claimed  []string         // recipients claimed ("sending") since the previous kill: the one a chunk was sending, and the rest of its batch
	inDoubt  int              // every recipient left in state "sending" (claimed, or being sent to)
}

// TestCampaignSurvivesKills sends an e-mail campaign from the daemon
// binary to a real SMTP server, SIGKILLs the daemon three times while it
// sends and restarts it on the same Redis (AOF) and data dir each time. In
// the end every recipient has the message, and the only duplicates are
// sends that were under way at a kill (the e-mail crash policy resends
// those, with the same Message-ID).
func TestCampaignSurvivesKills(t *testing.T) {
	t.Parallel()
	c := launchEmailCampaign(t, crashCampaign, crashRun, crashRecipients, crashPool, crashConcurrency, crashRate)
	bin, env, store, mail, addresses, d := c.bin, c.env, c.store, c.mail, c.addresses, c.d

	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("kill points drawn with seed %d", seed)
	var kills []crashKill
	prev := time.Time{}
	for k := range crashKills {
		// kill k+1 falls somewhere in quarter k+1 of the sends, and only
		// once the daemon now running has sent some itself
		threshold := crashRecipients * (4*k + 1 + rng.IntN(4)) / 16
		resumed := mail.Count()
		waitUntil(t, 3*time.Minute, fmt.Sprintf("kill %d: %d messages accepted", k+1, threshold), func() bool {
			n := mail.Count()
			return n >= threshold && n >= resumed+100
		})
		d.kill(t)
		kills = append(kills, observeKill(t, store, mail, prev))
		kills[k].elapsed = time.Since(start)
		prev = kills[k].at
		d = startDaemonEnv(t, bin, env)
	}

	// after a kill, the chunks it interrupted wait until the new daemon
	// finds the dead one's alive key expired and takes them over
	st := waitRunFinished(t, store, crashCampaign, crashRun, 5*time.Minute, 15*time.Second, start, mail.Count)
	t.Logf("run finished %s after the launch", time.Since(start).Round(time.Second))
	d.stop(t)
	checkCrashLedger(t, store, st)
	checkCrashDeliveries(t, store, mail.Messages(), addresses, kills)
}

// emailCampaign is an e-mail campaign the daemon binary sends from a
// Redis with AOF (so that it survives restarts) to a real SMTP server.
type emailCampaign struct {
	bin       string   // the binaries
	env       []string // the daemon's environment, to start it again
	srv       *redistest.Server
	store     *campaigns.Store
	mail      *smtptest.Server
	addresses []string // of the audience, in file order
	d         *e2eDaemon
}

// launchEmailCampaign starts Redis, an SMTP server that takes
// crashSMTPDelay to accept each message (a relay queues a message before it
// answers the data, so a daemon that stops then has sent it without
// knowing), and the daemon with an SMTP pool of pool and concurrency, and
// launches run of campaign to n recipients at rate per second.
func launchEmailCampaign(t *testing.T, campaign, run string, n, pool, concurrency int, rate float64) *emailCampaign {
	t.Helper()
	c := &emailCampaign{srv: redistest.Start(t, redistest.Options{AppendOnly: true})}
	rdb := redis.NewClient(&redis.Options{Addr: c.srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	c.store = campaigns.NewStore(rdb, keyPrefix, nil)
	c.mail = smtptest.Start(t, smtptest.Options{
		Drop: func(string, int) bool { time.Sleep(crashSMTPDelay); return false },
	})
	audience, addresses := writeAudience(t, n)
	c.addresses = addresses
	c.bin = buildBinaries(t)
	c.env = daemonEnv(t, c.srv.URL(), map[string]string{
		"BACKOFFICE_SMTP_URL":    c.mail.URL(),
		"BACKOFFICE_SMTP_POOL":   strconv.Itoa(pool),
		"BACKOFFICE_CONCURRENCY": strconv.Itoa(concurrency),
		"BACKOFFICE_MAIL_FROM":   "Shop <shop@shop.example>",
	})
	c.d = startDaemonEnv(t, c.bin, c.env)
	launchCampaign(t, c.d.url, jobs.CampaignLaunchArgs{
		Campaign: jobs.Campaign{
			Name: campaign, Channel: jobs.ChannelEmail, Template: "promo", Timezone: "UTC",
			Audience: jobs.Audience{File: audience}, RatePerSecond: rate,
		},
		Run: run, Trigger: "manual",
	})
	return c
}

// waitRunFinished polls run of campaign until it is finished, at most
// timeout, and returns its status. Every logEvery it logs the progress:
// messages received (received) and the ledger's counts since start.
func waitRunFinished(t *testing.T, store *campaigns.Store, campaign, run string, timeout, logEvery time.Duration,
	start time.Time, received func() int) campaigns.RunStatus {
	t.Helper()
	var st campaigns.RunStatus
	lastLog := time.Now()
	waitUntil(t, timeout, "the run to finish", func() bool {
		if time.Since(lastLog) > logEvery {
			lastLog = time.Now()
			t.Logf("%s: %d messages received, ledger %+v, chunks done %d of %d",
				time.Since(start).Round(time.Second), received(), st.Counts, st.ChunksDone, st.Chunks)
		}
		var err error
		st, err = store.Status(t.Context(), campaign, run)
		if err != nil {
			t.Fatalf("run status: %v", err)
		}
		return st.State == campaigns.StateFinished
	})
	return st
}

// writeAudience writes an audience file of n recipients and returns its
// path and their addresses.
func writeAudience(t *testing.T, n int) (string, []string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("email,name\n")
	addresses := make([]string, n)
	for i := range addresses {
		addresses[i] = fmt.Sprintf("r%05d@example.com", i)
		fmt.Fprintf(&b, "%s,Recipient %d\n", addresses[i], i)
	}
	path := filepath.Join(t.TempDir(), "audience.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, addresses
}

// launchCampaign enqueues a campaign:launch job through the API.
func launchCampaign(t *testing.T, url string, args jobs.CampaignLaunchArgs) {
	t.Helper()
	body, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/api/jobs/"+jobs.KindCampaignLaunch, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eOperator)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/jobs/%s: %v", jobs.KindCampaignLaunch, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs/%s: %s, want 202 Accepted: %s", jobs.KindCampaignLaunch, resp.Status, answer)
	}
}

// observeKill records the state of the run just after a kill: the daemon
// is gone, so nothing in Redis moves until the next one starts. prev is
// the time of the previous kill (zero for the first).
func observeKill(t *testing.T, store *campaigns.Store, mail *smtptest.Server, prev time.Time) crashKill {
	t.Helper()
	k := crashKill{at: time.Now(), accepted: mail.Count()}
	st, err := store.Status(t.Context(), crashCampaign, crashRun)
	if err != nil {
		t.Fatalf("run status at a kill: %v", err)
	}
	k.counts = st.Counts
	for _, e := range ledgerEntries(t, store, campaigns.EntrySending) {
		k.inDoubt++
		if e.At.After(prev) {
			k.claimed = append(k.claimed, e.Recipient)
		}
	}
	return k
}

// ledgerEntries returns the run's ledger entries in one of states (all
// when none is given).
func ledgerEntries(t *testing.T, store *campaigns.Store, states ...campaigns.EntryState) []campaigns.Entry {
	t.Helper()
	return runEntries(t, store, crashCampaign, crashRun, states...)
}

// runEntries returns the ledger entries of a run in one of states (all
// when none is given).
func runEntries(t *testing.T, store *campaigns.Store, campaign, run string, states ...campaigns.EntryState) []campaigns.Entry {
	t.Helper()
	var out []campaigns.Entry
	for cursor := uint64(0); ; {
		page, err := store.Entries(t.Context(), campaign, run, cursor, 1000, states...)
		if err != nil {
			t.Fatalf("read ledger: %v", err)
		}
		out = append(out, page.Entries...)
		if cursor = page.Cursor; cursor == 0 {
			return out
		}
	}
}

// checkCrashLedger checks that the finished run's counts add up: every
// recipient sent, none pending, in doubt, failed or skipped.
func checkCrashLedger(t *testing.T, store *campaigns.Store, st campaigns.RunStatus) {
	t.Helper()
	c := st.Counts
	t.Logf("ledger: total %d, sent %d, failed %d, skipped %d, pending %d, sending %d; chunks %d/%d",
		c.Total, c.Sent, c.Failed, c.Skipped, c.Pending, c.Sending, st.ChunksDone, st.Chunks)
	if c.Total != crashRecipients || c.Sent != crashRecipients || c.Failed != 0 || c.Skipped != 0 ||
		c.Pending != 0 || c.Sending != 0 || c.Delivered != 0 || c.Undelivered != 0 {
		t.Errorf("finished run counts = %+v, want all %d recipients sent", c, crashRecipients)
	}
	if sum := c.Sent + c.Delivered + c.Undelivered + c.Failed + c.Skipped; sum != c.Total {
		t.Errorf("sent+delivered+undelivered+failed+skipped = %d, total %d", sum, c.Total)
	}
	if st.Planning || st.ChunksDone != st.Chunks || st.Chunks == 0 {
		t.Errorf("finished run: planning %v, chunks done %d of %d", st.Planning, st.ChunksDone, st.Chunks)
	}
	entries := ledgerEntries(t, store)
	if len(entries) != crashRecipients {
		t.Errorf("ledger has %d entries, want %d", len(entries), crashRecipients)
	}
	for _, e := range entries {
		if e.State != campaigns.EntrySent {
			t.Errorf("ledger entry of %s is %s (%s), want sent", e.Recipient, e.State, e.Detail)
		}
	}
}

// checkCrashDeliveries checks what the SMTP server received against the
// audience, the ledger and the sends under way at each kill.
func checkCrashDeliveries(t *testing.T, store *campaigns.Store, msgs []smtptest.Message, addresses []string, kills []crashKill) {
	t.Helper()
	ids := map[string]string{} // recipient -> Message-ID recorded in the ledger
	for _, e := range ledgerEntries(t, store) {
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
		id, ok := ids[to]
		switch {
		case !ok:
			t.Errorf("a message went to %s, who is not in the audience", to)
		case m.Header == nil || strings.Trim(m.Header.Get("Message-Id"), "<> ") != id:
			t.Errorf("a message to %s has Message-ID %q, the ledger says %q", to, headerOf(m, "Message-Id"), id)
		}
	}
	claimed := map[string]bool{}
	// A chunk sends one message at a time, a daemon runs at most
	// CampaignChunks chunks (and a run at most 32 at once, the engine's
	// default), and at most SMTPPool messages are on the wire: the messages
	// in doubt at a kill. A chunk claims up to a batch of 50 ahead of its
	// sends; those it had not sent to yet get their first message.
	maxInFlight := min(crashPool, config.Config{Concurrency: crashConcurrency}.CampaignChunks(), 32)
	for i, k := range kills {
		t.Logf("kill %d at %s: %d messages accepted, ledger sent %d, %d recipients claimed since the previous kill (%d still sending in all)",
			i+1, k.elapsed.Round(time.Second), k.accepted, k.counts.Sent, len(k.claimed), k.inDoubt)
		if len(k.claimed) > maxInFlight*50 {
			t.Errorf("kill %d: %d recipients claimed, the config allows at most %d chunks x 50", i+1, len(k.claimed), maxInFlight)
		}
		if k.accepted <= 0 || k.accepted >= crashRecipients {
			t.Errorf("kill %d came after %d of %d messages: not during the run", i+1, k.accepted, crashRecipients)
		}
		for _, r := range k.claimed {
			claimed[r] = true
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
			if !claimed[a] {
				t.Errorf("%s received %d copies but was not being sent to at a kill", a, n)
			}
		}
	}
	t.Logf("recipients %d, messages delivered %d, recipients missing %d, duplicates %d (bound: %d kills x %d sends on the wire)",
		len(addresses), len(msgs), missing, duplicates, crashKills, maxInFlight)
	if missing > 0 {
		t.Errorf("%d recipients received nothing", missing)
	}
	if duplicates > crashKills*maxInFlight {
		t.Errorf("%d duplicates, more than the %d kills x %d sends on the wire", duplicates, crashKills, maxInFlight)
	}
}

func headerOf(m smtptest.Message, name string) string {
	if m.Header == nil {
		return ""
	}
	return m.Header.Get(name)
}

// kill SIGKILLs the daemon and waits until it is gone.
func (d *e2eDaemon) kill(t *testing.T) {
	t.Helper()
	d.once.Do(func() {
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		<-d.exited
	})
}

// waitUntil polls cond until it holds, failing t after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
