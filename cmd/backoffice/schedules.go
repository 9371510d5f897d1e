package main

import (
	"cmp"
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

const schedulesUsage = `usage: backoffice schedules check [-templates-dir DIR] [SCHEDULES_DIR]

Checks every schedule file of SCHEDULES_DIR (default $BACKOFFICE_SCHEDULES_DIR,
else ./schedules) as the daemon would load it, without a daemon. Prints every
problem as file:line: field: message and exits 1, or lists the entries with
their next three ticks.
`

// runSchedules runs `backoffice schedules SUBCOMMAND`.
func runSchedules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, schedulesUsage)
		return 2
	}
	return runSchedulesCheck(args[1:], stdout, stderr, time.Now())
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
	fmt.Fprintf(stderr, "%s: %d problems; the daemon would refuse these schedules\n", dir, max(len(problems), 1))
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
