package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// twilioFake is workers/sms/twiliotest's server run in this command, with
// twiliotest.RandomFailures injected (switchable between runs) and the time
// of every request that got through them noted: the server records no
// times.
type twilioFake struct {
	*twiliotest.Server
	h    *harness
	seed uint64

	mu     sync.Mutex
	fail   func(n int, to string) (status, code int, retryAfter string) // nil: none
	counts twilioTally
}

// twilioTally counts the requests since the last begin.
type twilioTally struct {
	requests  int       // authenticated create requests
	throttled int       // answered 429
	errors    int       // answered 500
	passed    int       // let through to the server's own checks (accepted unless invalid)
	first     time.Time // first and last request let through
	last      time.Time
	perSecond []int // requests let through in each second from first
}

func startTwilio(seed uint64) *twilioFake {
	f := &twilioFake{h: &harness{}, seed: seed}
	f.Server = twiliotest.Start(f.h, twiliotest.Options{Fail: f.decide})
	return f
}

// begin injects p429 and p500 from now on, starts a new tally and returns
// how many messages the server has accepted so far.
func (f *twilioFake) begin(p429, p500 float64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = nil
	if p429 > 0 || p500 > 0 {
		f.fail = twiliotest.RandomFailures(f.seed, p429, p500)
	}
	f.counts = twilioTally{}
	return f.Count()
}

// decide is the server's Options.Fail.
func (f *twilioFake) decide(n int, to string) (status, code int, retryAfter string) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		status, code, retryAfter = f.fail(n, to)
	}
	t := &f.counts
	t.requests++
	switch status {
	case 0:
		if t.passed == 0 {
			t.first = now
		}
		t.last = now
		t.passed++
		sec := int(now.Sub(t.first) / time.Second)
		for len(t.perSecond) <= sec {
			t.perSecond = append(t.perSecond, 0)
		}
		t.perSecond[sec]++
	case http.StatusTooManyRequests:
		t.throttled++
	default:
		t.errors++
	}
	return status, code, retryAfter
}

// tally returns the counts since the last begin.
func (f *twilioFake) tally() twilioTally {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.counts
	t.perSecond = append([]int(nil), t.perSecond...)
	return t
}

// timeline is the rate in each span of the seconds from the first request
// let through, "200 201 150 ..." per second.
func (t twilioTally) timeline(span int) string {
	var parts []string
	for i := 0; i < len(t.perSecond); i += span {
		n := 0
		for _, c := range t.perSecond[i:min(i+span, len(t.perSecond))] {
			n += c
		}
		parts = append(parts, strconv.Itoa(n/span))
	}
	return strings.Join(parts, " ")
}

func (f *twilioFake) stop() { f.h.cleanup() }

// harness lets twiliotest.Start, written for tests, run in this command:
// it keeps the cleanups Start registers and runs them in cleanup.
// testing.TB cannot be implemented outside package testing; the embedded
// nil interface supplies its unexported method, and any method not
// overridden here would panic (twiliotest.Start calls only these).
type harness struct {
	testing.TB
	cleanups []func()
}

func (h *harness) Helper()          {}
func (h *harness) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }
func (h *harness) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("loadcampaign: "+format, args...))
}

func (h *harness) cleanup() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}
