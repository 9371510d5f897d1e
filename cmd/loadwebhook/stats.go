package main

import (
	"fmt"
	"slices"
	"time"
)

// stats are the outcome of one load loop: how many calls, how many failed,
// and the latency of each.
type stats struct {
	calls   int
	errors  int
	elapsed time.Duration
	lat     []time.Duration
}

// merge adds the calls of one worker.
func (s *stats) merge(o stats) {
	s.calls += o.calls
	s.errors += o.errors
	s.lat = append(s.lat, o.lat...)
}

// rate is the calls per second.
func (s *stats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.calls) / s.elapsed.Seconds()
}

// percentile returns the p-th percentile latency (0 < p <= 100); lat must
// be sorted.
func (s *stats) percentile(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(float64(len(s.lat))*p/100+0.5) - 1
	return s.lat[max(0, min(i, len(s.lat)-1))]
}

// summary is one line: rate, p50, p99, max.
func (s *stats) summary() string {
	slices.Sort(s.lat)
	var worst time.Duration
	if len(s.lat) > 0 {
		worst = s.lat[len(s.lat)-1]
	}
	return fmt.Sprintf("%d calls in %v: %.0f/s, p50 %v, p99 %v, max %v, errors %d",
		s.calls, s.elapsed.Round(time.Millisecond), s.rate(), round(s.percentile(50)), round(s.percentile(99)), round(worst), s.errors)
}

func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}
