package campaigns

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"github.com/shopworks/backoffice/workers/redistest"
)

// usedMemory returns Redis's used_memory in bytes.
func usedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	b.Helper()
	info, err := rdb.Info(b.Context(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// BenchmarkPlanFileAudience plans a 100,000-row audience file into a run
// per iteration and reports the time and Redis memory per recipient.
func BenchmarkPlanFileAudience(b *testing.B) {
	const rows = 100_000
	t := setupBench(b)
	path := filepath.Join(b.TempDir(), "aud.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "email,name,language,coupon")
	for i := range rows {
		fmt.Fprintf(w, "customer%07d@example.sk,Zákazník %d,sk,C%06d\n", i, i, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	camp := emailCampaign("bench", jobs.Audience{File: path})
	before := usedMemory(b, t.rdb)
	b.ResetTimer()
	for i := range b.N {
		if err := t.engine.HandleLaunch(b.Context(), launchArgs(camp, fmt.Sprintf("r%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := float64(usedMemory(b, t.rdb)-before) / float64(b.N*rows)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/recipient")
	b.ReportMetric(per, "redis-bytes/recipient")
}

// BenchmarkPlanCustomerAudience plans 100,000 customers selected by tag.
func BenchmarkPlanCustomerAudience(b *testing.B) {
	const n = 100_000
	t := setupBench(b)
	var sb strings.Builder
	sb.WriteString("id,email,language,tags\n")
	for i := range n {
		fmt.Fprintf(&sb, "c%07d,c%07d@example.sk,sk,n\n", i, i)
	}
	path := t.writeFile(b, "customers.csv", sb.String())
	if _, err := t.customers.Import(b.Context(), customers.ImportRequest{ImportID: "bench", Path: path}); err != nil {
		b.Fatal(err)
	}
	camp := emailCampaign("bench", jobs.Audience{Tags: []string{"n"}})
	before := usedMemory(b, t.rdb)
	b.ResetTimer()
	for i := range b.N {
		if err := t.engine.HandleLaunch(b.Context(), launchArgs(camp, fmt.Sprintf("r%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
	b.ReportMetric(float64(usedMemory(b, t.rdb)-before)/float64(b.N*n), "redis-bytes/recipient")
}

// setupBench is setup for a benchmark: chunks of 500, as in production.
func setupBench(b *testing.B) *bundle {
	b.Helper()
	srv := redistest.Start(b)
	return setupOn(b, srv.Client(b), func(c *Config) { c.ChunkSize = 500 })
}

// BenchmarkSendEmailChunks sends a 2,000-recipient file audience (4 chunks
// of 500, one after another) through HandleChunk into a real SMTP sink
// over one connection, per iteration: what one chunk costs per message,
// Redis and SMTP round trips included. With -cpuprofile and -memprofile it
// shows where a campaign's CPU and allocations go.
func BenchmarkSendEmailChunks(b *testing.B) {
	const rows = 2000
	srv, withMail := withSMTP(b, smtptest.Options{Sink: true})
	rs := redistest.Start(b)
	t := setupOn(b, rs.Client(b), func(c *Config) { withMail(c); c.ChunkSize = 500 })
	var sb strings.Builder
	sb.WriteString("email,name,language\n")
	for i := range rows {
		fmt.Fprintf(&sb, "customer%05d@example.sk,Zákazník %d,sk\n", i, i)
	}
	path := t.writeFile(b, "aud.csv", sb.String())
	camp := emailCampaign("bench", jobs.Audience{File: path})
	camp.RatePerSecond = 10000
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		run := fmt.Sprintf("r%d", i)
		if err := t.engine.HandleLaunch(b.Context(), launchArgs(camp, run)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for n := range rows / 500 {
			if err := t.engine.HandleChunk(b.Context(), jobs.CampaignChunkArgs{Campaign: "bench", Run: run, Chunk: n}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if got, want := srv.Count(), b.N*rows; got != want {
		b.Fatalf("sink got %d messages, want %d", got, want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/message")
}
