package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
)

const (
	// recentImportsShown is how many uploads the dashboard lists.
	recentImportsShown = 10
	// scheduleRunsShown is how many recorded ticks it lists per entry.
	scheduleRunsShown = 3
	// dashboardReadTimeout bounds the Redis ping and the schedule and
	// campaign reads of one page, so that a Redis that hangs gives a
	// problem banner, not a page that never comes.
	dashboardReadTimeout = 5 * time.Second
)

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
		{"/api/campaigns", "Campaigns", "entries and latest runs as JSON"},
		{"/api/schedules", "Schedules", "entries, next ticks and last runs as JSON"},
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
	Caller    caller
	Now       time.Time
	Attention []string // paused runs and failed ticks, listed on top
	Queues    []queueRow
	Campaigns []campaignRow
	// CampaignsNote and SchedulesNote say why a section is empty or
	// partial (nothing configured, nothing loaded).
	CampaignsNote string
	Schedules     []scheduleRow
	SchedulesNote string
	Imports       []importRow
	Kinds         []jobs.Spec
	Links         []link
	Problem       string // shown on top when Redis could not be read
	RedisDown     bool   // Redis did not answer: nothing of it was read
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	c, _ := callerOf(r.Context())
	p := dashboardPage{Caller: c, Now: s.now(), Kinds: jobs.Kinds(), Links: dashboardLinks()}
	ctx, cancel := context.WithTimeout(r.Context(), dashboardReadTimeout)
	defer cancel()
	var problems []string
	problem := func(what string, err error, text string) {
		s.log.ErrorContext(ctx, "dashboard: "+what, "err", err)
		problems = append(problems, text)
	}
	// One ping first: a Redis that is down makes every read wait for its
	// own dial retries, so the page then shows what it has without it.
	if err := s.redis.Ping(ctx).Err(); err != nil {
		p.RedisDown = true
		problem("redis", err, "Redis is not answering: queues, imports and the runs of campaigns and schedules cannot be shown")
	}
	var err error
	if !p.RedisDown {
		if p.Queues, err = s.queueRows(); err != nil {
			problem("queues", err, "queues could not be read from Redis")
		}
	}
	views, err := s.scheduleViews(ctx, &p)
	if err != nil {
		problem("schedules", err, "the last runs of the schedules could not be read")
	}
	p.Schedules = scheduleRows(views, p.Now)
	if p.Campaigns, err = s.campaignRows(ctx, views, &p); err != nil {
		problem("campaigns", err, "campaign runs could not be read")
	}
	for _, r := range s.rejectedReloads() { // first: an operator's edit is not in force
		p.Attention = append(p.Attention, r.attentionLine(p.Now))
	}
	p.Attention = append(p.Attention, attention(p.Campaigns, p.Schedules)...)
	if !p.RedisDown {
		if p.Imports, err = s.recentImports(r); err != nil {
			problem("imports", err, "recent imports could not be read")
		}
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

// scheduleRow is one line of the schedules table.
type scheduleRow struct {
	Name, Type, Target, Cron, Zone string
	Enabled                        bool
	File                           string  // the full path, shown on hover
	Where                          string  // file base name:line
	Next                           *moment // the next tick in the entry's zone; nil when disabled
	Runs                           []tickRow
}

// tickRow is one recorded tick of a schedule entry.
type tickRow struct {
	When                     moment
	TaskID, Outcome, Message string
}

// campaignRow is one line of the campaigns table: a campaign entry of the
// schedule files, or a campaign launched once that no file has any more.
type campaignRow struct {
	Name, Channel string
	Enabled       bool
	InFiles       bool
	Next          *moment
	Latest        *runView // nil: never run, or Unread
	Unread        bool     // the latest run could not be read
}

// runView is a run's status with what the table derives from it.
type runView struct{ campaigns.RunStatus }

// Done is the number of recipients with an outcome: sent, delivered,
// undelivered, failed or skipped.
func (v runView) Done() int64 { return v.Counts.Total - v.Counts.Pending - v.Counts.Sending }

// StartedAt and EndedAt are the run's start and end in UTC, without the
// zone (the column header names it); EndedAt is "" while it runs.
func (v runView) StartedAt() string { return v.Started.UTC().Format(time.DateTime) }

func (v runView) EndedAt() string {
	if v.Finished.IsZero() {
		return ""
	}
	return v.Finished.UTC().Format(time.DateTime)
}

// Percent is Done as a whole percentage of the audience.
func (v runView) Percent() int64 {
	if v.Counts.Total == 0 {
		return 0
	}
	return v.Done() * 100 / v.Counts.Total
}

// scheduleViews returns every entry of the schedule set in force with its
// next tick and last runs. When the runs cannot be read (or Redis is
// down) it still returns the entries, without runs, and the error. It
// notes on p why there are none.
func (s *Server) scheduleViews(ctx context.Context, p *dashboardPage) ([]schedules.EntryView, error) {
	if s.schedules == nil {
		p.SchedulesNote = "The scheduler is not configured on this daemon."
		return nil, nil
	}
	set := s.schedules.Current()
	if set == nil {
		p.SchedulesNote = "No schedule files are loaded yet."
		return nil, nil
	}
	if p.RedisDown {
		return set.Entries(s.now(), 1), nil
	}
	views, err := s.schedules.View(ctx, 1, scheduleRunsShown)
	if err != nil {
		return set.Entries(s.now(), 1), err
	}
	if len(views) == 0 {
		p.SchedulesNote = "The schedule files define no entries."
	}
	return views, nil
}

func scheduleRows(views []schedules.EntryView, now time.Time) []scheduleRow {
	rows := make([]scheduleRow, 0, len(views))
	for _, v := range views {
		row := scheduleRow{Name: v.Name, Type: v.Type, Target: v.Target, Cron: v.Cron, Zone: v.Zone,
			Enabled: v.Enabled, File: v.File, Where: fmt.Sprintf("%s:%d", filepath.Base(v.File), v.Line),
			Next: nextTick(v, now)}
		loc := zoneOf(v)
		for _, r := range v.LastRuns {
			row.Runs = append(row.Runs, tickRow{When: momentOf(r.Tick.In(loc), now), TaskID: r.TaskID,
				Outcome: r.Outcome, Message: r.Message})
		}
		rows = append(rows, row)
	}
	return rows
}

// zoneOf is the zone an entry's ticks are shown in (UTC when it cannot be
// loaded, which a validated entry's zone always can).
func zoneOf(v schedules.EntryView) *time.Location {
	if len(v.Next) > 0 {
		return v.Next[0].Location()
	}
	if loc, err := time.LoadLocation(v.Zone); err == nil {
		return loc
	}
	return time.UTC
}

func nextTick(v schedules.EntryView, now time.Time) *moment {
	if len(v.Next) == 0 {
		return nil
	}
	m := momentOf(v.Next[0], now)
	return &m
}

// campaignRows lists the campaign entries of views, in file order, then the
// campaigns launched once that no schedule file has any more, by name;
// each with its latest run when the engine is configured. Rows whose run
// could not be read are marked Unread and the errors joined.
func (s *Server) campaignRows(ctx context.Context, views []schedules.EntryView, p *dashboardPage) ([]campaignRow, error) {
	var rows []campaignRow
	inFiles := map[string]bool{}
	for _, v := range views {
		if v.Type == schedules.TypeCampaign {
			inFiles[v.Name] = true
			rows = append(rows, campaignRow{Name: v.Name, Channel: v.Target, Enabled: v.Enabled, InFiles: true, Next: nextTick(v, p.Now)})
		}
	}
	if s.campaigns == nil {
		p.CampaignsNote = "The campaign engine is not configured on this daemon: runs cannot be shown."
		return rows, nil
	}
	unread := func() []campaignRow {
		for i := range rows {
			rows[i].Unread = true
		}
		return rows
	}
	if p.RedisDown {
		return unread(), nil // the banner says so already
	}
	launched, err := s.campaigns.Store().Campaigns(ctx)
	if err != nil {
		return unread(), err // do not wait for Redis once per row
	}
	var errs []error
	slices.Sort(launched)
	for _, name := range launched {
		if !inFiles[name] {
			rows = append(rows, campaignRow{Name: name})
		}
	}
	for i := range rows {
		st, err := s.latestStatus(ctx, rows[i].Name)
		switch {
		case err != nil:
			rows[i].Unread = true
			errs = append(errs, err)
		case st != nil:
			rows[i].Latest = &runView{*st}
			rows[i].Channel = cmp.Or(rows[i].Channel, st.Definition.Channel)
		}
	}
	if len(rows) == 0 && p.CampaignsNote == "" {
		p.CampaignsNote = "No campaign is defined in the schedule files, and none was ever launched."
	}
	return rows, errors.Join(errs...)
}

// attention lists what the person on call should look at first: paused
// runs and entries whose latest tick could not be enqueued.
func attention(cs []campaignRow, ss []scheduleRow) []string {
	var out []string
	for _, c := range cs {
		if c.Latest != nil && c.Latest.State == campaigns.StatePaused {
			out = append(out, fmt.Sprintf("Campaign %s: run %s is paused (%s).", c.Name, c.Latest.Run, cmp.Or(c.Latest.Reason, "no reason given")))
		}
	}
	for _, e := range ss {
		if len(e.Runs) > 0 && e.Runs[0].Outcome == schedules.OutcomeError {
			out = append(out, fmt.Sprintf("Schedule %s: the tick of %s could not be enqueued (%s).", e.Name, e.Runs[0].When.At, e.Runs[0].Message))
		}
	}
	return out
}

// moment is a time as the page shows it: in its own zone, and how far it
// is from now.
type moment struct{ At, FromNow string }

func momentOf(t, now time.Time) moment {
	layout := "2006-01-02 15:04 MST" // cron ticks fall on whole minutes
	if t.Second() != 0 {
		layout = "2006-01-02 15:04:05 MST"
	}
	return moment{At: t.Format(layout), FromNow: fromNow(t, now)}
}

// fromNow says coarsely how far t is from now: "in 2h 5m", "40s ago".
func fromNow(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d == 0 {
		return "now"
	}
	before, after := "in ", ""
	if d < 0 {
		d, before, after = -d, "", " ago"
	}
	var span string
	switch h := int(d.Hours()); {
	case d < time.Minute:
		span = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		span = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		span = fmt.Sprintf("%dh %dm", h, int(d.Minutes())%60)
	default:
		span = fmt.Sprintf("%dd %dh", h/24, h%24)
	}
	return before + span + after
}
