package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/templates"
)

const schedulesUsage = `usage:
  backoffice schedules list
      the entries of the daemon's schedule files: next tick and last run
  backoffice schedules check [-templates-dir DIR] [SCHEDULES_DIR]
      checks every schedule file of SCHEDULES_DIR (default
      $BACKOFFICE_SCHEDULES_DIR, else ./schedules) as the daemon would load
      it, without a daemon. Prints every problem as file:line: field: message
      and exits 1, or lists the entries with their next three ticks.
`

// runScheduleGroup runs `backoffice schedules SUBCOMMAND`: list asks the
// daemon, check reads the files here.
func runScheduleGroup(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 && args[0] == "list" {
		return schedulesList(ctx, a, args[1:])
	}
	return exitCode(runSchedules(args, a.stdout, a.stderr))
}

// runSchedules runs `backoffice schedules check`.
func runSchedules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, schedulesUsage)
		return 2
	}
	return runSchedulesCheck(args[1:], stdout, stderr, time.Now())
}

// schedulesList prints GET /api/schedules: every entry in force on the
// daemon, its next tick and its last run.
func schedulesList(ctx context.Context, a *app, args []string) error {
	pos, err := parseInterspersed(newFlagSet("schedules list", a), a, schedulesUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef(schedulesUsage, "schedules list: takes no arguments")
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	var v struct {
		Entries  []schedules.EntryView `json:"entries"`
		Rejected []struct {
			What     string    `json:"what"`
			At       time.Time `json:"at"`
			Problems []string  `json:"problems"`
		} `json:"rejected"`
	}
	raw, err := c.getJSON(ctx, "/api/schedules", nil, &v)
	if err != nil {
		return fmt.Errorf("schedules list: %w", err)
	}
	for _, r := range v.Rejected { // the operator's edit is not what runs
		fmt.Fprintf(a.stderr, "warning: the %s files on disk were rejected at %s; the ones loaded before stay in force until they are fixed:\n",
			strings.TrimSuffix(r.What, "s"), r.At.Local().Format("2006-01-02 15:04:05 MST"))
		for _, p := range r.Problems {
			fmt.Fprintf(a.stderr, "  %s\n", p)
		}
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	tb := newTable(a.stdout)
	tb.row("NAME", "TYPE", "TARGET", "CRON", "ENABLED", "NEXT", "LAST RUN", "OUTCOME")
	for _, e := range v.Entries {
		next := "never (disabled)"
		if e.Enabled {
			next = formatScheduleTicks(inZone(e.Next[:min(len(e.Next), 1)], e.Zone), nil)
		}
		last, outcome := "-", "-"
		if len(e.LastRuns) > 0 {
			r := e.LastRuns[0]
			last, outcome = formatScheduleTicks(inZone([]time.Time{r.Tick}, e.Zone), nil), r.Outcome
			if r.Message != "" {
				outcome += ": " + cut(r.Message, 80)
			}
		}
		tb.row(e.Name, e.Type, e.Target, e.Cron, yesNo(e.Enabled), next, last, outcome)
	}
	return tb.flush()
}

// inZone shows times in the zone their entry's cron expression is read
// in, when this machine knows it.
func inZone(ts []time.Time, zone string) []time.Time {
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" {
		return ts
	}
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = t.In(loc)
	}
	return out
}

func runSchedulesCheck(args []string, stdout, stderr io.Writer, now time.Time) int {
	fs := flag.NewFlagSet("backoffice schedules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, schedulesUsage) }
	templatesDir := fs.String("templates-dir", os.Getenv("BACKOFFICE_TEMPLATES_DIR"),
		"template files overriding the embedded ones, as the daemon is given them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	dir := cmp.Or(fs.Arg(0), os.Getenv("BACKOFFICE_SCHEDULES_DIR"), "./schedules")
	tset, err := templates.Load(templates.Options{Dir: *templatesDir})
	if err != nil {
		fmt.Fprintf(stderr, "backoffice: load templates: %v\n", err)
		return 1
	}
	set, err := schedules.Load(dir, schedules.Options{HasTemplate: tset.Has})
	if err != nil {
		return printScheduleErrors(stderr, dir, err)
	}
	fmt.Fprintf(stdout, "%s: all valid: files %d, campaigns %d, jobs %d\n\n",
		dir, len(set.Files), len(set.Campaigns), len(set.Jobs))
	printScheduleTable(stdout, set, now)
	return 0
}

func printScheduleErrors(stderr io.Writer, dir string, err error) int {
	problems := schedules.Errors(err)
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) == 0 {
		fmt.Fprintln(stderr, err)
	}
	n := max(len(problems), 1)
	fmt.Fprintf(stderr, "%s: %d %s; the daemon would refuse these schedules\n", dir, n, map[bool]string{true: "problem", false: "problems"}[n == 1])
	return 1
}

// printScheduleTable lists the entries of set with their next three ticks,
// disabled ones included, so that an operator can check a cron expression
// before enabling it.
func printScheduleTable(w io.Writer, set *schedules.Set, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tCHANNEL/KIND\tCRON\tZONE\tENABLED\tNEXT")
	for _, e := range set.Entries(now, 0) {
		next, err := set.NextTimes(e.Name, now, 3)
		enabled := "no"
		if e.Enabled {
			enabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Type, e.Target, e.Cron, e.Zone,
			enabled, formatScheduleTicks(next, err))
	}
	tw.Flush()
}

func formatScheduleTicks(ticks []time.Time, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(ticks) == 0 {
		return "never"
	}
	s := make([]string, len(ticks))
	for i, t := range ticks {
		s[i] = t.Format("2006-01-02 15:04:05 MST")
	}
	return strings.Join(s, ", ")
}
