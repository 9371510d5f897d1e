package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopworks/backoffice/workers/sms"
)

// load is one webhook load run.
type load struct {
	url, signURL, token string
	concurrency         int
	duration            time.Duration
	phones              int
	replayRatio         float64
	rate                float64       // requests per second to send at; 0: as fast as answered
	warmup              time.Duration // sent before the measured duration, not timed
	run                 string        // random per run: MessageSids never repeat across runs
	next                atomic.Uint64 // message counter
	slots               atomic.Int64  // requests scheduled, with rate
	client              *http.Client
}

// loadResult is what a load run did.
type loadResult struct {
	stats
	service  stats             // latencies from when each request was sent, not when it was due
	replays  int               // requests that repeated an earlier one
	statuses map[int]int       // answers by HTTP status (0: no answer)
	accepted map[string]string // MessageSid -> sender, of every message answered 200
}

// request is one signed webhook request.
type request struct {
	sid, phone string
	body       string
	signature  string
}

func newLoad(o options) *load {
	tr := &http.Transport{MaxIdleConns: o.concurrency, MaxIdleConnsPerHost: o.concurrency,
		MaxConnsPerHost: o.concurrency, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &load{url: o.url, signURL: o.signURL, token: o.token, concurrency: o.concurrency,
		duration: o.duration, phones: o.phones, replayRatio: o.replayRatio, rate: o.rate, warmup: o.warmup, run: randomHex(7),
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// sid returns the MessageSid of the n-th message: SM, the run, n in hex.
func (l *load) sid(n uint64) string { return fmt.Sprintf("SM%s%018x", l.run, n) } // 2 + 14 + 18 characters

// phone returns the sender of the n-th message, one of l.phones Slovak
// mobile numbers +421905000000...
func (l *load) phone(n uint64) string { return fmt.Sprintf("+421905%06d", n%uint64(l.phones)) }

// newRequest builds and signs the n-th message, with the fields Twilio sends.
func (l *load) newRequest(n uint64) request {
	sid, from := l.sid(n), l.phone(n)
	form := url.Values{
		"ToCountry": {"SK"}, "ToState": {""}, "SmsMessageSid": {sid}, "NumMedia": {"0"}, "ToCity": {""},
		"FromZip": {""}, "SmsSid": {sid}, "FromState": {""}, "SmsStatus": {"received"}, "FromCity": {""},
		"Body": {"Load test message " + strconv.FormatUint(n, 10) + ": is my parcel on its way?"}, "FromCountry": {"SK"},
		"To": {"+421233000000"}, "ToZip": {""}, "NumSegments": {"1"}, "MessageSid": {sid},
		"AccountSid": {"AC00000000000000000000000000000000"}, "From": {from}, "ApiVersion": {"2010-04-01"},
	}
	return request{sid: sid, phone: from, body: form.Encode(), signature: sms.Sign(l.token, l.signURL, form)}
}

// run posts requests from l.concurrency goroutines until l.duration is up.
func (l *load) runLoad(ctx context.Context) loadResult {
	type worker struct {
		stats
		service  []time.Duration // from the moment each request was sent
		replays  int
		statuses map[int]int
		ok       []uint64 // numbers of the messages answered 200, for replays and the check
	}
	start := time.Now()
	measured := start.Add(l.warmup) // requests due before are sent and checked, not timed
	deadline := measured.Add(l.duration)
	workers := make([]worker, l.concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.statuses = map[int]int{}
		rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
		wg.Go(func() {
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
				req := l.newRequest(n) // the same n gives the same request, signature included
				sent := time.Now()
				status := l.post(ctx, req)
				if !due.Before(measured) {
					w.lat = append(w.lat, time.Since(due))
					w.service = append(w.service, time.Since(sent))
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
		})
	}
	wg.Wait()
	res := loadResult{statuses: map[int]int{}, accepted: map[string]string{}}
	res.elapsed = time.Since(measured)
	for _, w := range workers {
		res.merge(w.stats)
		res.service.lat = append(res.service.lat, w.service...)
		res.replays += w.replays
		for s, n := range w.statuses {
			res.statuses[s] += n
		}
		for _, n := range w.ok {
			res.accepted[l.sid(n)] = l.phone(n)
		}
	}
	return res
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

// post sends one request and returns its status (0 when none came back).
func (l *load) post(ctx context.Context, r request) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, strings.NewReader(r.body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(sms.SignatureHeader, r.signature)
	req.Header.Set(sms.IdempotencyHeader, r.sid+"-"+l.run)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
