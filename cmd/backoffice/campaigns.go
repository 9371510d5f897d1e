package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
)

const campaignUsage = `usage:
  backoffice campaign list
      every campaign of the daemon's schedule files and its latest run
  backoffice campaign status NAME [--run ID]
      a run's state, counts, send rate and progress (default: the latest run)
  backoffice campaign run NAME
      launch a run now, also of a disabled entry; prints the run id
  backoffice campaign test NAME --to ADDRESS_OR_PHONE [--lang L] [--customer ID] [--wait 60s]
      send the campaign's message, marked [TEST], to one address and print
      what was sent (rendered as customer ID, else with sample data)
  backoffice campaign dry-run NAME [--wait 10m]
      count and render the audience as a launch now would, sending nothing
  backoffice campaign pause NAME [--reason TEXT] [--run ID]
  backoffice campaign resume NAME [--run ID]
  backoffice campaign cancel NAME [--reason TEXT] [--run ID]
      stop sending, send again, or end a run for good (default: the latest run)
  backoffice campaign retry-failed NAME [--run ID]
      launch a new run of the failed recipients of a run; prints its id

test and dry-run wait for their job (--wait 0: do not wait); when the wait
ends first, the job goes on: backoffice --json jobs show TASK_ID.
`

func runCampaign(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "campaign", campaignUsage, args, map[string]func(context.Context, *app, []string) error{
		"list":         campaignList,
		"status":       campaignStatus,
		"run":          campaignRun,
		"test":         campaignTest,
		"dry-run":      campaignDryRun,
		"pause":        campaignChange("pause", true),
		"resume":       campaignChange("resume", false),
		"cancel":       campaignChange("cancel", true),
		"retry-failed": campaignRetryFailed,
	})
}

// campaignPath is the API path of a campaign, or of one of its actions.
func campaignPath(name string, action ...string) string {
	p := "/api/campaigns/" + url.PathEscape(name)
	for _, s := range action {
		p += "/" + s
	}
	return p
}

// campaignErr explains an API error of a campaign command: the daemon's
// 404s say what is missing (no such campaign, never launched, no such run).
func campaignErr(cmd, name string, err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Message != "" {
		err = errors.New(ae.Message)
	}
	return fmt.Errorf("campaign %s %s: %w", cmd, name, err)
}

// oneName parses a subcommand that takes one campaign NAME.
func oneName(fs *flag.FlagSet, a *app, cmd string, args []string) (string, error) {
	pos, err := parseInterspersed(fs, a, campaignUsage, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef(campaignUsage, "campaign %s: want one campaign NAME", cmd)
	}
	if err := checkCampaignName(pos[0]); err != nil {
		return "", usagef(campaignUsage, "campaign %s: %v", cmd, err)
	}
	return pos[0], nil
}

// checkCampaignName refuses a NAME that no campaign can have before it goes
// into a URL path: "." and ".." in particular, which url.PathEscape leaves
// as they are, would make the path name another resource.
func checkCampaignName(name string) error {
	if name == "." || name == ".." {
		return fmt.Errorf("NAME %q is not a campaign name", name)
	}
	if !jobs.ValidName(name) {
		return fmt.Errorf("NAME %q is not a campaign name (1-63 lower-case letters, digits or '-')", name)
	}
	return nil
}

// campaignEntry is a campaign entry of the schedule files as the API
// shows it, with its latest run in a list.
type campaignEntry struct {
	Name     string               `json:"name"`
	Channel  string               `json:"channel"`
	Template string               `json:"template"`
	Cron     string               `json:"cron"`
	Enabled  bool                 `json:"enabled"`
	File     string               `json:"file"`
	Line     int                  `json:"line"`
	Latest   *campaigns.RunStatus `json:"latest"`
}

func campaignList(ctx context.Context, a *app, args []string) error {
	pos, err := parseInterspersed(newFlagSet("campaign list", a), a, campaignUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef(campaignUsage, "campaign list: takes no arguments")
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	var v struct {
		Campaigns []campaignEntry `json:"campaigns"`
	}
	raw, err := c.getJSON(ctx, "/api/campaigns", nil, &v)
	if err != nil {
		return fmt.Errorf("campaign list: %w", err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	tb := newTable(a.stdout)
	tb.row("NAME", "CHANNEL", "TEMPLATE", "CRON", "ENABLED", "LATEST RUN", "STATE", "STARTED", "SENT", "FAILED", "TOTAL")
	for _, e := range v.Campaigns {
		run, state, started, sent, failed, total := "-", "-", "-", "-", "-", "-"
		if st := e.Latest; st != nil {
			run, state, started = st.Run, stateText(*st), stamp(st.Started)
			sent, failed, total = itoa(st.Counts.Sent+st.Counts.Delivered+st.Counts.Undelivered), itoa(st.Counts.Failed), itoa(st.Counts.Total)
		}
		tb.row(e.Name, e.Channel, e.Template, e.Cron, yesNo(e.Enabled), run, state, started, sent, failed, total)
	}
	return tb.flush()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// stateText is a run's state, "planning" while its audience is snapshotted.
func stateText(st campaigns.RunStatus) string {
	if st.Planning && st.State == campaigns.StateRunning {
		return "running (planning)"
	}
	return string(st.State)
}

func campaignStatus(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("campaign status", a)
	run := fs.String("run", "", "the run to show (default: the latest)")
	name, err := oneName(fs, a, "status", args)
	if err != nil {
		return err
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *run != "" {
		q.Set("run", *run)
	}
	var v struct {
		Status *campaigns.RunStatus `json:"status"`
	}
	raw, err := c.getJSON(ctx, campaignPath(name), q, &v)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.Contains(ae.Message, "no such run") {
			return fmt.Errorf("%w (a run launched a moment ago appears once its launch job starts)", campaignErr("status", name, err))
		}
		return campaignErr("status", name, err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	if v.Status == nil {
		fmt.Fprintf(a.stdout, "%s has not run yet; launch it with: backoffice campaign run %s\n", name, name)
		return nil
	}
	return printRunStatus(a.stdout, *v.Status)
}

// printRunStatus writes one run as a two-column table.
func printRunStatus(w io.Writer, st campaigns.RunStatus) error {
	tb := newTable(w)
	n := st.Counts
	state := string(st.State)
	if st.Reason != "" {
		state += ": " + st.Reason
	}
	tb.row("CAMPAIGN", st.Campaign)
	tb.row("RUN", st.Run)
	tb.row("STATE", state)
	trigger := orDash(st.Trigger)
	if st.RetryOf != "" {
		trigger += " of run " + st.RetryOf
	}
	tb.row("TRIGGER", trigger)
	tb.row("CHANNEL", orDash(st.Definition.Channel)+", template "+orDash(st.Definition.Template))
	tb.row("STARTED", stamp(st.Started))
	tb.row("FINISHED", stamp(st.Finished))
	planning := "done"
	switch {
	case st.Planning && st.State == campaigns.StateCancelled:
		planning = "stopped: the run was cancelled before all its audience was planned"
	case st.Planning:
		planning = "in progress: the audience is still being snapshotted"
	}
	tb.row("PLANNING", planning)
	tb.row("CHUNKS", fmt.Sprintf("%d of %d done", st.ChunksDone, st.Chunks))
	tb.row("SENT PER MINUTE", itoa(st.SentPerMinute))
	tb.row("TOTAL", itoa(n.Total))
	if st.Definition.Channel == jobs.ChannelSMS {
		tb.row("SENT", itoa(n.Sent)+" (no delivery report yet)")
		tb.row("DELIVERED", itoa(n.Delivered))
		tb.row("UNDELIVERED", itoa(n.Undelivered))
	} else {
		tb.row("SENT", itoa(n.Sent)+" (accepted by the mail server)")
	}
	tb.row("FAILED", itoa(n.Failed))
	tb.row("SKIPPED", itoa(n.Skipped))
	tb.row("PENDING", fmt.Sprintf("%d (%d sending now)", n.Pending+n.Sending, n.Sending))
	if st.RetriedBy != "" {
		tb.row("RETRIED BY", st.RetriedBy)
	}
	return tb.flush()
}

// launchAnswer is the answer to a launch or a retry.
type launchAnswer struct {
	Campaign string `json:"campaign"`
	Run      string `json:"run"`
	RetryOf  string `json:"retry_of"`
}

// post sends an action with an optional JSON body and returns the answer.
func post(ctx context.Context, c *client, path string, query url.Values, body any) ([]byte, error) {
	req := request{method: http.MethodPost, path: path, query: query}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		req.body, req.size, req.ctype = bytes.NewReader(b), int64(len(b)), "application/json"
	}
	return c.do(ctx, req)
}

func campaignRun(ctx context.Context, a *app, args []string) error {
	name, err := oneName(newFlagSet("campaign run", a), a, "run", args)
	if err != nil {
		return err
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	raw, err := post(ctx, c, campaignPath(name, "run"), nil, nil)
	if err != nil {
		return campaignErr("run", name, err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	var v launchAnswer
	if err := json.Unmarshal(raw, &v); err != nil {
		return campaignErr("run", name, fmt.Errorf("answer: %w", err))
	}
	fmt.Fprintf(a.stdout, "launched %s run %s\nwatch it: backoffice campaign status %s --run %s\n", name, v.Run, name, v.Run)
	return nil
}

func campaignRetryFailed(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("campaign retry-failed", a)
	run := fs.String("run", "", "the run whose failed recipients to retry (default: the latest)")
	name, err := oneName(fs, a, "retry-failed", args)
	if err != nil {
		return err
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	raw, err := post(ctx, c, campaignPath(name, "retry-failed"), runQuery(*run), nil)
	if err != nil {
		return campaignErr("retry-failed", name, err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	var v launchAnswer
	if err := json.Unmarshal(raw, &v); err != nil {
		return campaignErr("retry-failed", name, fmt.Errorf("answer: %w", err))
	}
	fmt.Fprintf(a.stdout, "retrying the failed recipients of %s run %s as run %s\nwatch it: backoffice campaign status %s --run %s\n",
		name, v.RetryOf, v.Run, name, v.Run)
	return nil
}

func runQuery(run string) url.Values {
	if run == "" {
		return nil
	}
	return url.Values{"run": {run}}
}

// campaignChange is pause, resume or cancel: one state change of a run.
func campaignChange(action string, withReason bool) func(context.Context, *app, []string) error {
	return func(ctx context.Context, a *app, args []string) error {
		fs := newFlagSet("campaign "+action, a)
		run := fs.String("run", "", "the run to "+action+" (default: the latest)")
		var reason *string
		if withReason {
			reason = fs.String("reason", "", "why, shown in the run's status")
		}
		name, err := oneName(fs, a, action, args)
		if err != nil {
			return err
		}
		c, err := a.newClient()
		if err != nil {
			return err
		}
		var body any
		if reason != nil && *reason != "" {
			body = map[string]string{"reason": *reason}
		}
		raw, err := post(ctx, c, campaignPath(name, action), runQuery(*run), body)
		if err != nil {
			return campaignErr(action, name, err)
		}
		if a.globals.json {
			return printRaw(a.stdout, raw)
		}
		var st campaigns.RunStatus
		if err := json.Unmarshal(raw, &st); err != nil {
			return campaignErr(action, name, fmt.Errorf("answer: %w", err))
		}
		line := fmt.Sprintf("%s run %s is %s", name, st.Run, st.State)
		if st.Reason != "" {
			line += ": " + st.Reason
		}
		fmt.Fprintf(a.stdout, "%s (sent %d, failed %d, pending %d of %d)\n", line,
			st.Counts.Sent+st.Counts.Delivered+st.Counts.Undelivered, st.Counts.Failed, st.Counts.Pending+st.Counts.Sending, st.Counts.Total)
		return nil
	}
}

func campaignTest(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("campaign test", a)
	to := fs.String("to", "", "the e-mail address or phone number (+421...) to send the test to")
	lang := fs.String("lang", "", "template language (default: the customer's, else the fallback)")
	customer := fs.String("customer", "", "render with this customer's data")
	wait := fs.Duration("wait", time.Minute, "how long to wait for the job (0: do not wait)")
	name, err := oneName(fs, a, "test", args)
	if err != nil {
		return err
	}
	if *to == "" {
		return usagef(campaignUsage, "campaign test: --to is required")
	}
	body := map[string]string{"to": *to}
	if *lang != "" {
		body["language"] = *lang
	}
	if *customer != "" {
		body["customer_id"] = *customer
	}
	res, err := enqueueAndWait(ctx, a, "test", name, body, *wait)
	if err != nil || res == nil {
		return err
	}
	var r campaigns.TestResult
	if err := json.Unmarshal(res, &r); err != nil {
		return campaignErr("test", name, fmt.Errorf("job result: %w", err))
	}
	tb := newTable(a.stdout)
	tb.row("SENT TO", r.To)
	tb.row("LANGUAGE", orDash(r.Language))
	tb.row("REF", orDash(r.Ref))
	if r.Subject != "" {
		tb.row("SUBJECT", r.Subject)
	}
	if err := tb.flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\n%s\n", strings.TrimSpace(printable(r.Body)))
	return nil
}

// dryRunReport is what campaign:dryrun reports, decoded here field by
// field: fields a newer daemon adds are ignored, fields an older one lacks
// stay empty and are not printed.
type dryRunReport struct {
	Campaign        string            `json:"campaign"`
	Recipients      int64             `json:"recipients"`
	Skipped         map[string]int64  `json:"skipped"`
	Languages       map[string]int64  `json:"languages"`
	Rendered        int64             `json:"rendered"`
	Failures        []string          `json:"failures"`
	FailuresTotal   int64             `json:"failures_total"`
	FailuresByError map[string]int64  `json:"failures_by_error"`
	FailuresFile    string            `json:"failures_file"`
	Samples         map[string]string `json:"samples"`
	Estimated       string            `json:"estimated_duration"`
	SMS             *struct {
		Encodings     map[string]int64 `json:"encodings"`
		SegmentsTotal int64            `json:"segments_total"`
		SegmentsMax   int              `json:"segments_max"`
		Samples       map[string]struct {
			Encoding string `json:"encoding"`
			Segments int    `json:"segments"`
			Chars    int    `json:"chars"`
		} `json:"samples"`
	} `json:"sms"`
}

func campaignDryRun(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("campaign dry-run", a)
	wait := fs.Duration("wait", 10*time.Minute, "how long to wait for the job (0: do not wait)")
	name, err := oneName(fs, a, "dry-run", args)
	if err != nil {
		return err
	}
	res, err := enqueueAndWait(ctx, a, "dry-run", name, nil, *wait)
	if err != nil || res == nil {
		return err
	}
	var r dryRunReport
	if err := json.Unmarshal(res, &r); err != nil {
		return campaignErr("dry-run", name, fmt.Errorf("job result: %w", err))
	}
	printDryRun(a.stdout, r)
	return nil
}

// printDryRun writes a dry-run report.
func printDryRun(w io.Writer, r dryRunReport) {
	fmt.Fprintf(w, "%s: a launch now would send to %d recipients", r.Campaign, r.Recipients)
	if r.Estimated != "" {
		fmt.Fprintf(w, " (about %s at its rate)", r.Estimated)
	}
	fmt.Fprintln(w)
	counts(w, "Skipped", r.Skipped, "none")
	counts(w, "Languages", r.Languages, "none")
	if r.SMS != nil {
		fmt.Fprintf(w, "\nSMS: %d segments in all, the longest message %d\n", r.SMS.SegmentsTotal, r.SMS.SegmentsMax)
		counts(w, "Encodings", r.SMS.Encodings, "none")
		for _, lang := range slices.Sorted(maps.Keys(r.SMS.Samples)) {
			s := r.SMS.Samples[lang]
			fmt.Fprintf(w, "  sample %-4s %s, %d segments, %d characters\n", oneLine(lang), oneLine(s.Encoding), s.Segments, s.Chars)
		}
	}
	if len(r.Samples) > 0 {
		fmt.Fprintln(w, "\nSamples:")
		for _, lang := range slices.Sorted(maps.Keys(r.Samples)) {
			fmt.Fprintf(w, "  %-4s %s\n", oneLine(lang), cut(oneLine(r.Samples[lang]), 100))
		}
	}
	failures := max(r.FailuresTotal, int64(len(r.Failures)))
	fmt.Fprintf(w, "\nRender failures: %d", failures)
	if r.Rendered > 0 {
		fmt.Fprintf(w, " of %d rendered", r.Rendered)
	}
	fmt.Fprintln(w)
	for _, e := range slices.Sorted(maps.Keys(r.FailuresByError)) {
		fmt.Fprintf(w, "  %6d  %s\n", r.FailuresByError[e], oneLine(e))
	}
	if len(r.Failures) > 0 {
		fmt.Fprintln(w, "First failures:")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  %s\n", oneLine(f))
	}
	if int64(len(r.Failures)) < failures {
		fmt.Fprintf(w, "  ... %d more", failures-int64(len(r.Failures)))
		if r.FailuresFile != "" {
			fmt.Fprintf(w, " in %s on the daemon", oneLine(r.FailuresFile))
		}
		fmt.Fprintln(w)
	} else if r.FailuresFile != "" {
		fmt.Fprintf(w, "  all of them: %s on the daemon\n", oneLine(r.FailuresFile))
	}
}

// counts writes "title: k1 n1, k2 n2" sorted by key, or none when empty.
func counts(w io.Writer, title string, m map[string]int64, none string) {
	if len(m) == 0 {
		fmt.Fprintf(w, "%s: %s\n", title, none)
		return
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", orDash(oneLine(k)), m[k]))
	}
	fmt.Fprintf(w, "%s: %s\n", title, strings.Join(parts, ", "))
}

// jobView is a task as GET /api/jobs/{id} shows it, with its result.
type jobView struct {
	task
	Result json.RawMessage `json:"result"`
}

// enqueueAndWait posts a campaign action that queues a job, then polls the
// job until it completes, fails or wait passes. It returns the job's
// result; nil (and no error) when it printed the answer itself (--json,
// --wait 0).
func enqueueAndWait(ctx context.Context, a *app, action, name string, body any, wait time.Duration) (json.RawMessage, error) {
	if wait < 0 {
		return nil, usagef(campaignUsage, "campaign %s: --wait must not be negative", action)
	}
	c, err := a.newClient()
	if err != nil {
		return nil, err
	}
	raw, err := post(ctx, c, campaignPath(name, action), nil, body)
	if err != nil {
		return nil, campaignErr(action, name, err)
	}
	var q struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal(raw, &q); err != nil || q.TaskID == "" {
		return nil, campaignErr(action, name, fmt.Errorf("answer without a task id: %s", cut(string(raw), 200)))
	}
	lookup := "backoffice --json jobs show " + q.TaskID
	if wait == 0 {
		if a.globals.json {
			return nil, printRaw(a.stdout, raw)
		}
		fmt.Fprintf(a.stdout, "queued as task %s\nits result: %s\n", q.TaskID, lookup)
		return nil, nil
	}
	if !a.globals.json {
		fmt.Fprintf(a.stderr, "queued as task %s; waiting up to %s for it\n", q.TaskID, wait)
	}
	j, raw, err := waitJob(ctx, c, q.TaskID, wait)
	if err != nil {
		return nil, campaignErr(action, name, fmt.Errorf("%w; the job goes on: %s", err, lookup))
	}
	if a.globals.json {
		if err := printRaw(a.stdout, raw); err != nil {
			return nil, err
		}
	}
	switch j.State {
	case "completed":
	case "archived":
		return nil, campaignErr(action, name, fmt.Errorf("task %s failed for good: %s", j.ID, orDash(j.LastError)))
	default:
		return nil, campaignErr(action, name, fmt.Errorf("task %s: attempt %d of %d failed, the queue retries it: %s",
			j.ID, j.Retried, j.MaxRetry+1, orDash(j.LastError)))
	}
	if a.globals.json {
		return nil, nil
	}
	if len(j.Result) == 0 {
		return nil, campaignErr(action, name, fmt.Errorf("task %s completed without a result", j.ID))
	}
	return j.Result, nil
}

// waitJob polls a task until it is completed, archived or has failed an
// attempt (its error is shown now rather than after the retries), or
// until wait passes.
func waitJob(ctx context.Context, c *client, id string, wait time.Duration) (jobView, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		var j jobView
		raw, err := c.getJSON(ctx, "/api/jobs/"+url.PathEscape(id), nil, &j)
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return j, nil, fmt.Errorf("task %s not done within %s", id, wait)
		case ctx.Err() != nil:
			return j, nil, fmt.Errorf("interrupted while waiting for task %s", id)
		case err != nil:
			return j, nil, err
		case j.State == "completed" || j.State == "archived" || j.LastError != "":
			return j, raw, nil
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// printable replaces the control characters of text from the daemon (a
// message body, audience data in a report) but newlines, so that it cannot
// drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// oneLine is printable text on one line, runs of white space as one space.
func oneLine(s string) string { return strings.Join(strings.Fields(printable(s)), " ") }
