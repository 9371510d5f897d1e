package schedules

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"gopkg.in/yaml.v3"
)

// entryParser parses the entries of one file into fs.
type entryParser struct {
	p        *fileParser
	o        Options
	zone     string // the file's timezone; "" when missing or invalid
	zoneLine int
	fs       *fileSet
}

var campaignFields = []string{"name", "cron", "channel", "template", "audience", "rate",
	"enabled", "quiet_hours", "validity", "max_error_ratio"}

// campaign parses one entry of campaigns; path is e.g. "campaigns[2]".
func (ep entryParser) campaign(path string, n *yaml.Node) {
	m, ok := ep.p.fields(n, path, campaignFields...)
	if !ok {
		return
	}
	before := len(ep.p.errs)
	e := CampaignEntry{File: ep.p.file, Line: m.node.Line}
	c := &e.Campaign
	c.Timezone = ep.zone
	c.Name = ep.name(m)
	s, hasSpec := ep.cron(m)
	e.Cron = s.expr
	e.Enabled, _ = m.boolean("enabled", true)
	c.Channel, c.Template = ep.channelTemplate(m)
	c.Audience = ep.audience(m)
	c.RatePerSecond = ep.rate(m)
	ep.smsOnly(m, c)
	if r, ok := m.number("max_error_ratio"); ok {
		if !(r >= 0 && r <= 1) { // NaN too: it cannot be encoded in a tick's args
			ep.p.errorf(m.line("max_error_ratio"), m.field("max_error_ratio"), "must be between 0 and 1, got %v", r)
		}
		c.MaxErrorRatio = r
	}
	if len(ep.p.errs) > before || ep.zone == "" {
		return // report what the operator wrote, not Validate's first guess
	}
	if err := c.Validate(); err != nil {
		ep.campaignInvalid(m, err)
		return
	}
	ep.fs.campaigns = append(ep.fs.campaigns, e)
	if hasSpec {
		ep.fs.specs[c.Name] = s.spec
	}
}

// campaignInvalid reports an error of jobs.Campaign.Validate at the YAML
// field it is about.
func (ep entryParser) campaignInvalid(m mapping, err error) {
	var fe *jobs.FieldError
	if !errors.As(err, &fe) {
		ep.p.errorf(m.node.Line, m.path, "%v", err)
		return
	}
	switch fe.Field {
	case "timezone":
		ep.p.errorf(ep.zoneLine, "timezone", "%s", fe.Msg)
	case "rate_per_second":
		ep.p.errorf(m.line("rate"), m.field("rate"), "%s", fe.Msg)
	default:
		ep.p.errorf(m.line(fe.Field), m.field(fe.Field), "%s", fe.Msg)
	}
}

func (ep entryParser) channelTemplate(m mapping) (channel, template string) {
	channel, _ = m.str("channel", true)
	if channel != "" && channel != jobs.ChannelEmail && channel != jobs.ChannelSMS {
		ep.p.errorf(m.line("channel"), m.field("channel"), "must be %s or %s, got %q", jobs.ChannelEmail, jobs.ChannelSMS, channel)
		channel = ""
	}
	template, _ = m.str("template", true)
	if template != "" && channel != "" && ep.o.HasTemplate != nil && !ep.o.HasTemplate(template, channel) {
		ep.p.errorf(m.line("template"), m.field("template"), "no %s template named %q", channel, template)
	}
	return channel, template
}

var languagePattern = regexp.MustCompile(`^[a-z]{2,3}$`)

func (ep entryParser) audience(m mapping) jobs.Audience {
	v, ok := m.get("audience", true)
	if !ok {
		return jobs.Audience{}
	}
	am, ok := ep.p.fields(v, m.field("audience"), "tags", "languages", "file")
	if !ok {
		return jobs.Audience{}
	}
	var a jobs.Audience
	a.Tags, _ = am.list("tags")
	a.Languages, _ = am.list("languages")
	a.File, _ = am.str("file", false)
	for i, l := range a.Languages {
		if !languagePattern.MatchString(l) {
			ep.p.errorf(am.line("languages"), am.field("languages")+"["+strconv.Itoa(i)+"]", "must be a language code such as sk, got %q", l)
		}
	}
	switch {
	case len(a.Tags) == 0 && a.File == "":
		ep.p.errorf(am.node.Line, am.path, "needs tags (customers having all of them) or a file (a CSV of recipients)")
	case len(a.Tags) > 0 && a.File != "":
		ep.p.errorf(am.line("file"), am.field("file"), "cannot be combined with tags: choose one")
	case a.File != "" && len(a.Languages) > 0:
		ep.p.errorf(am.line("languages"), am.field("languages"), "applies to a tags audience only")
	case a.File != "":
		ep.audienceFile(am, a.File)
	}
	return a
}

func (ep entryParser) audienceFile(am mapping, file string) {
	if !filepath.IsAbs(file) {
		ep.p.errorf(am.line("file"), am.field("file"), "must be an absolute path on the daemon's disk, got %q", file)
		return
	}
	fi, err := os.Stat(file)
	switch {
	case err != nil:
		ep.p.errorf(am.line("file"), am.field("file"), "cannot be read: %v", err)
	case !fi.Mode().IsRegular():
		ep.p.errorf(am.line("file"), am.field("file"), "%s is not a regular file", file)
	}
}

var ratePattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)/([smh])$`)

// rate parses "50/s", "300/m" or "1000/h" into sends per second.
func (ep entryParser) rate(m mapping) float64 {
	s, ok := m.str("rate", true)
	if !ok {
		return 0
	}
	match := ratePattern.FindStringSubmatch(s)
	if match == nil {
		ep.p.errorf(m.line("rate"), m.field("rate"), "must look like 50/s, 300/m or 1000/h, got %q", s)
		return 0
	}
	n, _ := strconv.ParseFloat(match[1], 64)
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[match[2]]
	return n / per
}

// smsOnly parses quiet_hours and validity, which apply to SMS campaigns only.
func (ep entryParser) smsOnly(m mapping, c *jobs.Campaign) {
	for _, key := range []string{"quiet_hours", "validity"} {
		if _, ok := m.vals[key]; ok && c.Channel == jobs.ChannelEmail {
			ep.p.errorf(m.line(key), m.field(key), "applies to sms campaigns only")
		}
	}
	if q, ok := m.str("quiet_hours", false); ok {
		if _, _, err := jobs.ParseQuietHours(q); err != nil {
			ep.p.errorf(m.line("quiet_hours"), m.field("quiet_hours"), "%v", err)
		}
		c.QuietHours = q
	}
	if v, ok := m.str("validity", false); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			ep.p.errorf(m.line("validity"), m.field("validity"), "must be a positive duration such as 48h, got %q", v)
		}
		c.Validity = jobs.Duration(d)
	}
}
