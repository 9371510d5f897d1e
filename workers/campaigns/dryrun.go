package campaigns

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/shopworks/backoffice/jobs"
)

// DryRunRenderLimit is how many recipients a dry run renders the template
// for; the audience is counted in full.
const DryRunRenderLimit = 10000

// DryRunReport is what a launch of a campaign now would do.
type DryRunReport struct {
	Campaign   string            `json:"campaign"`
	Recipients int64             `json:"recipients"`         // would be sent to
	Skipped    map[string]int64  `json:"skipped"`            // by reason
	Languages  map[string]int64  `json:"languages"`          // recipients by template language
	Rendered   int64             `json:"rendered"`           // recipients the template was rendered for
	Failures   []string          `json:"failures,omitempty"` // first render failures, one per language and error
	Samples    map[string]string `json:"samples,omitempty"`  // language -> subject (e-mail) or body (SMS)
	Estimated  jobs.Duration     `json:"estimated_duration"` // at the campaign's rate, "1h23m20s"
}

// DryRun walks the audience a launch of def would snapshot, without
// writing anything: it counts recipients and skips by reason (consent and
// addresses as they are now), renders the template for the first
// DryRunRenderLimit recipients and reports the failures, and estimates the
// duration at the campaign's rate.
func (e *Engine) DryRun(ctx context.Context, def jobs.Campaign) (DryRunReport, error) {
	if err := def.Validate(); err != nil {
		return DryRunReport{}, fmt.Errorf("campaign: %w", err)
	}
	rep := DryRunReport{Campaign: def.Name, Skipped: map[string]int64{}, Languages: map[string]int64{}, Samples: map[string]string{}}
	var src audienceSource
	if def.Audience.File != "" {
		src = fileAudience{path: e.audiencePath(def.Audience.File), channel: def.Channel, region: e.cfg.PhoneRegion}
	} else {
		src = e.customerSource(def)
	}
	seen := map[uint64]struct{}{}
	seed := maphash.MakeSeed()
	failures := map[string]bool{}
	err := src.each(ctx, "", func(c candidate) error {
		if c.id != "" {
			h := maphash.String(seed, c.id)
			if _, dup := seen[h]; dup {
				if src.dupMode() == "skip" {
					rep.Skipped[ReasonDuplicate]++
				}
				return nil
			}
			seen[h] = struct{}{}
		}
		if c.reason != "" {
			rep.Skipped[reasonKey(c.reason)]++
			return nil
		}
		return e.dryRunOne(ctx, def, c, &rep, failures)
	})
	if err != nil {
		return rep, fmt.Errorf("campaign %s: dry run: %w", def.Name, err)
	}
	rep.Estimated = jobs.Duration(time.Duration(math.Ceil(float64(rep.Recipients)/def.RatePerSecond)) * time.Second)
	sort.Strings(rep.Failures)
	return rep, nil
}

// dryRunOne counts and, within the limit, renders one planned recipient.
func (e *Engine) dryRunOne(ctx context.Context, def jobs.Campaign, c candidate, rep *DryRunReport, failures map[string]bool) error {
	var r recipient
	var err error
	if c.data != "" {
		r, err = e.resolveFile(ctx, def.Channel, c.id, c.data)
	} else {
		var found bool
		r, found, err = e.customerRecipient(ctx, def.Channel, c.id)
		if err == nil && !found {
			rep.Skipped[ReasonNotFound]++
			return nil
		}
	}
	if err != nil {
		return err
	}
	if reason := skipReason(r, def.Channel); reason != "" {
		rep.Skipped[reason]++
		return nil
	}
	rep.Recipients++
	if rep.Rendered >= DryRunRenderLimit {
		rep.Languages[r.language]++
		return nil
	}
	rep.Rendered++
	o, err := e.render(def, "dry-run", r)
	if err != nil {
		key := r.language + ": " + oneLine(err.Error())
		if !failures[key] && len(rep.Failures) < 50 {
			failures[key] = true
			rep.Failures = append(rep.Failures, "recipient "+c.id+": "+oneLine(err.Error()))
		}
		rep.Languages[r.language]++
		return nil
	}
	lang := o.language
	rep.Languages[lang]++
	if _, ok := rep.Samples[lang]; !ok {
		rep.Samples[lang] = o.summary()
	}
	return nil
}

// reasonKey is the reason without its detail ("invalid_address: ..." ->
// "invalid_address").
func reasonKey(reason string) string {
	k, _, _ := strings.Cut(reason, ":")
	return k
}
