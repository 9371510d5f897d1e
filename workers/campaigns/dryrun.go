package campaigns

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopworks/backoffice/jobs"
)

// DryRunReport is what a launch of a campaign now would do.
type DryRunReport struct {
	Campaign   string           `json:"campaign"`
	Recipients int64            `json:"recipients"` // would be sent to
	Skipped    map[string]int64 `json:"skipped"`    // by reason
	// Languages counts recipients by template language (by their own
	// language when the render failed).
	Languages map[string]int64 `json:"languages"`
	Rendered  int64            `json:"rendered"` // recipients the template was rendered for: all of them
	// Failures are the first DryRunInlineFailures render failures,
	// "recipient <id>: <error naming the template, language and field>".
	Failures      []string `json:"failures,omitempty"`
	FailuresTotal int64    `json:"failures_total"`
	// FailuresByError counts the failures by "<language>: <error>".
	FailuresByError map[string]int64 `json:"failures_by_error,omitempty"`
	// FailuresFile lists every failure, one a line after a header line:
	// recipient, language and error, separated by tabs. It is written under
	// the engine's DataDir/dryruns on the daemon that ran the dry run, when
	// there is at least one failure and a DataDir.
	FailuresFile string            `json:"failures_file,omitempty"`
	Samples      map[string]string `json:"samples,omitempty"`  // language -> subject (e-mail) or body (SMS)
	SMS          *SMSReport        `json:"sms,omitempty"`      // encodings and segments, SMS campaigns only
	Estimated    jobs.Duration     `json:"estimated_duration"` // at the campaign's rate, "1h23m20s"
}

// dryRun is the state of one dry run.
type dryRun struct {
	def      jobs.Campaign
	rep      DryRunReport
	failures failureLog
}

// DryRun walks the audience a launch of def would snapshot, without
// writing to Redis: it counts recipients and skips by reason (consent and
// addresses as they are now), renders the template for every recipient
// and reports each failure (see DryRunReport), counts the segments of SMS,
// and estimates the duration at the campaign's rate. It holds no rendered
// message, and of the recipients only an 8-byte hash each to drop
// duplicates.
func (e *Engine) DryRun(ctx context.Context, def jobs.Campaign) (DryRunReport, error) {
	if err := def.Validate(); err != nil {
		return DryRunReport{}, fmt.Errorf("campaign: %w", err)
	}
	d := &dryRun{def: def, rep: DryRunReport{Campaign: def.Name, Skipped: map[string]int64{}, Languages: map[string]int64{}, Samples: map[string]string{}}}
	if def.Channel == jobs.ChannelSMS {
		d.rep.SMS = &SMSReport{Encodings: map[string]int64{}, Samples: map[string]SMSSample{}}
	}
	d.failures = failureLog{campaign: def.Name, now: e.cfg.Now()}
	if e.cfg.DataDir != "" {
		d.failures.dir = filepath.Join(e.cfg.DataDir, dryRunDir)
	}
	var src audienceSource
	if def.Audience.File != "" {
		src = fileAudience{path: e.audiencePath(def.Audience.File), channel: def.Channel, region: e.cfg.PhoneRegion}
	} else {
		src = e.customerSource(def)
	}
	seen := map[uint64]struct{}{}
	seed := maphash.MakeSeed()
	err := src.each(ctx, "", func(c candidate) error {
		if c.id != "" {
			h := maphash.String(seed, c.id)
			if _, dup := seen[h]; dup {
				if src.dupMode() == "skip" {
					d.rep.Skipped[ReasonDuplicate]++
				}
				return nil
			}
			seen[h] = struct{}{}
		}
		if c.reason != "" {
			d.rep.Skipped[reasonKey(c.reason)]++
			return nil
		}
		return e.dryRunOne(ctx, d, c)
	})
	if err != nil {
		d.failures.abort()
		return d.rep, fmt.Errorf("campaign %s: dry run: %w", def.Name, err)
	}
	d.failures.report(&d.rep)
	if d.rep.FailuresFile, err = d.failures.finish(); err != nil {
		return d.rep, fmt.Errorf("campaign %s: dry run: %w", def.Name, err)
	}
	if d.rep.FailuresFile != "" {
		pruneFailureFiles(d.failures.dir, def.Name, d.rep.FailuresFile, e.cfg.Logger)
	}
	d.rep.Estimated = jobs.Duration(time.Duration(math.Ceil(float64(d.rep.Recipients)/def.RatePerSecond)) * time.Second)
	return d.rep, nil
}

// dryRunOne counts and renders one planned recipient.
func (e *Engine) dryRunOne(ctx context.Context, d *dryRun, c candidate) error {
	rep := &d.rep
	var r recipient
	var err error
	if c.data != "" {
		r, err = e.resolveFile(ctx, d.def.Channel, c.id, c.data)
	} else {
		var found bool
		r, found, err = e.customerRecipient(ctx, d.def.Channel, c.id)
		if err == nil && !found {
			rep.Skipped[ReasonNotFound]++
			return nil
		}
	}
	if err != nil {
		return err
	}
	if reason := skipReason(r, d.def.Channel); reason != "" {
		rep.Skipped[reason]++
		return nil
	}
	rep.Recipients++
	rep.Rendered++
	o, err := e.render(d.def, "dry-run", r)
	if err != nil {
		countKey(rep.Languages, r.language)
		return d.failures.add(c.id, r.language, err)
	}
	lang := o.language
	countKey(rep.Languages, lang)
	_, sampled := rep.Samples[lang]
	if !sampled {
		rep.Samples[lang] = o.summary()
	}
	if o.sms != nil {
		rep.SMS.add(lang, o.segments, !sampled)
	}
	return nil
}

// reasonKey is the reason without its detail ("invalid_address: ..." ->
// "invalid_address").
func reasonKey(reason string) string {
	k, _, _ := strings.Cut(reason, ":")
	return k
}
