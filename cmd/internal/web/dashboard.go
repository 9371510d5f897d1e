package web

import (
	"cmp"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// recentImportsShown is how many uploads the dashboard lists.
const recentImportsShown = 10

func (s *Server) registerDashboard() {
	s.page("GET /{$}", config.RoleViewer, http.HandlerFunc(s.dashboard))
}

// link is one entry of the dashboard's navigation.
type link struct {
	Href, Label, Note string
}

// dashboardLinks lists the other pages. An area with a page adds one line.
func dashboardLinks() []link {
	return []link{
		{"/monitor/", "Task monitor", "every task by queue and state (asynqmon)"},
		{"/api/kinds", "Job kinds", "the catalogue as JSON"},
		{"/metrics", "Metrics", "Prometheus"},
	}
}

// queueRow is one line of the queues table.
type queueRow struct {
	asynq.QueueInfo
	Weight int
}

// importRow is one line of the recent imports table.
type importRow struct {
	ID      string
	State   string
	Summary *customers.ImportSummary
}

type dashboardPage struct {
	Caller  caller
	Now     time.Time
	Queues  []queueRow
	Imports []importRow
	Kinds   []jobs.Spec
	Links   []link
	Problem string // shown on top when Redis could not be read
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	c, _ := callerOf(r.Context())
	p := dashboardPage{Caller: c, Now: s.now(), Kinds: jobs.Kinds(), Links: dashboardLinks()}
	var problems []string
	var err error
	if p.Queues, err = s.queueRows(); err != nil {
		s.log.ErrorContext(r.Context(), "dashboard: queues", "err", err)
		problems = append(problems, "queues could not be read from Redis")
	}
	if p.Imports, err = s.recentImports(r); err != nil {
		s.log.ErrorContext(r.Context(), "dashboard: imports", "err", err)
		problems = append(problems, "recent imports could not be read")
	}
	p.Problem = strings.Join(problems, "; ")
	s.render(w, http.StatusOK, "dashboard.html", p)
}

// queueRows returns every configured queue and every other queue asynq
// knows, heaviest first. A queue nothing was ever enqueued to shows zeros.
func (s *Server) queueRows() ([]queueRow, error) {
	weights := jobs.Queues()
	known, err := s.inspector.Queues()
	if err != nil {
		return nil, err
	}
	names := slices.Clone(known)
	for q := range weights {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(weights[b], weights[a]), cmp.Compare(a, b)) })
	rows := make([]queueRow, 0, len(names))
	for _, q := range names {
		info := &asynq.QueueInfo{Queue: q} // asynq has no stats of a queue never used
		if slices.Contains(known, q) {
			if info, err = s.inspector.GetQueueInfo(q); err != nil {
				return nil, err
			}
		}
		rows = append(rows, queueRow{QueueInfo: *info, Weight: weights[q]})
	}
	return rows, nil
}

// recentImports lists the newest uploads (IDs start with their time) with
// their state.
func (s *Server) recentImports(r *http.Request) ([]importRow, error) {
	entries, err := os.ReadDir(s.importsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".csv"); ok && e.Type().IsRegular() && validImportID(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	rows := make([]importRow, 0, min(len(ids), recentImportsShown))
	for _, id := range ids[:min(len(ids), recentImportsShown)] {
		v, err := s.importStatus(r, id)
		switch {
		case errors.Is(err, customers.ErrNotFound):
			rows = append(rows, importRow{ID: id, State: "unknown"})
		case err != nil:
			return nil, err
		default:
			rows = append(rows, importRow{ID: id, State: v.State, Summary: v.Summary})
		}
	}
	return rows, nil
}
