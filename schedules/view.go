package schedules

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/jobs"
)

// Entry types of an EntryView.
const (
	TypeCampaign = "campaign"
	TypeJob      = "job"
)

// EntryView is one schedule entry as the CLI, the API and the dashboard
// show it.
type EntryView struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`   // TypeCampaign or TypeJob
	Target   string          `json:"target"` // a campaign's channel, a job's kind
	Cron     string          `json:"cron"`
	Zone     string          `json:"zone"` // the zone the cron expression is read in
	Enabled  bool            `json:"enabled"`
	File     string          `json:"file"`
	Line     int             `json:"line"`
	Next     []time.Time     `json:"next"` // the next ticks; none for a disabled entry
	Campaign *jobs.Campaign  `json:"campaign,omitempty"`
	Args     json.RawMessage `json:"args,omitempty"`
	LastRuns []Run           `json:"last_runs"` // newest first
}

// Entries returns every entry of s, campaigns first, each with its next
// ticks after now (next of them) when it is enabled.
func (s *Set) Entries(now time.Time, next int) []EntryView {
	var out []EntryView
	for _, c := range s.Campaigns {
		camp := c.Campaign
		out = append(out, s.view(EntryView{Name: camp.Name, Type: TypeCampaign, Target: camp.Channel,
			Cron: c.Cron, Enabled: c.Enabled, File: c.File, Line: c.Line, Campaign: &camp}, now, next))
	}
	for _, j := range s.Jobs {
		out = append(out, s.view(EntryView{Name: j.Name, Type: TypeJob, Target: j.Kind,
			Cron: j.Cron, Enabled: j.Enabled, File: j.File, Line: j.Line, Args: j.Args}, now, next))
	}
	return out
}

func (s *Set) view(v EntryView, now time.Time, next int) EntryView {
	v.Zone = s.Zone(v.Name)
	v.Next = []time.Time{}
	if v.Enabled {
		if times, _ := s.NextTimes(v.Name, now, next); times != nil { // every entry of s has a spec
			v.Next = times
		}
	}
	return v
}

// View returns the entries of s with their next ticks after now and their
// last runs as recorded in Redis: the data of GET /api/schedules.
func View(ctx context.Context, s *Set, rdb redis.UniversalClient, prefix string, now time.Time, next, runs int) ([]EntryView, error) {
	views := s.Entries(now, next)
	for i := range views {
		last, err := LastRuns(ctx, rdb, prefix, views[i].Name, runs)
		if err != nil {
			return nil, err
		}
		views[i].LastRuns = append([]Run{}, last...)
	}
	return views, nil
}

// View is the package function View for the set in force, at the
// runner's clock.
func (r *Runner) View(ctx context.Context, next, runs int) ([]EntryView, error) {
	s := r.Current()
	if s == nil {
		return nil, nil
	}
	return View(ctx, s, r.o.Redis, r.o.KeyPrefix, r.now(), next, runs)
}
