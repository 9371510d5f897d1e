package jobs

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Campaign job kinds.
const (
	// KindCampaignLaunch snapshots a campaign's audience into a run and
	// enqueues its chunks.
	KindCampaignLaunch = "campaign:launch"
	// KindCampaignChunk sends one chunk of a run's recipients.
	KindCampaignChunk = "campaign:chunk"
	// KindCampaignTest sends a campaign's message to one address, marked
	// as a test, outside any run.
	KindCampaignTest = "campaign:test"
	// KindCampaignDryRun reports what a launch would do, sending nothing;
	// the report is the task's result (JSON).
	KindCampaignDryRun = "campaign:dryrun"
)

// Channels a campaign sends on.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

func campaignSpecs() []Spec {
	return []Spec{
		spec[CampaignLaunchArgs](Spec{
			Kind: KindCampaignLaunch, Queue: QueueCampaigns, MaxRetry: 10,
			Timeout: time.Hour, Retention: 30 * 24 * time.Hour,
			Summary: "snapshot a campaign's audience into a run and enqueue its chunks",
		}),
		spec[CampaignChunkArgs](Spec{
			Kind: KindCampaignChunk, Queue: QueueCampaigns, MaxRetry: 25,
			Timeout: 30 * time.Minute, Retention: 7 * 24 * time.Hour,
			Summary:  "send one chunk of a campaign run, checking the ledger before each recipient",
			Internal: true, // queued by the launch
		}),
		spec[CampaignTestArgs](Spec{
			Kind: KindCampaignTest, Queue: QueueDefault, MaxRetry: 3,
			Timeout: 5 * time.Minute, Retention: 24 * time.Hour,
			Summary: "send a campaign's message to one test address, outside any run",
		}),
		spec[CampaignDryRunArgs](Spec{
			Kind: KindCampaignDryRun, Queue: QueueDefault, MaxRetry: 3,
			Timeout: 30 * time.Minute, Retention: 24 * time.Hour,
			Summary: "count and render a campaign's audience as a launch would, sending nothing (report in the task result)",
		}),
	}
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidName reports whether s is a valid campaign or schedule entry name:
// lower-case letters, digits and '-', 1-63 characters.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Campaign is a campaign's definition as operators write it in a schedule
// file, frozen into each run when it is launched: editing the file never
// changes a run already under way.
type Campaign struct {
	Name     string   `json:"name"`
	Channel  string   `json:"channel"`  // ChannelEmail or ChannelSMS
	Template string   `json:"template"` // template name in the templates set
	Audience Audience `json:"audience"`
	// RatePerSecond caps sends per second across every daemon (GCRA in Redis).
	RatePerSecond float64 `json:"rate_per_second"`
	// Timezone is the IANA zone for recipients without one of their own.
	Timezone string `json:"timezone"`
	// QuietHours, for SMS, is "HH:MM-HH:MM" in the recipient's zone; sends
	// falling inside are held until the window ends, never dropped.
	QuietHours string `json:"quiet_hours,omitempty"`
	// Validity, for SMS, is how long after launch a held message may still
	// go out; after it the recipient is skipped ("expired").
	Validity Duration `json:"validity,omitempty"`
	// MaxErrorRatio pauses the run when permanent failures / attempted sends
	// exceeds it (after a minimum sample). 0 means never pause.
	MaxErrorRatio float64 `json:"max_error_ratio,omitempty"`
}

// Audience selects a campaign's recipients: customers having all Tags
// (optionally only those whose language is in Languages), or the rows of a
// CSV File on the daemon's disk.
type Audience struct {
	Tags      []string `json:"tags,omitempty"`
	Languages []string `json:"languages,omitempty"`
	File      string   `json:"file,omitempty"`
}

// Duration is a time.Duration that encodes as a Go duration string ("48h").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Validate reports the first invalid field of c.
func (c Campaign) Validate() error {
	switch {
	case !ValidName(c.Name):
		return Errorf("name", "must be 1-63 lower-case letters, digits or '-', got %q", c.Name)
	case c.Channel != ChannelEmail && c.Channel != ChannelSMS:
		return Errorf("channel", "must be %q or %q, got %q", ChannelEmail, ChannelSMS, c.Channel)
	case c.Template == "":
		return Errorf("template", "is required")
	case c.RatePerSecond <= 0 || c.RatePerSecond > 10000:
		return Errorf("rate_per_second", "must be above 0 and at most 10000, got %v", c.RatePerSecond)
	case !(c.MaxErrorRatio >= 0 && c.MaxErrorRatio <= 1): // NaN too
		return Errorf("max_error_ratio", "must be between 0 and 1, got %v", c.MaxErrorRatio)
	case c.Validity < 0:
		return Errorf("validity", "must not be negative")
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" {
		return Errorf("timezone", "must be an IANA zone such as Europe/Bratislava, got %q", c.Timezone)
	}
	if c.QuietHours != "" {
		if c.Channel != ChannelSMS {
			return Errorf("quiet_hours", "applies to sms campaigns only")
		}
		if _, _, err := ParseQuietHours(c.QuietHours); err != nil {
			return Errorf("quiet_hours", "%v", err)
		}
	}
	if (len(c.Audience.Tags) == 0) == (c.Audience.File == "") {
		return Errorf("audience", "needs either tags or a file, not both and not neither")
	}
	return nil
}

// ParseQuietHours parses "HH:MM-HH:MM" into minutes after midnight. The
// window may wrap midnight ("21:00-08:00").
func ParseQuietHours(s string) (from, to int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want HH:MM-HH:MM, got %q", s)
	}
	if from, err = parseClock(a); err == nil {
		to, err = parseClock(b)
	}
	if err == nil && from == to {
		err = fmt.Errorf("empty window %q", s)
	}
	return from, to, err
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("want HH:MM, got %q", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// CampaignLaunchArgs are the args of campaign:launch.
type CampaignLaunchArgs struct {
	Campaign Campaign `json:"campaign"`
	// Run names the run: the scheduled tick time for a cron launch
	// ("20261122T0900Z"), or a generated id for a manual one.
	Run string `json:"run"`
	// Trigger says who launched it: "schedule", "manual" or "retry-failed".
	Trigger string `json:"trigger"`
	// RetryOf, with Trigger "retry-failed", is the run whose failed
	// recipients this run re-sends to.
	RetryOf string `json:"retry_of,omitempty"`
}

// Kind implements Args.
func (CampaignLaunchArgs) Kind() string { return KindCampaignLaunch }

// TaskID implements Keyed: one launch per campaign run.
func (a CampaignLaunchArgs) TaskID() string {
	return "campaign:" + a.Campaign.Name + ":" + a.Run + ":launch"
}

var runPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidRun reports whether s is a valid run id: 1-64 letters, digits, '.',
// '_' or '-', starting with a letter or digit.
func ValidRun(s string) bool { return runPattern.MatchString(s) }

// Validate implements Args.
func (a CampaignLaunchArgs) Validate() error {
	if err := a.Campaign.Validate(); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	switch {
	case !runPattern.MatchString(a.Run):
		return Errorf("run", "must be 1-64 letters, digits, '.', '_' or '-', got %q", a.Run)
	case a.Trigger != "schedule" && a.Trigger != "manual" && a.Trigger != "retry-failed":
		return Errorf("trigger", "must be schedule, manual or retry-failed, got %q", a.Trigger)
	case (a.Trigger == "retry-failed") != (a.RetryOf != ""):
		return Errorf("retry_of", "is required with trigger retry-failed and only with it")
	}
	return nil
}

// CampaignChunkArgs are the args of campaign:chunk. The chunk's recipients
// are stored in Redis by the launch; the payload names them.
type CampaignChunkArgs struct {
	Campaign string `json:"campaign"`
	Run      string `json:"run"`
	Chunk    int    `json:"chunk"`
}

// Kind implements Args.
func (CampaignChunkArgs) Kind() string { return KindCampaignChunk }

// TaskID implements Keyed.
func (a CampaignChunkArgs) TaskID() string {
	return fmt.Sprintf("campaign:%s:%s:chunk:%d", a.Campaign, a.Run, a.Chunk)
}

// Validate implements Args.
func (a CampaignChunkArgs) Validate() error {
	switch {
	case !ValidName(a.Campaign):
		return Errorf("campaign", "must be a campaign name, got %q", a.Campaign)
	case !runPattern.MatchString(a.Run):
		return Errorf("run", "must be a run id, got %q", a.Run)
	case a.Chunk < 0:
		return Errorf("chunk", "must not be negative")
	}
	return nil
}

// CampaignTestArgs are the args of campaign:test: render the campaign's
// template as the customer CustomerID (or sample data) in Language and
// send it to To, with "[TEST]" in front of the subject.
type CampaignTestArgs struct {
	Campaign Campaign `json:"campaign"`
	// To is an e-mail address or an E.164 phone number, per the channel.
	To string `json:"to"`
	// Language picks the template language; "" uses the customer's.
	Language string `json:"language,omitempty"`
	// CustomerID, optional, renders with that customer's data.
	CustomerID string `json:"customer_id,omitempty"`
}

// Kind implements Args.
func (CampaignTestArgs) Kind() string { return KindCampaignTest }

// Validate implements Args.
func (a CampaignTestArgs) Validate() error {
	if err := a.Campaign.Validate(); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	switch {
	case strings.TrimSpace(a.To) == "" || len(a.To) > 254:
		return Errorf("to", "must be an e-mail address or a phone number, got %q", a.To)
	case a.Campaign.Channel == ChannelSMS && !strings.HasPrefix(a.To, "+"):
		return Errorf("to", "must be a phone number in international format (+421...), got %q", a.To)
	case a.Campaign.Channel == ChannelEmail && !strings.Contains(a.To, "@"):
		return Errorf("to", "must be an e-mail address, got %q", a.To)
	case len(a.Language) > 16:
		return Errorf("language", "must be a language code such as sk, got %q", a.Language)
	case len(a.CustomerID) > 128:
		return Errorf("customer_id", "is too long")
	}
	return nil
}

// CampaignDryRunArgs are the args of campaign:dryrun.
type CampaignDryRunArgs struct {
	Campaign Campaign `json:"campaign"`
}

// Kind implements Args.
func (CampaignDryRunArgs) Kind() string { return KindCampaignDryRun }

// Validate implements Args.
func (a CampaignDryRunArgs) Validate() error {
	if err := a.Campaign.Validate(); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	return nil
}
