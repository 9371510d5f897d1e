package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/workers/campaigns"
)

// Limits of the campaign routes.
const (
	campaignRunsShown = 20       // GET /api/campaigns/{name}/runs
	maxReasonRunes    = 200      // reason of a pause or a cancel
	maxCampaignBody   = 64 << 10 // JSON body of a campaign action
)

func (s *Server) registerCampaigns() {
	s.api("GET /api/campaigns", config.RoleViewer, s.listCampaigns)
	s.api("GET /api/campaigns/{name}", config.RoleViewer, s.showCampaign)
	s.api("GET /api/campaigns/{name}/runs", config.RoleViewer, s.listCampaignRuns)
	s.api("POST /api/campaigns/{name}/run", config.RoleOperator, s.launchCampaign)
	s.api("POST /api/campaigns/{name}/test", config.RoleOperator, s.testCampaign)
	s.api("POST /api/campaigns/{name}/dry-run", config.RoleOperator, s.dryRunCampaign)
	s.api("POST /api/campaigns/{name}/pause", config.RoleOperator, s.pauseCampaign)
	s.api("POST /api/campaigns/{name}/resume", config.RoleOperator, s.resumeCampaign)
	s.api("POST /api/campaigns/{name}/cancel", config.RoleOperator, s.cancelCampaign)
	s.api("POST /api/campaigns/{name}/retry-failed", config.RoleOperator, s.retryFailedCampaign)
}

// campaignEntryView is a campaign entry of the schedule files.
type campaignEntryView struct {
	Name     string `json:"name"`
	Channel  string `json:"channel"`
	Template string `json:"template"`
	Cron     string `json:"cron"`
	Enabled  bool   `json:"enabled"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

func newCampaignEntryView(e schedules.CampaignEntry) campaignEntryView {
	return campaignEntryView{Name: e.Campaign.Name, Channel: e.Campaign.Channel, Template: e.Campaign.Template,
		Cron: e.Cron, Enabled: e.Enabled, File: e.File, Line: e.Line}
}

// campaignListItem is one entry of GET /api/campaigns: the entry and its
// latest run (null when it never ran).
type campaignListItem struct {
	campaignEntryView
	Latest *campaigns.RunStatus `json:"latest"`
}

// campaignTarget is the campaign a request names: its entry in the
// schedule files (nil for a campaign that has runs but was removed from the
// files since) and the run of ?run= ("" is the latest).
type campaignTarget struct {
	name  string
	entry *schedules.CampaignEntry
	run   string
}

// target reads the campaign of the path and, with withRun, ?run=. It
// answers the request itself and returns false when the routes are not
// configured, the name is no campaign or the run id is malformed. A
// campaign removed from the schedule files is still found by the routes
// that need no definition (needEntry false) while it has runs, so that a
// run under way can be paused or cancelled after its entry is deleted.
func (s *Server) target(w http.ResponseWriter, r *http.Request, needEntry, withRun bool) (campaignTarget, bool) {
	if s.campaigns == nil {
		writeError(w, http.StatusServiceUnavailable, "campaigns: the campaign engine is not configured on this daemon")
		return campaignTarget{}, false
	}
	set, ok := s.scheduleSet(w)
	if !ok {
		return campaignTarget{}, false
	}
	t := campaignTarget{name: r.PathValue("name")}
	if withRun {
		t.run = r.URL.Query().Get("run")
		if t.run != "" && !jobs.ValidRun(t.run) {
			writeFieldError(w, "run", fmt.Sprintf("run: must be a run id (1-64 letters, digits, '.', '_' or '-'), got %q", t.run))
			return campaignTarget{}, false
		}
	}
	if e, found := set.Campaign(t.name); found {
		t.entry = &e
		return t, true
	}
	if !needEntry && jobs.ValidName(t.name) {
		_, err := s.campaigns.Store().Latest(r.Context(), t.name)
		if err == nil {
			return t, true
		}
		if !errors.Is(err, campaigns.ErrNoRun) {
			s.campaignError(w, r, t.name, err)
			return campaignTarget{}, false
		}
	}
	writeError(w, http.StatusNotFound, "no campaign %q in the schedule files", t.name)
	return campaignTarget{}, false
}

// campaignError answers an error of the campaign engine: 404 for a run
// that does not exist, 409 for a run whose state does not allow the
// action, else it is logged and 503.
func (s *Server) campaignError(w http.ResponseWriter, r *http.Request, name string, err error) {
	switch {
	case errors.Is(err, campaigns.ErrNoRun):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, campaigns.ErrState), errors.Is(err, campaigns.ErrNothingToRetry):
		writeError(w, http.StatusConflict, "%v", err)
	default:
		s.log.ErrorContext(r.Context(), "campaign store failed", "campaign", name, "err", err)
		writeError(w, http.StatusServiceUnavailable, "campaign %s: the campaign store or the queue is not reachable; try again", name)
	}
}

// latestStatus is the status of a campaign's latest run; nil when it never
// ran.
func (s *Server) latestStatus(ctx context.Context, name string) (*campaigns.RunStatus, error) {
	st, err := s.campaigns.Status(ctx, name, "")
	if errors.Is(err, campaigns.ErrNoRun) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// listCampaigns answers GET /api/campaigns: every campaign entry of the
// schedule files with its latest run.
func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) {
	if s.campaigns == nil {
		writeError(w, http.StatusServiceUnavailable, "campaigns: the campaign engine is not configured on this daemon")
		return
	}
	set, ok := s.scheduleSet(w)
	if !ok {
		return
	}
	out := make([]campaignListItem, 0, len(set.Campaigns))
	for _, e := range set.Campaigns {
		latest, err := s.latestStatus(r.Context(), e.Campaign.Name)
		if err != nil {
			s.campaignError(w, r, e.Campaign.Name, err)
			return
		}
		out = append(out, campaignListItem{campaignEntryView: newCampaignEntryView(e), Latest: latest})
	}
	writeJSON(w, http.StatusOK, map[string]any{"campaigns": out})
}

// campaignView is GET /api/campaigns/{name}: the entry (null for a
// campaign removed from the schedule files) and the status of the run
// asked for, or of the latest run (null when it never ran).
type campaignView struct {
	Entry  *campaignEntryView   `json:"entry"`
	Status *campaigns.RunStatus `json:"status"`
}

func (s *Server) showCampaign(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, false, true)
	if !ok {
		return
	}
	var v campaignView
	if t.entry != nil {
		e := newCampaignEntryView(*t.entry)
		v.Entry = &e
	}
	var err error
	if t.run == "" {
		v.Status, err = s.latestStatus(r.Context(), t.name)
	} else {
		var st campaigns.RunStatus
		st, err = s.campaigns.Status(r.Context(), t.name, t.run)
		v.Status = &st
	}
	if err != nil {
		s.campaignError(w, r, t.name, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// listCampaignRuns answers GET /api/campaigns/{name}/runs: the newest
// runs, newest first.
func (s *Server) listCampaignRuns(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, false, false)
	if !ok {
		return
	}
	ids, err := s.campaigns.Store().Runs(r.Context(), t.name, campaignRunsShown)
	if err != nil {
		s.campaignError(w, r, t.name, err)
		return
	}
	runs := make([]campaigns.RunStatus, 0, len(ids))
	for _, id := range ids {
		st, err := s.campaigns.Status(r.Context(), t.name, id)
		if errors.Is(err, campaigns.ErrNoRun) {
			continue // indexed but its record is gone
		}
		if err != nil {
			s.campaignError(w, r, t.name, err)
			return
		}
		runs = append(runs, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

// launched is the answer to a launch.
type launched struct {
	Campaign  string `json:"campaign"`
	Run       string `json:"run"`
	StatusURL string `json:"status_url,omitempty"`
	RetryOf   string `json:"retry_of,omitempty"`
}

func statusURL(name, run string) string {
	return "/api/campaigns/" + url.PathEscape(name) + "?run=" + url.QueryEscape(run)
}

// launchCampaign answers POST /api/campaigns/{name}/run: a run of the
// entry's campaign now, enabled or not.
func (s *Server) launchCampaign(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, true, false)
	if !ok || !decodeBody(w, r, &struct{}{}) {
		return
	}
	run, err := s.campaigns.Launch(r.Context(), t.entry.Campaign, "", "manual")
	if err != nil {
		s.campaignError(w, r, t.name, err)
		return
	}
	s.logAction(r, "campaign launched", t.name, run)
	writeJSON(w, http.StatusAccepted, launched{Campaign: t.name, Run: run, StatusURL: statusURL(t.name, run)})
}

// testBody is the body of POST /api/campaigns/{name}/test.
type testBody struct {
	To         string `json:"to"`
	Language   string `json:"language"`
	CustomerID string `json:"customer_id"`
}

// testCampaign answers POST /api/campaigns/{name}/test: a campaign:test
// job sending the campaign's message to one address; the job's result
// says what was sent.
func (s *Server) testCampaign(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, true, false)
	var b testBody
	if !ok || !decodeBody(w, r, &b) {
		return
	}
	to := strings.TrimSpace(b.To)
	if t.entry.Campaign.Channel == jobs.ChannelSMS && to != "" && s.customers != nil {
		// as customers' numbers are read: a local one in the phone region
		e164, err := s.customers.NormalizePhone(to)
		if err != nil {
			writeFieldError(w, "to", err.Error())
			return
		}
		to = e164
	}
	args := jobs.CampaignTestArgs{Campaign: t.entry.Campaign, To: to, Language: b.Language, CustomerID: b.CustomerID}
	if err := args.Validate(); err != nil {
		writeDecodeError(w, err)
		return
	}
	s.enqueue(w, r, args)
}

// dryRunCampaign answers POST /api/campaigns/{name}/dry-run: a
// campaign:dryrun job whose result is the report of what a launch now
// would do.
func (s *Server) dryRunCampaign(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, true, false)
	if !ok || !decodeBody(w, r, &struct{}{}) {
		return
	}
	s.enqueue(w, r, jobs.CampaignDryRunArgs{Campaign: t.entry.Campaign})
}

// reasonBody is the body of a pause or a cancel.
type reasonBody struct {
	Reason string `json:"reason"`
}

func (s *Server) pauseCampaign(w http.ResponseWriter, r *http.Request) {
	s.changeRun(w, r, "paused", true, func(ctx context.Context, name, run, reason string) error {
		return s.campaigns.Pause(ctx, name, run, reason)
	})
}

func (s *Server) resumeCampaign(w http.ResponseWriter, r *http.Request) {
	s.changeRun(w, r, "resumed", false, func(ctx context.Context, name, run, _ string) error {
		return s.campaigns.Resume(ctx, name, run)
	})
}

func (s *Server) cancelCampaign(w http.ResponseWriter, r *http.Request) {
	s.changeRun(w, r, "cancelled", true, func(ctx context.Context, name, run, reason string) error {
		return s.campaigns.Cancel(ctx, name, run, reason)
	})
}

// changeRun runs one state change on the run of ?run= (default: the
// latest) and answers the run's status after it.
func (s *Server) changeRun(w http.ResponseWriter, r *http.Request, what string, withReason bool,
	change func(ctx context.Context, name, run, reason string) error) {
	t, ok := s.target(w, r, false, true)
	if !ok {
		return
	}
	var b reasonBody
	if withReason {
		if !decodeBody(w, r, &b) {
			return
		}
		if err := checkReason(b.Reason); err != nil {
			writeFieldError(w, "reason", err.Error())
			return
		}
	} else if !decodeBody(w, r, &struct{}{}) {
		return
	}
	ctx := r.Context()
	run, err := s.runOrLatest(ctx, t)
	if err == nil {
		err = change(ctx, t.name, run, strings.TrimSpace(b.Reason))
	}
	var st campaigns.RunStatus
	if err == nil {
		st, err = s.campaigns.Status(ctx, t.name, run)
	}
	if err != nil {
		s.campaignError(w, r, t.name, err)
		return
	}
	s.logAction(r, "campaign run "+what, t.name, run)
	writeJSON(w, http.StatusOK, st)
}

// retryFailedCampaign answers POST /api/campaigns/{name}/retry-failed: a
// new run of the failed recipients of the run of ?run= (default: the
// latest). Asking again returns the same new run.
func (s *Server) retryFailedCampaign(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, false, true)
	if !ok || !decodeBody(w, r, &struct{}{}) {
		return
	}
	ctx := r.Context()
	run, err := s.runOrLatest(ctx, t)
	var next string
	if err == nil {
		next, err = s.campaigns.RetryFailed(ctx, t.name, run)
	}
	if err != nil {
		s.campaignError(w, r, t.name, err)
		return
	}
	s.logAction(r, "campaign retry launched", t.name, next, "retry_of", run)
	writeJSON(w, http.StatusAccepted, launched{Campaign: t.name, Run: next, StatusURL: statusURL(t.name, next), RetryOf: run})
}

// runOrLatest is the run a request names, or the campaign's latest: the
// answer then names the run that was acted on.
func (s *Server) runOrLatest(ctx context.Context, t campaignTarget) (string, error) {
	if t.run != "" {
		return t.run, nil
	}
	return s.campaigns.Store().Latest(ctx, t.name)
}

// logAction logs an operator's action on a campaign and who did it.
func (s *Server) logAction(r *http.Request, msg, name, run string, attrs ...any) {
	c, _ := callerOf(r.Context())
	s.log.InfoContext(r.Context(), msg, append([]any{"campaign", name, "run", run, "caller", c.Name}, attrs...)...)
}

// checkReason accepts one line of at most maxReasonRunes characters.
func checkReason(reason string) error {
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReasonRunes ||
		strings.IndexFunc(reason, notOneLine) >= 0 {
		return fmt.Errorf("reason: must be one line of at most %d characters", maxReasonRunes)
	}
	return nil
}

// notOneLine reports whether r has no place in a one-line text: a control
// character, a line or paragraph separator (U+2028, U+2029), or a format
// character such as a bidi override (U+202E) that makes the line read
// otherwise than it is.
func notOneLine(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf)
}

// decodeBody decodes a JSON object body into v strictly: unknown fields,
// values of the wrong type and trailing data are refused with a 400 that
// names the field. An empty body leaves v as it is. It answers the
// request itself and returns false on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCampaignBody))
	if err != nil {
		writeBodyError(w, err, maxCampaignBody)
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		err = endOfJSON(dec)
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.Is(err, errTrailingData):
		writeError(w, http.StatusBadRequest, "request body: %v", err)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		writeFieldError(w, typeErr.Field, fmt.Sprintf("field %s: must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeFieldError(w, field, "field "+field+": unknown field")
	default:
		writeError(w, http.StatusBadRequest, "request body: invalid JSON: %v", err)
	}
	return false
}
