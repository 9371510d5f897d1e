package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/workers/customers"
)

// Timeline sizes of GET /api/customers/{ref}?events=N.
const (
	defaultEvents = 20
	maxEvents     = 500
)

func (s *Server) registerCustomers() {
	s.api("GET /api/customers/{ref}", config.RoleViewer, s.showCustomer)
}

// customerView is a customer with the newest events of its timeline.
type customerView struct {
	Customer customers.Customer `json:"customer"`
	Events   []customers.Event  `json:"events"`
}

// showCustomer finds a customer by id, e-mail or phone number.
func (s *Server) showCustomer(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	n, err := eventsParam(r)
	if err != nil {
		writeFieldError(w, "events", err.Error())
		return
	}
	c, err := s.customers.Find(r.Context(), ref)
	events := []customers.Event{}
	if err == nil && n > 0 { // the store reads 0 as its default
		events, err = s.customers.Timeline(r.Context(), c.ID, int64(n))
	}
	if errors.Is(err, customers.ErrNotFound) { // also when deleted since Find
		writeError(w, http.StatusNotFound, "customer %q: not found", ref)
		return
	}
	if err != nil {
		// The ref is an e-mail address or a phone number as often as an
		// id, and the store's errors repeat it: the log gets neither.
		s.storeErrorLogged(w, r, "customer "+strconv.Quote(ref), "customer lookup", rootCause(err), err)
		return
	}
	writeJSON(w, http.StatusOK, customerView{Customer: c, Events: events})
}

// eventsParam reads ?events=N: default 20, 0..500.
func eventsParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("events")
	if v == "" {
		return defaultEvents, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxEvents {
		return 0, errors.New("events: want a whole number from 0 to " + strconv.Itoa(maxEvents) + ", got " + strconv.Quote(v))
	}
	return n, nil
}

// storeError answers a store failure: a validation error of the store
// (an invalid ref) is the caller's 400; anything else is logged and 503.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.storeErrorLogged(w, r, what, what, err, err)
}

// storeErrorLogged is storeError with what the log says of the failure
// (logWhat, logErr) apart from what the caller is told.
func (s *Server) storeErrorLogged(w http.ResponseWriter, r *http.Request, what, logWhat string, logErr, err error) {
	var fe *customers.FieldError
	if errors.As(err, &fe) {
		writeFieldError(w, fe.Field, what+": "+err.Error())
		return
	}
	s.log.ErrorContext(r.Context(), "store read failed", "what", logWhat, "err", logErr)
	writeError(w, http.StatusServiceUnavailable, "%s: the store is not reachable; try again", what)
}

// rootCause is the innermost error of a chain of single wraps: the
// failure itself (Redis's), without the context the wraps added.
func rootCause(err error) error {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err
		}
		err = inner
	}
}
