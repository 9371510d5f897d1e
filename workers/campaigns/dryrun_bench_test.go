package campaigns

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/redistest"
)

// BenchmarkDryRunFileAudience dry-runs a 100,000-row audience file (one
// row in 100 fails to render) and reports the time per recipient and the
// peak Go heap the run adds, per recipient: what walking the audience
// holds in memory.
func BenchmarkDryRunFileAudience(b *testing.B) {
	const rows = 100_000
	srv := redistest.Start(b)
	t := setupOn(b, srv.Client(b), withTemplates(b, "", nil)) // no fallback: "de" fails
	path := filepath.Join(b.TempDir(), "aud.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "email,name,language")
	for i := range rows {
		lang := "sk"
		if i%100 == 0 {
			lang = "de" // no template and no fallback below: a render failure
		}
		fmt.Fprintf(w, "customer%07d@example.sk,Zákazník %d,%s\n", i, i, lang)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.Cleanup(func() { _ = os.RemoveAll(filepath.Join(t.dir, dryRunDir)) })
	camp := emailCampaign("bench", jobs.Audience{File: path})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := heapPeak(b)
	b.ResetTimer()
	for range b.N {
		rep, err := t.engine.DryRun(b.Context(), camp)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Rendered != rows || rep.FailuresTotal != rows/100 {
			b.Fatalf("rendered %d, failures %d", rep.Rendered, rep.FailuresTotal)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/recipient")
	b.ReportMetric(float64(peak()-base.HeapInuse)/rows, "peak-heap-bytes/recipient")
}

// heapPeak samples the heap in use every 20ms until the returned function
// is called, which returns the largest sample.
func heapPeak(b *testing.B) func() uint64 {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		peak uint64
	)
	stop := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapInuse)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	done := func() uint64 {
		once.Do(func() { close(stop); wg.Wait() })
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
	b.Cleanup(func() { done() })
	return done
}
