package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/email"
	"github.com/shopworks/backoffice/workers/sms"
)

// outgoing is one rendered message, e-mail or SMS.
type outgoing struct {
	mail     *email.Message
	sms      *sms.Message
	language string // the template language used
	// segments is how an SMS goes out (encoding, segments, characters),
	// as the template set counted it when it rendered the body.
	segments templates.SMS
}

// summary is what the customer's timeline shows of the message.
func (o outgoing) summary() string {
	if o.mail != nil {
		return o.mail.Subject
	}
	return o.sms.Body
}

// templateData is what the campaign's template sees of r.
func (e *Engine) templateData(campaign string, r recipient) templates.Data {
	d := templates.Data{
		Customer: templates.CustomerData{ID: r.customerID, Name: r.name, Email: r.email, Phone: r.phone, Language: r.language},
		Campaign: campaign,
		Extra:    r.extra,
	}
	switch {
	case len(e.cfg.Unsubscribe.Secret) == 0:
	case r.customerID != "":
		d.UnsubscribeURL = e.cfg.Unsubscribe.URL(r.customerID, campaign)
	case r.email != "":
		d.UnsubscribeURL = e.cfg.Unsubscribe.AddressURL(r.email, campaign)
	}
	return d
}

// render renders def's template for r into the message to send.
func (e *Engine) render(def jobs.Campaign, run string, r recipient) (outgoing, error) {
	d := e.templateData(def.Name, r)
	if def.Channel == jobs.ChannelSMS {
		m, err := e.cfg.Templates.RenderSMS(def.Template, r.language, d)
		if err != nil {
			return outgoing{}, err
		}
		return outgoing{language: m.Lang, segments: m, sms: &sms.Message{To: r.phone, Body: m.Body, StatusCallback: e.cfg.SMSStatusCallback,
			Ref: def.Name + "/" + run + "/" + r.id}}, nil
	}
	m, err := e.cfg.Templates.RenderEmail(def.Template, r.language, d)
	if err != nil {
		return outgoing{}, err
	}
	msg := &email.Message{
		To: r.email, ToName: r.name, From: e.cfg.MailFrom,
		Subject: m.Subject, Text: m.Text, HTML: m.HTML,
		MessageID:         e.messageID(def.Name, run, r.id),
		Headers:           map[string]string{"X-Backoffice-Campaign": def.Name + "/" + run},
		UnsubscribeMailto: e.cfg.UnsubscribeMailto,
	}
	// List-Unsubscribe one-click needs https (RFC 8058); a plain-http
	// daemon (a local run) keeps the link in the body only.
	if strings.HasPrefix(d.UnsubscribeURL, "https://") {
		msg.UnsubscribeURL = d.UnsubscribeURL
	}
	return outgoing{mail: msg, language: m.Lang}, nil
}

var errNoSender = errors.New("no sender configured for this channel")

// sendMessage sends o and returns its reference: the Message-ID of an
// e-mail, the Twilio SID of an SMS.
func (e *Engine) sendMessage(ctx context.Context, o outgoing) (string, error) {
	if o.mail != nil {
		if e.cfg.Mail == nil {
			return "", permanent(fmt.Errorf("e-mail: %w", errNoSender))
		}
		return o.mail.MessageID, e.cfg.Mail.Send(ctx, o.mail)
	}
	if e.cfg.SMS == nil {
		return "", permanent(fmt.Errorf("sms: %w", errNoSender))
	}
	res, err := e.cfg.SMS.Send(ctx, *o.sms)
	return res.SID, err
}

// isPermanent reports whether err from a send of channel will never
// succeed for this recipient.
func (e *Engine) isPermanent(channel string, err error) bool {
	if channel == jobs.ChannelSMS {
		return sms.IsPermanent(err)
	}
	return email.IsPermanent(err)
}

// failure splits a permanent send error into the code and text recorded
// in the ledger: the SMTP reply code, or Twilio's error code.
func failure(err error) (code, text string) {
	var se *email.SendError
	if errors.As(err, &se) {
		code = strconv.Itoa(se.Code)
		if se.Enhanced != "" {
			code += " " + se.Enhanced
		}
		return code, oneLine(se.Text)
	}
	var smsErr *sms.SendError
	if errors.As(err, &smsErr) {
		code = strconv.Itoa(smsErr.Code)
		if smsErr.Code == 0 {
			code = "http " + strconv.Itoa(smsErr.Status)
		}
		return code, oneLine(smsErr.Message)
	}
	return "error", oneLine(err.Error())
}

// providerLimit reports whether err is Twilio asking us to slow down
// (HTTP 429, error 20429, or 21611: the sender's queue is full), and how
// long it asked us to wait (10s when it did not say). That is a hold, not
// a failure.
func providerLimit(err error) (time.Duration, bool) {
	if !sms.IsRateLimited(err) {
		return 0, false
	}
	if d, ok := sms.RetryAfter(err); ok {
		return d, true
	}
	return 10 * time.Second, true
}

// location returns the zone of a recipient: theirs, else the campaign's.
func (e *Engine) location(recipientZone, campaignZone string) *time.Location {
	for _, z := range []string{recipientZone, campaignZone} {
		if z == "" {
			continue
		}
		if loc, err := e.zones.load(z); err == nil {
			return loc
		}
	}
	return time.UTC
}

// zoneCache keeps loaded time zones (time.LoadLocation reads a file).
type zoneCache struct{ m sync.Map }

func (z *zoneCache) load(name string) (*time.Location, error) {
	if v, ok := z.m.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	z.m.Store(name, loc)
	return loc, nil
}
