package campaigns

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/shopworks/backoffice/jobs"
)

// TestResult says what TestSend sent.
type TestResult struct {
	To       string `json:"to"`
	Language string `json:"language"` // the template language used
	Ref      string `json:"ref"`      // Message-ID or Twilio SID
	Subject  string `json:"subject,omitempty"`
	Body     string `json:"body"` // the text part of an e-mail, or the SMS
}

// TestSend renders a campaign's message and sends it to one address, with
// "[TEST] " in front of the subject (or SMS), touching no run or ledger.
// The data is the customer a.CustomerID's, else the first row of the
// audience file, else a sample customer. A template error is returned as
// it is, naming the file and the field.
func (e *Engine) TestSend(ctx context.Context, a jobs.CampaignTestArgs) (TestResult, error) {
	if err := a.Validate(); err != nil {
		return TestResult{}, err
	}
	r, err := e.testRecipient(ctx, a)
	if err != nil {
		return TestResult{}, err
	}
	def := a.Campaign
	o, err := e.render(def, "test", r)
	if err != nil {
		return TestResult{}, fmt.Errorf("campaign %s: test send: %w", def.Name, err)
	}
	res := TestResult{To: a.To}
	if o.mail != nil {
		o.mail.Subject = "[TEST] " + o.mail.Subject
		o.mail.MessageID = "<test." + def.Name + "." + NewRunID(e.cfg.Now()) + "@" + e.domain + ">"
		o.mail.Headers["X-Backoffice-Campaign"] = def.Name + "/test"
		res.Subject, res.Body = o.mail.Subject, o.mail.Text
	} else {
		o.sms.Body = "[TEST] " + o.sms.Body
		o.sms.Ref = def.Name + "/test/" + NewRunID(e.cfg.Now())
		o.sms.StatusCallback = ""
		res.Body = o.sms.Body
	}
	res.Language = o.language
	if res.Ref, err = e.sendMessage(ctx, o); err != nil {
		return res, fmt.Errorf("campaign %s: test send to %s: %w", def.Name, a.To, err)
	}
	return res, nil
}

// testRecipient is who a test message is written for, sent to a.To.
func (e *Engine) testRecipient(ctx context.Context, a jobs.CampaignTestArgs) (recipient, error) {
	def := a.Campaign
	r := recipient{id: "test", name: "Test Customer", language: a.Language}
	switch {
	case a.CustomerID != "":
		c, found, err := e.customerRecipient(ctx, def.Channel, a.CustomerID)
		if err != nil {
			return recipient{}, fmt.Errorf("campaign %s: test send: customer %s: %w", def.Name, a.CustomerID, err)
		}
		if !found {
			return recipient{}, fmt.Errorf("campaign %s: test send: customer %s: %w", def.Name, a.CustomerID, ErrNoCustomer)
		}
		r = c
	case def.Audience.File != "":
		row, err := e.firstRow(ctx, def)
		if err != nil {
			return recipient{}, err
		}
		r.name, r.language, r.extra = cmp.Or(row.Name, r.name), row.Language, row.Extra
	}
	r.language = cmp.Or(a.Language, r.language)
	r.email, r.phone = "", ""
	if def.Channel == jobs.ChannelSMS {
		r.phone = a.To
	} else {
		r.email = a.To
	}
	r.customerID = "" // the unsubscribe link opts out the test address, never the customer
	return r, nil
}

// ErrNoCustomer is returned by TestSend for a customer id that does not exist.
var ErrNoCustomer = errors.New("campaigns: no such customer")

// errFirstRow stops reading an audience file after its first valid row.
var errFirstRow = errors.New("first row read")

// firstRow returns the first valid row of a campaign's audience file.
func (e *Engine) firstRow(ctx context.Context, def jobs.Campaign) (fileRecipient, error) {
	src := fileAudience{path: e.audiencePath(def.Audience.File), channel: def.Channel, region: e.cfg.PhoneRegion}
	var row fileRecipient
	err := src.each(ctx, "", func(c candidate) error {
		if c.reason != "" {
			return nil
		}
		r, err := decodeRow(c.id, c.data)
		row = r
		if err != nil {
			return err
		}
		return errFirstRow
	})
	switch {
	case errors.Is(err, errFirstRow):
		return row, nil
	case err != nil:
		return row, err
	}
	return row, fmt.Errorf("campaign %s: audience file %s has no valid row", def.Name, def.Audience.File)
}
