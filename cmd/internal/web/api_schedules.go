package web

import (
	"net/http"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/schedules"
)

// What GET /api/schedules shows of each entry.
const (
	scheduleNextTicks = 3 // next ticks
	scheduleLastRuns  = 5 // last recorded ticks
)

func (s *Server) registerSchedules() {
	s.api("GET /api/schedules", config.RoleViewer, s.listSchedules)
}

// listSchedules answers GET /api/schedules: every entry of the schedule
// set in force with its next ticks and its last runs, newest first, and
// the reloads refused since (files on disk that are not in force).
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.scheduleSet(w); !ok {
		return
	}
	views, err := s.schedules.View(r.Context(), scheduleNextTicks, scheduleLastRuns)
	if err != nil {
		s.log.ErrorContext(r.Context(), "schedule runs read failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "schedules: the run records are not reachable; try again")
		return
	}
	if views == nil {
		views = []schedules.EntryView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": views, "rejected": s.rejectedReloads()})
}

// scheduleSet returns the schedule set in force, or answers 503 when this
// daemon has no scheduler or has not loaded its files yet.
func (s *Server) scheduleSet(w http.ResponseWriter) (*schedules.Set, bool) {
	if s.schedules == nil {
		writeError(w, http.StatusServiceUnavailable, "schedules: not configured on this daemon")
		return nil, false
	}
	set := s.schedules.Current()
	if set == nil {
		writeError(w, http.StatusServiceUnavailable, "schedules: the schedule files are not loaded yet; try again")
		return nil, false
	}
	return set, true
}
