package sms

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Message is one outbound SMS.
type Message struct {
	To             string // recipient in E.164, "+421901234567"
	Body           string // 1 to 1,600 characters (Twilio's limit)
	StatusCallback string // optional absolute http(s) URL Twilio posts delivery status to
	Ref            string // our reference for logs and the outbox, such as "run:recipient"
}

// Result is what the provider said about an accepted message.
type Result struct {
	SID    string // Twilio's message SID ("SM..."), or the outbox's ("OB...")
	Status string // "queued", "accepted", ...
}

// Sender is what a job needs to send one SMS. Consumers declare their own
// copy of this interface; it is here to document the shape that Twilio and
// Outbox satisfy.
type Sender interface {
	Send(ctx context.Context, m Message) (Result, error)
}

// MaxBodyChars is the longest body Twilio accepts, in characters.
const MaxBodyChars = 1600

// maxRefLen bounds Message.Ref.
const maxRefLen = 256

var e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// outboundInvalid returns an error about field of a Message wrapping
// ErrInvalidMessage.
func outboundInvalid(field, format string, args ...any) error {
	return fmt.Errorf("sms: message %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidMessage)
}

// validate checks m before anything is sent.
func (m Message) validate() error {
	if !e164Pattern.MatchString(m.To) {
		return outboundInvalid("To", "%q: want E.164, + and 7 to 15 digits", m.To)
	}
	if strings.TrimSpace(m.Body) == "" {
		return outboundInvalid("Body", "required")
	}
	if !utf8.ValidString(m.Body) || strings.ContainsRune(m.Body, 0) {
		return outboundInvalid("Body", "not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(m.Body); n > MaxBodyChars {
		return outboundInvalid("Body", "%d characters, at most %d", n, MaxBodyChars)
	}
	if m.StatusCallback != "" {
		if err := checkCallbackURL(m.StatusCallback); err != nil {
			return err
		}
	}
	if len(m.Ref) > maxRefLen || strings.ContainsFunc(m.Ref, unicode.IsControl) || !utf8.ValidString(m.Ref) {
		return outboundInvalid("Ref", "at most %d bytes of printable text", maxRefLen)
	}
	return nil
}

func checkCallbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(raw) > 2048 {
		return outboundInvalid("StatusCallback", "want an absolute http(s) URL")
	}
	return nil
}
