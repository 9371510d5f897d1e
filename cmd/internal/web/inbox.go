package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/workers/inbox"
)

// Sizes of GET /api/inbox?limit=N.
const (
	defaultInboxLimit = 100
	maxInboxLimit     = 1000
)

func (s *Server) registerInbox() {
	s.api("GET /api/inbox", config.RoleViewer, s.listInbox)
	s.api("POST /api/inbox/{id}/resolve", config.RoleOperator, s.resolveInbox)
}

// inboxView is GET /api/inbox: the open entries of each kind, newest
// first, how many are open, and how many of each kind and reason were ever
// filed.
type inboxView struct {
	Messages  []inbox.Entry    `json:"messages"`
	Unmatched []inbox.Entry    `json:"unmatched"`
	Open      map[string]int64 `json:"open"`
	Counts    map[string]int64 `json:"counts"`
}

// listInbox answers GET /api/inbox[?kind=message|unmatched][&limit=N].
func (s *Server) listInbox(w http.ResponseWriter, r *http.Request) {
	if s.inbox == nil {
		writeError(w, http.StatusServiceUnavailable, "inbox: not configured on this daemon")
		return
	}
	limit, err := inboxLimit(r)
	if err != nil {
		writeFieldError(w, "limit", err.Error())
		return
	}
	kinds := inbox.Kinds()
	if k := r.URL.Query().Get("kind"); k != "" {
		if k != string(inbox.KindMessage) && k != string(inbox.KindUnmatched) {
			writeFieldError(w, "kind", "kind: want message or unmatched, got "+strconv.Quote(k))
			return
		}
		kinds = []inbox.Kind{inbox.Kind(k)}
	}
	ctx := r.Context()
	v := inboxView{Messages: []inbox.Entry{}, Unmatched: []inbox.Entry{}, Open: map[string]int64{}}
	for _, k := range kinds {
		entries, err := s.inbox.Open(ctx, k, limit)
		if err == nil {
			v.Open[string(k)], err = s.inbox.OpenCount(ctx, k)
		}
		if err != nil {
			s.storeError(w, r, "inbox", err)
			return
		}
		if k == inbox.KindMessage {
			v.Messages = entries
		} else {
			v.Unmatched = entries
		}
	}
	if v.Counts, err = s.inbox.Counts(ctx); err != nil {
		s.storeError(w, r, "inbox", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// resolveInbox answers POST /api/inbox/{id}/resolve: staff dealt with the
// entry. Resolving twice is harmless; the first resolution is kept.
func (s *Server) resolveInbox(w http.ResponseWriter, r *http.Request) {
	if s.inbox == nil {
		writeError(w, http.StatusServiceUnavailable, "inbox: not configured on this daemon")
		return
	}
	id := r.PathValue("id")
	by := "unknown"
	if c, ok := callerOf(r.Context()); ok {
		by = c.Name
	}
	err := s.inbox.Resolve(r.Context(), id, by, s.now())
	if errors.Is(err, inbox.ErrNotFound) {
		writeError(w, http.StatusNotFound, "inbox entry %q: not found", id)
		return
	}
	if err != nil {
		s.storeError(w, r, "inbox entry "+strconv.Quote(id), err)
		return
	}
	e, err := s.inbox.Get(r.Context(), id)
	if err != nil {
		s.storeError(w, r, "inbox entry "+strconv.Quote(id), err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// inboxLimit reads ?limit=N: default 100, 1..1000.
func inboxLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultInboxLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxInboxLimit {
		return 0, errors.New("limit: want a whole number from 1 to " + strconv.Itoa(maxInboxLimit) + ", got " + strconv.Quote(v))
	}
	return n, nil
}

// inboxCollector exposes the inbox on /metrics: entries open now, and
// entries ever filed by kind and reason (unknown SIDs, malformed numbers,
// empty bodies, ...), so the person on call sees unfiled input grow.
type inboxCollector struct {
	store  *inbox.Store
	log    *slog.Logger
	open   *prometheus.Desc
	filed  *prometheus.Desc
	errors prometheus.Counter
}

func newInboxCollector(store *inbox.Store, log *slog.Logger) *inboxCollector {
	return &inboxCollector{store: store, log: log,
		open: prometheus.NewDesc("backoffice_inbox_open", "Inbox entries staff have not resolved, by kind (message, unmatched).",
			[]string{"kind"}, nil),
		filed: prometheus.NewDesc("backoffice_inbox_filed_total", "Inbox entries ever filed, by kind and reason (empty for ordinary messages).",
			[]string{"kind", "reason"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "backoffice_inbox_scrape_errors_total",
			Help: "Scrapes of the inbox metrics that could not read Redis."}),
	}
}

// Describe implements prometheus.Collector.
func (c *inboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.filed
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector; a Redis failure is logged and
// counted, and the inbox series are left out of that scrape.
func (c *inboxCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errors.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.store.Counts(ctx)
	for _, k := range inbox.Kinds() {
		if err != nil {
			break
		}
		var n int64
		if n, err = c.store.OpenCount(ctx, k); err == nil {
			ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(n), string(k))
		}
	}
	if err != nil {
		c.errors.Inc()
		c.log.Warn("metrics: read inbox", "err", err)
		return
	}
	for field, n := range counts {
		kind, reason, _ := strings.Cut(field, ":")
		ch <- prometheus.MustNewConstMetric(c.filed, prometheus.CounterValue, float64(n), kind, reason)
	}
}
