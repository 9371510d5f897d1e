package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// load is one webhook load run.
type load struct {
	url, signURL, token string
	addr                string // host:port of url, dialled
	host, requestURI    string // of url, for the request line and Host
	concurrency         int
	duration            time.Duration
	phones              int
	replayRatio         float64
	rate                float64       // requests per second to send at; 0: as fast as answered
	warmup              time.Duration // sent before the measured duration, not timed
	run                 string        // random per run: MessageSids never repeat across runs
	next                atomic.Uint64 // message counter
	slots               atomic.Int64  // requests scheduled, with rate
	meter               cpuMeter
}

// loadResult is what a load run did.
type loadResult struct {
	stats
	service  stats             // latencies from when each request was sent, not when it was due
	replays  int               // requests that repeated an earlier one
	statuses map[int]int       // answers by HTTP status (0: no answer)
	accepted map[string]string // MessageSid -> sender, of every message answered 200
	cpu      cpuUse            // over the measured duration
}

// newLoad prepares a run against o.url, which must be http://.
func newLoad(o options, meter cpuMeter) (*load, error) {
	u, err := url.Parse(o.url)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://host[:port]/path (the generator speaks plain HTTP/1.1)", o.url)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return &load{url: o.url, signURL: o.signURL, token: o.token, addr: net.JoinHostPort(u.Hostname(), port),
		host: u.Host, requestURI: u.RequestURI(), concurrency: o.concurrency, duration: o.duration, phones: o.phones,
		replayRatio: o.replayRatio, rate: o.rate, warmup: o.warmup, run: randomHex(7), meter: meter}, nil
}

// worker is what one connection did.
type worker struct {
	stats
	service  []time.Duration // from the moment each request was sent
	replays  int
	statuses [1000]int // answers by status (0: no answer)
	ok       []uint64  // numbers of the messages answered 200, for replays and the check
}

// runLoad posts requests from l.concurrency connections until l.duration
// is up.
func (l *load) runLoad(ctx context.Context) loadResult {
	start := time.Now()
	measured := start.Add(l.warmup) // requests due before are sent and checked, not timed
	deadline := measured.Add(l.duration)
	cpuStart := make(chan cpuSample, 1)
	cpuTimer := time.AfterFunc(l.warmup, func() { cpuStart <- l.meter.sample() })
	workers := make([]worker, l.concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
		wg.Go(func() { l.work(ctx, &workers[i], rng, start, measured, deadline) })
	}
	wg.Wait()
	res := loadResult{statuses: map[int]int{}, accepted: map[string]string{}}
	res.elapsed = time.Since(measured)
	if ctx.Err() == nil { // the timer fired at measured, before deadline
		res.cpu = l.meter.since(<-cpuStart)
	} else {
		cpuTimer.Stop()
	}
	for i := range workers {
		w := &workers[i]
		res.merge(w.stats)
		res.service.lat = append(res.service.lat, w.service...)
		res.replays += w.replays
		for s, n := range w.statuses {
			if n > 0 {
				res.statuses[s] += n
			}
		}
		for _, n := range w.ok {
			res.accepted[l.sid(n)] = l.phone(n)
		}
	}
	return res
}

// work is one connection's loop: build the next request (a new message or,
// for l.replayRatio of them, one this worker had answered 200), send it,
// time it.
func (l *load) work(ctx context.Context, w *worker, rng *rand.Rand, start, measured, deadline time.Time) {
	conn := newRawConn(l.addr)
	defer conn.close()
	b := newRequestBuilder(l, l.requestURI, l.host)
	for ctx.Err() == nil {
		due, ok := l.slot(start, deadline)
		if !ok {
			return
		}
		replay := len(w.ok) > 0 && rng.Float64() < l.replayRatio
		var n uint64
		if replay {
			n = w.ok[rng.IntN(len(w.ok))]
			w.replays++
		} else {
			n = l.next.Add(1)
		}
		req := b.build(n)
		sent := time.Now()
		status := conn.do(ctx, req)
		done := time.Now()
		if !due.Before(measured) {
			w.lat = append(w.lat, done.Sub(due))
			w.service = append(w.service, done.Sub(sent))
			w.calls++
		}
		w.statuses[status]++
		switch {
		case status != http.StatusOK:
			w.errors++
		case !replay:
			w.ok = append(w.ok, n)
		}
	}
}

// slot waits for the next request's turn and returns when it was due:
// now in a closed loop (each connection sends when answered), or on the
// schedule of l.rate (an open loop, as Twilio's traffic is). Latency is
// measured from when a request was due, so a server that falls behind is
// charged for the wait it causes. ok is false once deadline is reached.
func (l *load) slot(start, deadline time.Time) (due time.Time, ok bool) {
	if l.rate <= 0 {
		now := time.Now()
		return now, now.Before(deadline)
	}
	n := l.slots.Add(1) - 1
	due = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	if !due.Before(deadline) {
		return due, false
	}
	time.Sleep(time.Until(due))
	return due, true
}
