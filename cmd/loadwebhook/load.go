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
	run                 string        // random per run: MessageSids never repeat across runs
	next                atomic.Uint64 // message counter
	slots               atomic.Int64  // requests scheduled, with rate
	client              *http.Client
}

// loadResult is what a load run did.
type loadResult struct {
	stats
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
		duration: o.duration, phones: o.phones, replayRatio: o.replayRatio, rate: o.rate, run: randomHex(7),
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// phone returns the sender number i: Slovak mobile numbers +421905000000...
func phone(i int) string { return fmt.Sprintf("+421905%06d", i) }

// newRequest builds and signs the n-th message, with the fields Twilio sends.
func (l *load) newRequest(n uint64) request {
	sid := fmt.Sprintf("SM%s%018x", l.run, n) // 2 + 14 + 18 = 34 characters
	from := phone(int(n % uint64(l.phones)))
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
		replays  int
		statuses map[int]int
		ok       []request
	}
	deadline := time.Now().Add(l.duration)
	workers := make([]worker, l.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
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
				var req request
				if replay {
					req = w.ok[rng.IntN(len(w.ok))]
					w.replays++
				} else {
					req = l.newRequest(l.next.Add(1))
				}
				status := l.post(ctx, req)
				w.lat = append(w.lat, time.Since(due))
				w.calls++
				w.statuses[status]++
				switch {
				case status != http.StatusOK:
					w.errors++
				case !replay:
					w.ok = append(w.ok, req)
				}
			}
		})
	}
	wg.Wait()
	res := loadResult{statuses: map[int]int{}, accepted: map[string]string{}}
	res.elapsed = time.Since(start)
	for _, w := range workers {
		res.merge(w.stats)
		res.replays += w.replays
		for s, n := range w.statuses {
			res.statuses[s] += n
		}
		for _, r := range w.ok {
			res.accepted[r.sid] = r.phone
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
