package customers

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/shopworks/backoffice/workers/redistest"
)

// BenchmarkImport imports a file of 100,000 customers per iteration into an
// empty Redis and reports rows/s and the peak heap in use, sampled at every
// checkpoint (the heap must stay flat however long the file is).
func BenchmarkImport(b *testing.B) {
	const rows = 100_000
	path := filepath.Join(b.TempDir(), "customers.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	writeBigCSV(w, rows, func(i int) bool { return i%100 == 1 })
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		b.Fatal(err)
	}
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	s := New(rdb, "bo:", Options{DefaultRegion: "SK"})
	var peak uint64
	sample := func(ImportSummary) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := rdb.FlushAll(b.Context()).Err(); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		sum, err := s.Import(b.Context(), ImportRequest{ImportID: fmt.Sprintf("bench-%d", i), Path: path, Progress: sample})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Rows != rows {
			b.Fatalf("imported %d rows, want %d", sum.Rows, rows)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
