package email

import (
	"testing"
	"time"
)

func BenchmarkTmpBuild(b *testing.B) {
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		i++
		if _, err := build(benchMessage(i), time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
