package web

import (
	"errors"
	"net/http"
	"strconv"

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
