package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/schedules"
	"github.com/shopworks/backoffice/templates"
)

// Audience sizes the address generators cover.
const (
	maxAudience = 10_000_000 // e-mail addresses r0000000@... to r9999999@...
	maxPhones   = 1_000_000  // +421905000000 to +421905999999
)

// The bench's campaign template: a real one shipped with the daemon, in
// Slovak, which every audience row asks for.
const (
	benchTemplate = "promo"
	benchLanguage = "sk"
)

// emailAddress is the address of recipient i of an e-mail audience, as the
// engine normalizes it (lower case).
func emailAddress(i int) string { return fmt.Sprintf("r%07d@bench.example", i) }

// phoneNumber is the number of recipient i of an SMS audience: Slovak
// mobile numbers, in E.164 as the engine normalizes them.
func phoneNumber(i int) string { return fmt.Sprintf("+421905%06d", i) }

// writeAudience writes a CSV audience of n rows with the channel's address
// column, a name and a language (see workers/campaigns/audience_file.go).
func writeAudience(path, channel string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("audience: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	addr, column := emailAddress, "email"
	if channel == jobs.ChannelSMS {
		addr, column = phoneNumber, "phone"
	}
	fmt.Fprintf(w, "%s,name,language\n", column)
	for i := range n {
		fmt.Fprintf(w, "%s,Zákazník %d,%s\n", addr(i), i, benchLanguage)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audience %s: %w", path, err)
	}
	return nil
}

// campaignSpec is one campaign entry of the bench's schedule file.
type campaignSpec struct {
	name     string
	channel  string
	audience string  // absolute path of the CSV file
	rate     float64 // per second
}

// scheduleFile is a schedule file (the format of schedules/example.yaml)
// with the given campaigns, never fired by cron: they are launched through
// the API.
func scheduleFile(specs ...campaignSpec) string {
	s := "# written by loadcampaign\ntimezone: Europe/Bratislava\ncampaigns:\n"
	for _, c := range specs {
		s += fmt.Sprintf("  - name: %s\n    cron: \"0 9 1 1 *\"\n    channel: %s\n    template: %s\n"+
			"    audience: {file: %s}\n    rate: %s/s\n    enabled: false\n",
			c.name, c.channel, benchTemplate, strconv.Quote(c.audience), strconv.FormatFloat(c.rate, 'f', -1, 64))
	}
	return s
}

// prepareCampaign writes the audience of spec (n rows) and a schedule file
// with it into l's directories, before the daemon starts and loads them.
func prepareCampaign(l *local, spec campaignSpec, n int) error {
	spec.audience = filepath.Join(l.dir, spec.name+".csv")
	if err := writeAudience(spec.audience, spec.channel, n); err != nil {
		return err
	}
	path := filepath.Join(l.schedulesDir(), "bench.yaml")
	if err := os.WriteFile(path, []byte(scheduleFile(spec)), 0o644); err != nil {
		return fmt.Errorf("schedule file: %w", err)
	}
	return nil
}

// loadCampaign reads campaign name from the schedule files of dir as the
// daemon does (schedules.Load, checked against the shipped templates):
// the definition a launch freezes into its run.
func loadCampaign(dir, name string) (jobs.Campaign, error) {
	set, err := templates.Load(templates.Options{FallbackLanguage: "en"})
	if err != nil {
		return jobs.Campaign{}, fmt.Errorf("templates: %w", err)
	}
	s, err := schedules.Load(dir, schedules.Options{HasTemplate: set.Has})
	if err != nil {
		return jobs.Campaign{}, fmt.Errorf("schedule files: %w", err)
	}
	e, ok := s.Campaign(name)
	if !ok {
		return jobs.Campaign{}, fmt.Errorf("schedule files in %s: no campaign %q", dir, name)
	}
	return e.Campaign, nil
}
