package web_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
	"github.com/shopworks/backoffice/workers/sms"
)

// BenchmarkTwilioWebhook posts signed incoming-SMS webhooks, each a new
// message, to the real handler on loopback from 4*GOMAXPROCS connections:
// what one webhook costs, enqueue included (no worker runs). The request
// log goes to a JSON handler on io.Discard, as in production minus the
// file write.
func BenchmarkTwilioWebhook(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	reg := prometheus.NewRegistry()
	s, err := web.New(web.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Redis: rdb,
		Client: asynq.NewClientFromRedisClient(rdb), Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Customers: customers.New(rdb, "bo:", customers.Options{}), DataDir: b.TempDir(),
		PublicURL: publicURL, TwilioAuthToken: twilioToken, Gatherer: reg, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	b.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	var n atomic.Uint64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			form := inboundForm(fmt.Sprintf("SM%032x", n.Add(1)), "+421905123456", "Is my parcel on its way?")
			req, _ := http.NewRequest(http.MethodPost, ts.URL+smsPath, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(sms.SignatureHeader, sms.Sign(twilioToken, publicURL+smsPath, form))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("POST %s = %d, want 200", smsPath, resp.StatusCode)
				return
			}
		}
	})
}
