package campaigns

import (
	"fmt"
	"time"

	"github.com/shopworks/backoffice/jobs"
)

// quietHours is an SMS campaign's daily window in which nothing is sent,
// in minutes after local midnight; it may wrap midnight (21:00-08:00).
type quietHours struct {
	from, to int
	set      bool
}

func parseQuiet(s string) (quietHours, error) {
	if s == "" {
		return quietHours{}, nil
	}
	from, to, err := jobs.ParseQuietHours(s)
	if err != nil {
		return quietHours{}, fmt.Errorf("quiet_hours: %w", err)
	}
	return quietHours{from: from, to: to, set: true}, nil
}

// holdUntil returns when the window that now falls in ends, in loc; the
// zero time when now is outside it. Local clocks are used as they are, so
// a DST change shifts the window with the clock.
func (q quietHours) holdUntil(now time.Time, loc *time.Location) time.Time {
	if !q.set {
		return time.Time{}
	}
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	var inside bool
	if q.from < q.to {
		inside = m >= q.from && m < q.to
	} else {
		inside = m >= q.from || m < q.to
	}
	if !inside {
		return time.Time{}
	}
	end := time.Date(local.Year(), local.Month(), local.Day(), q.to/60, q.to%60, 0, 0, loc)
	if !end.After(local) {
		end = time.Date(local.Year(), local.Month(), local.Day()+1, q.to/60, q.to%60, 0, 0, loc)
	}
	return end
}
