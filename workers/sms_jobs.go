package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/inbox"
	"github.com/shopworks/backoffice/workers/sms"
)

// SMSSender sends one SMS: *sms.Twilio with Twilio configured, else
// *sms.Outbox. The sms:inbound handler answers HELP through it.
type SMSSender interface {
	Send(ctx context.Context, m sms.Message) (sms.Result, error)
}

// deliveryLedger applies a Twilio status callback to the campaign ledger
// (*campaigns.Ledger). It returns the customer the message went to, and an
// error wrapping campaigns.ErrUnknownSID for a message no campaign sent.
type deliveryLedger interface {
	RecordDeliveryStatus(ctx context.Context, messageSID, status, errorCode string) (customerID string, err error)
}

// Limits past which an incoming message is filed as unmatched for staff
// rather than on a customer's timeline.
const (
	maxSMSBodyRunes = 1600 // Twilio's longest message
	maxSMSNumber    = 64
	maxSMSMediaURL  = 2048
)

// helpTemplate is the SMS template of the reply to HELP and INFO.
const helpTemplate = "help"

// errNoSMS fails sms:* tasks on a daemon built without their stores.
var errNoSMS = errors.New("workers: sms handlers not configured (Deps.Customers or Deps.Inbox is nil)")

// registerSMS registers sms:inbound and sms:status.
func registerSMS(r registrar, d Deps) {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ledger deliveryLedger = campaigns.NewLedger(d.Redis, d.KeyPrefix)
	if d.Campaigns != nil {
		ledger = d.Campaigns.Ledger()
	}
	in := &smsInbound{customers: d.Customers, inbox: d.Inbox, messages: sms.NewInboundStore(d.Redis, d.KeyPrefix),
		replies: d.SMS, templates: d.Templates, log: log}
	st := &smsStatus{customers: d.Customers, inbox: d.Inbox, ledger: ledger, log: log}
	r.handle(jobs.KindSMSInbound, in)
	r.handle(jobs.KindSMSStatus, st)
}

// smsInbound files one incoming SMS (sms:inbound). Every step is keyed by
// the MessageSid, so a retry repeats nothing that was done.
type smsInbound struct {
	customers *customers.Store
	inbox     *inbox.Store
	messages  *sms.InboundStore
	replies   SMSSender      // nil: HELP is not answered (noted in the inbox)
	templates *templates.Set // nil: as replies
	log       *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *smsInbound) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var a jobs.SMSInboundArgs
	if err := jobs.Unmarshal(t, &a); err != nil {
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	if h.customers == nil || h.inbox == nil {
		return errNoSMS
	}
	return h.hideNumberIn(h.process(ctx, a), a.From)
}

// process files the incoming message a.
func (h *smsInbound) process(ctx context.Context, a jobs.SMSInboundArgs) error {
	if reason, detail := unfileable(a); reason != "" {
		return h.unmatched(ctx, a, reason, detail)
	}
	phone, err := h.customers.NormalizePhone(a.From)
	if err != nil {
		return h.unmatched(ctx, a, "malformed number", err.Error())
	}
	c, _, err := h.customers.FindOrCreateByPhone(ctx, phone, "sms:"+a.MessageSID)
	if err != nil {
		return fmt.Errorf("sms %s: find customer %s: %w", a.MessageSID, phone, err)
	}
	kw := sms.DetectKeyword(a.Body)
	if err := h.file(ctx, a, c, phone, kw); err != nil {
		return err
	}
	switch kw {
	case sms.KeywordOptOut:
		return h.consent(ctx, a, c, customers.OptedOut)
	case sms.KeywordOptIn:
		if c.Consent[customers.ChannelSMS].Status != customers.OptedOut {
			// Not a return from STOP: a "Yes" or "Start" that answers a
			// question of staff's. It goes to them too, before the consent,
			// so that a retry finds it filed (the inbox entry is keyed).
			if err := h.toStaff(ctx, a, c, phone, "also recorded as an SMS opt-in"); err != nil {
				return err
			}
		}
		return h.consent(ctx, a, c, customers.OptedIn)
	case sms.KeywordHelp:
		return h.help(ctx, a, c, phone)
	}
	return h.toStaff(ctx, a, c, phone, "")
}

// unfileable says why a message cannot go on a customer's timeline as it
// is: a request without a MessageSid, or fields past Twilio's limits.
func unfileable(a jobs.SMSInboundArgs) (reason, detail string) {
	switch {
	case a.Raw != "":
		return "malformed request", "no valid MessageSid; request: " + a.Raw
	case utf8.RuneCountInString(a.Body) > maxSMSBodyRunes:
		return "oversized body", fmt.Sprintf("body of %d characters, limit %d", utf8.RuneCountInString(a.Body), maxSMSBodyRunes)
	case len(a.To) > maxSMSNumber:
		return "oversized field", fmt.Sprintf("To of %d bytes, limit %d", len(a.To), maxSMSNumber)
	}
	for i, u := range a.MediaURLs {
		if len(u) > maxSMSMediaURL {
			return "oversized field", fmt.Sprintf("MediaUrl%d of %d bytes, limit %d", i, len(u), maxSMSMediaURL)
		}
	}
	return "", ""
}

// file keeps the message as received and puts it on the customer's
// timeline (exactly once: the event is keyed by the MessageSid).
func (h *smsInbound) file(ctx context.Context, a jobs.SMSInboundArgs, c customers.Customer, phone string, kw sms.Keyword) error {
	m := sms.InboundMessage{SID: a.MessageSID, CustomerID: c.ID, From: phone, To: a.To, Body: a.Body,
		MediaURLs: a.MediaURLs, Keyword: kw.String(), At: a.ReceivedAt}
	if err := h.messages.Save(ctx, m); err != nil {
		return err
	}
	text := a.Body
	for _, u := range a.MediaURLs {
		text += "\n[media] " + u
	}
	ev := customers.Event{At: a.ReceivedAt, Channel: "sms", Kind: "sms.in", Ref: a.MessageSID, Text: text, Key: a.MessageSID}
	if _, _, err := h.customers.AddEvent(ctx, c.ID, ev); err != nil {
		return fmt.Errorf("sms %s: timeline of customer %s: %w", a.MessageSID, c.ID, err)
	}
	return nil
}

// consent records an SMS opt-out or opt-in as of when the message arrived:
// a STOP and a START handled out of order still leave the later one.
func (h *smsInbound) consent(ctx context.Context, a jobs.SMSInboundArgs, c customers.Customer, st customers.ConsentStatus) error {
	source := "sms:" + sms.KeywordText(a.Body)
	changed, err := h.customers.SetConsent(ctx, c.ID, customers.ChannelSMS, st, source, a.ReceivedAt)
	if err != nil {
		return fmt.Errorf("sms %s: %w", a.MessageSID, err)
	}
	h.log.InfoContext(ctx, "sms consent keyword", "message_sid", a.MessageSID, "customer", c.ID, "consent", string(st), "changed", changed)
	return nil
}

// toStaff puts an ordinary message in the staff inbox, with detail (may be
// empty) telling staff what else it did. (When customer tickets exist, a
// message for an open ticket joins its thread instead.)
func (h *smsInbound) toStaff(ctx context.Context, a jobs.SMSInboundArgs, c customers.Customer, phone, detail string) error {
	e := inbox.Entry{ID: "sms:" + a.MessageSID, Kind: inbox.KindMessage, Channel: "sms", Ref: a.MessageSID,
		CustomerID: c.ID, From: phone, To: a.To, Body: a.Body, MediaURLs: a.MediaURLs, Detail: detail, At: a.ReceivedAt}
	switch {
	case strings.TrimSpace(a.Body) == "" && len(a.MediaURLs) == 0:
		e.Reason = "empty body"
		h.log.WarnContext(ctx, "sms with an empty body", "message_sid", a.MessageSID, "customer", c.ID)
	case c.Unknown:
		e.Reason = "unknown sender"
	}
	if _, err := h.inbox.Add(ctx, e); err != nil {
		return fmt.Errorf("sms %s: %w", a.MessageSID, err)
	}
	return nil
}

// unmatched files a message that cannot be filed on a customer for staff.
func (h *smsInbound) unmatched(ctx context.Context, a jobs.SMSInboundArgs, reason, detail string) error {
	h.log.WarnContext(ctx, "sms not filed on a customer", "message_sid", a.MessageSID, "reason", reason)
	e := inbox.Entry{ID: "sms:" + a.MessageSID, Kind: inbox.KindUnmatched, Channel: "sms", Ref: a.MessageSID,
		From: a.From, To: a.To, Body: a.Body, MediaURLs: a.MediaURLs, Reason: reason, Detail: detail, At: a.ReceivedAt}
	if _, err := h.inbox.Add(ctx, e); err != nil {
		return fmt.Errorf("sms %s: %w", a.MessageSID, err)
	}
	return nil
}

// help answers HELP and INFO with the help template in the customer's
// language, at most once per incoming message (see sms.InboundStore.ClaimReply).
// Like Twilio, it does not answer a customer who opted out.
func (h *smsInbound) help(ctx context.Context, a jobs.SMSInboundArgs, c customers.Customer, phone string) error {
	if c.Consent[customers.ChannelSMS].Status == customers.OptedOut {
		h.log.InfoContext(ctx, "sms help not answered: customer opted out", "message_sid", a.MessageSID, "customer", c.ID)
		return nil
	}
	if h.replies == nil || h.templates == nil {
		return h.replyFailed(ctx, a, c, phone, "no SMS sender or templates configured on this daemon")
	}
	msg, err := h.templates.RenderSMS(helpTemplate, c.Language, templates.Data{Customer: templates.CustomerData{
		ID: c.ID, Name: c.Name, Email: c.Email, Phone: phone, Language: c.Language}})
	if err != nil {
		return h.replyFailed(ctx, a, c, phone, err.Error())
	}
	sent, err := h.messages.ClaimReply(ctx, a.MessageSID)
	switch {
	case errors.Is(err, sms.ErrReplyInDoubt):
		return h.replyFailed(ctx, a, c, phone, err.Error()+"; check the outbox or Twilio's log before answering by hand")
	case err != nil:
		return err
	case sent != "":
		return nil // answered by an earlier attempt
	}
	res, err := h.replies.Send(ctx, sms.Message{To: phone, Body: msg.Body, Ref: "help:" + a.MessageSID})
	if err != nil && sms.IsInDoubt(err) {
		// Twilio may have sent it: the claim stays, so no retry sends a
		// second reply, and staff check before answering by hand.
		return h.replyFailed(ctx, a, c, phone, err.Error()+"; check the outbox or Twilio's log before answering by hand")
	}
	if err != nil {
		if rerr := h.messages.ReleaseReply(ctx, a.MessageSID); rerr != nil {
			return errors.Join(err, rerr)
		}
		if sms.IsPermanent(err) {
			return h.replyFailed(ctx, a, c, phone, err.Error())
		}
		err = fmt.Errorf("sms %s: help reply: %w", a.MessageSID, err)
		if d, ok := sms.RetryAfter(err); ok {
			return RetryLater(err, d, true)
		}
		return err
	}
	if res.SID == "" {
		res.SID = replyAccepted // accepted, SID unknown: still answered
	}
	if err := h.messages.SetReply(ctx, a.MessageSID, res.SID); err != nil {
		return err // the claim stays: a retry reports it in doubt, never resends
	}
	ev := customers.Event{At: a.ReceivedAt, Channel: "sms", Kind: "sms.out", Ref: res.SID, Text: msg.Body, Key: "reply:" + a.MessageSID}
	if _, _, err := h.customers.AddEvent(ctx, c.ID, ev); err != nil {
		return fmt.Errorf("sms %s: timeline of customer %s: %w", a.MessageSID, c.ID, err)
	}
	return nil
}

// replyAccepted stands for the SID of a reply Twilio accepted without an
// answer we could read: recorded as the reply, it keeps retries from
// sending a second one.
const replyAccepted = "accepted"

// replyFailed files a HELP that could not be answered for staff to answer.
func (h *smsInbound) replyFailed(ctx context.Context, a jobs.SMSInboundArgs, c customers.Customer, phone, detail string) error {
	h.log.ErrorContext(ctx, "sms help reply failed", "message_sid", a.MessageSID, "customer", c.ID, "err", h.hideNumber(detail, phone))
	e := inbox.Entry{ID: "sms-reply:" + a.MessageSID, Kind: inbox.KindUnmatched, Channel: "sms", Ref: a.MessageSID,
		CustomerID: c.ID, From: phone, To: a.To, Body: a.Body, Reason: "help reply failed", Detail: detail, At: a.ReceivedAt}
	if _, err := h.inbox.Add(ctx, e); err != nil {
		return fmt.Errorf("sms %s: %w", a.MessageSID, err)
	}
	return nil
}

// hideNumberIn returns err with the sender's number masked in its text:
// asynq keeps a task's error and the middleware logs it, and a phone number
// is personal data (the MessageSid in the error names the message).
// errors.Is and errors.As still see err.
func (h *smsInbound) hideNumberIn(err error, from string) error {
	if err == nil {
		return nil
	}
	if msg := h.hideNumber(err.Error(), from); msg != err.Error() {
		return &maskedError{msg: msg, err: err}
	}
	return err
}

// hideNumber masks in s the number from, as sent and in E.164, but for
// its last two digits ("+**********11").
func (h *smsInbound) hideNumber(s, from string) string {
	numbers := []string{strings.TrimSpace(from)}
	if e164, err := h.customers.NormalizePhone(from); err == nil {
		numbers = append(numbers, e164)
	}
	for _, n := range numbers {
		if len(n) >= 6 { // a shorter one would mask unrelated digits
			masked := strings.Map(func(r rune) rune {
				if '0' <= r && r <= '9' {
					return '*'
				}
				return r
			}, n[:len(n)-2]) + n[len(n)-2:]
			s = strings.ReplaceAll(s, n, masked)
		}
	}
	return s
}

// maskedError is an error whose text has personal data masked.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
