package web

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shopworks/backoffice/cmd/internal/config"
)

// httpMetrics counts requests by route pattern and status code.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newHTTPMetrics registers the HTTP metrics and asynq's queue collector
// (sizes, latency, processed and failed per queue) on reg.
func newHTTPMetrics(reg prometheus.Registerer, inspector *asynq.Inspector) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backoffice_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "backoffice_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, metrics.NewQueueMetricsCollector(inspector)} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				return nil, fmt.Errorf("web: metrics: %w (one web.Server per registry)", err)
			}
			return nil, fmt.Errorf("web: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(route, code string, took time.Duration) {
	m.requests.WithLabelValues(route, code).Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
}

func (s *Server) registerMetrics() {
	h := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}, ErrorHandling: promhttp.ContinueOnError})
	s.mux.Handle("GET /metrics", s.authorize(config.RoleViewer, false, h))
}

// slogPrinter lets promhttp report gathering errors through slog.
type slogPrinter struct {
	log interface{ Error(string, ...any) }
}

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }
