package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// SMS job kinds.
const (
	// KindSMSInbound files one message a customer sent to the shop's
	// number: the customer's timeline, consent keywords, the staff inbox.
	KindSMSInbound = "sms:inbound"
	// KindSMSStatus applies one Twilio delivery status callback to the
	// campaign ledger and the customer's timeline.
	KindSMSStatus = "sms:status"
)

// Limits of the webhook fields an SMS job carries. A request within the
// webhook's body cap (64 KiB) always fits them, so that nothing Twilio signed
// is refused when it is enqueued; the worker decides what is malformed.
const (
	MaxSMSField = 64 << 10 // bytes of any one field
	MaxSMSMedia = 10       // media URLs of one message (Twilio sends at most 10)
	MaxSMSRaw   = 4 << 10  // bytes of a malformed request kept for staff
)

func smsSpecs() []Spec {
	return []Spec{
		spec[SMSInboundArgs](Spec{
			Kind: KindSMSInbound, Queue: QueueCritical, MaxRetry: 25,
			Timeout: time.Minute, Retention: 24 * time.Hour,
			Summary:  "file an incoming SMS: customer timeline, STOP/START/HELP keywords, staff inbox",
			Internal: true, // queued by the signed webhook
		}),
		spec[SMSStatusArgs](Spec{
			Kind: KindSMSStatus, Queue: QueueDefault, MaxRetry: 25,
			Timeout: time.Minute, Retention: 24 * time.Hour,
			Summary:  "apply a Twilio delivery status callback to the campaign ledger and the customer's timeline",
			Internal: true, // queued by the signed webhook
		}),
	}
}

// messageSIDPattern is the shape of a Twilio message SID: SM (SMS) or MM
// (MMS) and 32 hexadecimal digits.
var messageSIDPattern = regexp.MustCompile(`^(SM|MM)[0-9a-fA-F]{32}$`)

// ValidMessageSID reports whether s looks like a Twilio message SID.
func ValidMessageSID(s string) bool { return messageSIDPattern.MatchString(s) }

// SMSInboundArgs are the args of sms:inbound: the fields of Twilio's
// incoming-message webhook, as Twilio signed them. Only the key is checked
// strictly; a malformed number, an empty or oversized body are the worker's
// to record where staff see them, never a reason to drop the message.
type SMSInboundArgs struct {
	// MessageSID is Twilio's MessageSid. When a signed request carried none
	// or a malformed one, the webhook puts "!" and a digest of the request
	// here so that the message is still filed (as malformed) exactly once.
	MessageSID string `json:"message_sid"`
	From       string `json:"from"`
	To         string `json:"to"`
	Body       string `json:"body"`
	// NumMedia is Twilio's NumMedia as sent (a decimal count).
	NumMedia  string   `json:"num_media,omitempty"`
	MediaURLs []string `json:"media_urls,omitempty"`
	// IdempotencyToken is Twilio's I-Twilio-Idempotency-Token header, kept
	// for tracing retried webhooks.
	IdempotencyToken string `json:"idempotency_token,omitempty"`
	// Raw is the request's form, re-encoded and cut to MaxSMSRaw bytes, set
	// only when MessageSID is a malformed-request key: what staff see.
	Raw string `json:"raw,omitempty"`
	// ReceivedAt is when the webhook answered.
	ReceivedAt time.Time `json:"received_at"`
}

// Kind implements Args.
func (SMSInboundArgs) Kind() string { return KindSMSInbound }

// TaskID implements Keyed: one task per Twilio message, however often
// Twilio retries the webhook.
func (a SMSInboundArgs) TaskID() string { return "sms:inbound:" + a.MessageSID }

// Validate implements Args.
func (a SMSInboundArgs) Validate() error {
	if err := validSMSKey("message_sid", a.MessageSID); err != nil {
		return err
	}
	fields := []struct{ name, v string }{
		{"from", a.From}, {"to", a.To}, {"body", a.Body}, {"num_media", a.NumMedia}, {"idempotency_token", a.IdempotencyToken},
		{"raw", a.Raw},
	}
	for _, f := range fields {
		if err := validSMSField(f.name, f.v); err != nil {
			return err
		}
	}
	if len(a.MediaURLs) > MaxSMSMedia {
		return Errorf("media_urls", "must hold at most %d URLs, got %d", MaxSMSMedia, len(a.MediaURLs))
	}
	for i, u := range a.MediaURLs {
		if err := validSMSField("media_urls["+strconv.Itoa(i)+"]", u); err != nil {
			return err
		}
	}
	if a.ReceivedAt.IsZero() {
		return Errorf("received_at", "is required")
	}
	return nil
}

// SMSStatusArgs are the args of sms:status: one Twilio status callback.
type SMSStatusArgs struct {
	MessageSID string `json:"message_sid"`
	// Status is Twilio's MessageStatus (queued, sent, delivered,
	// undelivered, failed, ...), lower case as Twilio sends it.
	Status string `json:"status"`
	// ErrorCode is Twilio's ErrorCode, e.g. "30003"; empty on success.
	ErrorCode string `json:"error_code,omitempty"`
	// Raw is as in SMSInboundArgs: set when the callback was malformed.
	Raw        string    `json:"raw,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// Kind implements Args.
func (SMSStatusArgs) Kind() string { return KindSMSStatus }

// TaskID implements Keyed: one task per message and status.
func (a SMSStatusArgs) TaskID() string { return "sms:status:" + a.MessageSID + ":" + a.Status }

// Validate implements Args.
func (a SMSStatusArgs) Validate() error {
	switch err := validSMSKey("message_sid", a.MessageSID); {
	case err != nil:
		return err
	case a.Status == "" || len(a.Status) > 64:
		return Errorf("status", "must be 1-64 bytes, got %d", len(a.Status))
	case len(a.ErrorCode) > 16:
		return Errorf("error_code", "must be at most 16 characters")
	case a.ReceivedAt.IsZero():
		return Errorf("received_at", "is required")
	}
	if err := validSMSField("status", a.Status); err != nil {
		return err
	}
	if err := validSMSField("raw", a.Raw); err != nil {
		return err
	}
	return validSMSField("error_code", a.ErrorCode)
}

// MalformedSMSKey returns the key the webhook files a signed request under
// when its MessageSid is missing or malformed: "!" and a digest of the
// request's parameters, so that a retried request gets the same key.
func MalformedSMSKey(signedParams string) string {
	sum := sha256.Sum256([]byte(signedParams))
	return "!" + hex.EncodeToString(sum[:16])
}

var malformedKeyPattern = regexp.MustCompile(`^![0-9a-f]{32}$`)

func validSMSKey(field, sid string) error {
	if !ValidMessageSID(sid) && !malformedKeyPattern.MatchString(sid) {
		return Errorf(field, "must be a Twilio message SID (SM or MM and 32 hex digits), got %q", truncate(sid, 40))
	}
	return nil
}

func validSMSField(field, v string) error {
	switch {
	case len(v) > MaxSMSField:
		return Errorf(field, "must be at most %d bytes, got %d", MaxSMSField, len(v))
	case !utf8.ValidString(v):
		return Errorf(field, "must be valid UTF-8")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
