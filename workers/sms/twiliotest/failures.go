package twiliotest

import (
	"math/rand/v2"
	"net/http"
	"sync"
)

// RandomFailures returns an Options.Fail that fails a share of requests
// the way Twilio and its load balancers do: p429 of them with 429, code
// 20429 and "Retry-After: 1", p500 of them with 500 and an HTML body. The
// same seed gives the same sequence; it is safe for concurrent use.
// RandomFailures(1, 0.05, 0.01) is 5% throttled, 1% server errors.
func RandomFailures(seed uint64, p429, p500 float64) func(n int, to string) (status, code int, retryAfter string) {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(int, string) (int, int, string) {
		mu.Lock()
		x := rng.Float64()
		mu.Unlock()
		switch {
		case x < p429:
			return http.StatusTooManyRequests, 20429, "1"
		case x < p429+p500:
			return http.StatusInternalServerError, 0, ""
		}
		return 0, 0, ""
	}
}
