package web

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// requestNote is filled in while a request is served and read by observe
// for its log line: who called.
type requestNote struct {
	caller string
}

type noteKey struct{}

// noteCaller records the caller's token name (never its secret) for the
// request's log line.
func noteCaller(ctx context.Context, name string) {
	if n, ok := ctx.Value(noteKey{}).(*requestNote); ok {
		n.caller = name
	}
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe wraps the mux: one log line and one metric sample per request,
// labelled with the route pattern that matched, and panic recovery.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		note := &requestNote{}
		r = r.WithContext(context.WithValue(r.Context(), noteKey{}, note))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "http handler panic", "panic", p, "method", r.Method, "path", logPath(r))
				if rec.status == 0 {
					writeError(rec, http.StatusInternalServerError, "internal error")
				}
			}
			s.finish(r, rec, note, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// secretPaths are the path prefixes whose rest is a secret or names a
// customer: a one-click unsubscribe token (/u/<token>) lets whoever holds
// it opt the customer out, and its payload names the customer or address;
// a customer lookup (/api/customers/<ref>) is by e-mail address or phone
// number as often as by id. The log shows only the prefix (the route and
// the caller are logged).
var secretPaths = []string{"/u/", "/api/customers/"}

// logPath returns the request's path as logged: with the secret segment of
// a secretPaths route replaced by "…". The path is cleaned first, so a
// request the mux only redirects ("//u/<token>", "/x/../u/<token>") or
// refuses (a PUT, a longer path) does not log its token either.
func logPath(r *http.Request) string {
	p := r.URL.Path
	clean := path.Clean("/" + p)
	for _, prefix := range secretPaths {
		if strings.HasPrefix(clean, prefix) {
			return prefix + "…"
		}
	}
	return p
}

// quietRoutes are logged at debug when they succeed: Twilio's webhooks come
// thousands a second in a burst, and each accepted one is logged anyway by
// the task that handles it ("task done" with its kind and task id). Refused
// ones (403 bad signature, 400) stay at info.
var quietRoutes = map[string]bool{
	"POST " + twilioSMSPath:    true,
	"POST " + twilioStatusPath: true,
}

// finish logs the request and counts it. r.Pattern is set by the mux on the
// request it was given, so it names the matched route here.
func (s *Server) finish(r *http.Request, rec *statusRecorder, note *requestNote, took time.Duration) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(route, strconv.Itoa(status), took)
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case status < 400 && quietRoutes[route]:
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", logPath(r)), slog.String("route", route),
		slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("took", took),
		slog.String("remote", r.RemoteAddr),
	}
	if note.caller != "" {
		attrs = append(attrs, slog.String("caller", note.caller))
	}
	s.log.LogAttrs(r.Context(), level, "http request", attrs...)
}
