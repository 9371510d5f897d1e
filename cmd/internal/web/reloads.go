package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopworks/backoffice/schedules"
)

// Reloads reports the reloads of configuration files the daemon refused
// (*backofficed's scheduler: schedule files and templates).
type Reloads interface {
	// RejectedReloads returns the refused reloads that still stand: files
	// on disk that are not in force because they are invalid.
	RejectedReloads() []Rejected
}

// Rejected is a refused reload: the files of What on disk were invalid at
// At, and the ones loaded before stay in force until they are fixed.
type Rejected struct {
	What     string    `json:"what"` // "schedules" or "templates"
	At       time.Time `json:"at"`
	Problems []string  `json:"problems"` // "file:line: field: message"
}

// RejectedSchedules is the Rejected of a refused reload of the schedule
// files (nil: none).
func RejectedSchedules(r *schedules.Rejection) []Rejected {
	if r == nil {
		return nil
	}
	problems := make([]string, len(r.Errors))
	for i, e := range r.Errors {
		problems[i] = e.Error()
	}
	return []Rejected{{What: "schedules", At: r.At, Problems: problems}}
}

// rejectedShown is how many problems of a refused reload the dashboard
// lists; GET /api/schedules has them all.
const rejectedShown = 5

// rejectedReloads returns the refused reloads, none when the daemon has no
// Reloads.
func (s *Server) rejectedReloads() []Rejected {
	if s.reloads == nil {
		return []Rejected{}
	}
	out := s.reloads.RejectedReloads()
	if out == nil {
		out = []Rejected{}
	}
	return out
}

// attentionLine is how the dashboard tells an operator that their edit of
// the files is not in force.
func (r Rejected) attentionLine(now time.Time) string {
	problems := r.Problems[:min(len(r.Problems), rejectedShown)]
	more := ""
	if n := len(r.Problems) - len(problems); n > 0 {
		more = fmt.Sprintf("; and %d more (GET /api/schedules lists them)", n)
	}
	return fmt.Sprintf("The %s files on disk were rejected %s (%s): the ones loaded before stay in force until they are fixed: %s%s.",
		strings.TrimSuffix(r.What, "s"), fromNow(r.At, now), r.At.UTC().Format("2006-01-02 15:04:05 UTC"), strings.Join(problems, "; "), more)
}
