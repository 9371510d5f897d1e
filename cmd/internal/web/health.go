package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
)

// readyTimeout bounds the Redis PING of /readyz.
const readyTimeout = time.Second

func (s *Server) registerHealth() {
	s.open("GET /healthz", s.healthz)
	s.open("GET /readyz", s.readyz)
}

// healthz answers while the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 when Redis answers PING within readyTimeout. The reason
// of a 503 names the failure class only: Redis errors can carry addresses,
// which a probe on the open internet should not learn.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := redisconn.Ping(ctx, s.redis); err != nil {
		s.log.WarnContext(r.Context(), "readyz: redis ping failed", "err", err)
		reason := "redis: not answering"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "redis: no answer within " + readyTimeout.String()
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(reason + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
