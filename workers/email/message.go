// Package email sends e-mail: Pool delivers over a few reused SMTP
// connections (go-mail), Outbox writes each message as an .eml file for a
// machine with no SMTP server configured. Both take the same Message and
// build it with the same code, so what lands in the outbox is what the SMTP
// server would have received.
package email

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one e-mail to one recipient.
type Message struct {
	To     string // bare address, "jana@example.sk"
	ToName string // optional display name, any UTF-8
	From   string // "Name <addr>" or a bare address

	Subject string // UTF-8; required
	Text    string // plain-text body; Text or HTML (or both) is required
	HTML    string // HTML body; with Text the message is multipart/alternative

	// MessageID identifies the message: deterministic per campaign run and
	// recipient ("<run.recipient@host>", angle brackets optional), so a
	// duplicate delivery is detectable downstream and the outbox overwrites
	// instead of duplicating. Required.
	MessageID string

	// Headers are extra header fields such as X-Campaign. Names must be
	// valid field names and not one the builder sets itself; values must
	// not contain CR, LF or NUL.
	Headers map[string]string

	// UnsubscribeURL (https) sets List-Unsubscribe with
	// List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058).
	// UnsubscribeMailto ("mailto:..." or a bare address) is added to
	// List-Unsubscribe; alone it sets List-Unsubscribe without one-click.
	UnsubscribeURL    string
	UnsubscribeMailto string
}

// Sender is what a job needs to send one message. Consumers declare their
// own copy of this interface; it is here to document the shape that Pool
// and Outbox satisfy.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// ErrInvalidMessage is wrapped by every error about a Message that can
// never be sent as it is; IsPermanent reports true for it.
var ErrInvalidMessage = errors.New("invalid message")

// maxHeaderValue keeps every header line under the 998-octet limit of
// RFC 5322 even when the builder cannot fold it.
const maxHeaderValue = 900

// reservedHeaders are set by build itself; Message.Headers may not set them.
var reservedHeaders = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Sender": true, "Reply-To": true,
	"Subject": true, "Message-Id": true, "Date": true, "Mime-Version": true,
	"Content-Type": true, "Content-Transfer-Encoding": true, "Content-Disposition": true,
	"List-Unsubscribe": true, "List-Unsubscribe-Post": true, "Return-Path": true, "Received": true,
}

// invalid returns an error about field of a Message wrapping ErrInvalidMessage.
func invalid(field, format string, args ...any) error {
	if field != "" {
		field = " " + field
	}
	return fmt.Errorf("email: message%s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidMessage)
}

// build validates m and turns it into a go-mail message dated now. Pool and
// Outbox share it, so both write the same bytes for the same Message.
func build(m *Message, now time.Time) (*gomail.Msg, error) {
	if m == nil {
		return nil, invalid("", "nil message")
	}
	from, to, err := addresses(m)
	if err != nil {
		return nil, err
	}
	id, err := messageID(m.MessageID)
	if err != nil {
		return nil, err
	}
	if err := checkBody(m); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.AddToMailAddress(to)
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(id)
	msg.SetDateWithValue(now)
	if err := setHeaders(msg, m.Headers); err != nil {
		return nil, err
	}
	if err := setUnsubscribe(msg, m.UnsubscribeURL, m.UnsubscribeMailto); err != nil {
		return nil, err
	}
	setBody(msg, m.Text, m.HTML)
	return msg, nil
}

// addresses parses From and To; an address must be exactly one mailbox.
func addresses(m *Message) (from, to *mail.Address, err error) {
	if err := noBreaks("To", m.To); err != nil {
		return nil, nil, err
	}
	to, err = mail.ParseAddress(m.To)
	if err != nil || to.Name != "" || to.Address != strings.TrimSpace(m.To) {
		return nil, nil, invalid("To", "%q is not a bare e-mail address", m.To)
	}
	if err := noBreaks("ToName", m.ToName); err != nil {
		return nil, nil, err
	}
	to.Name = strings.TrimSpace(m.ToName)
	if err := noBreaks("From", m.From); err != nil {
		return nil, nil, err
	}
	from, err = mail.ParseAddress(m.From)
	if err != nil {
		return nil, nil, invalid("From", "%q: %v", m.From, err)
	}
	return from, to, nil
}

// messageID returns the Message-ID without angle brackets after checking it
// is one printable-ASCII local@domain token.
func messageID(raw string) (string, error) {
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(raw), "<"), ">")
	switch {
	case id == "":
		return "", invalid("MessageID", "required")
	case len(id) > 250:
		return "", invalid("MessageID", "longer than 250 characters")
	case strings.Count(id, "@") != 1 || strings.HasPrefix(id, "@") || strings.HasSuffix(id, "@"):
		return "", invalid("MessageID", "%q: want local@domain", raw)
	}
	for _, r := range id {
		if r <= ' ' || r >= 0x7f || r == '<' || r == '>' || r == '"' || r == '\\' {
			return "", invalid("MessageID", "%q: only printable ASCII without spaces, quotes or brackets", raw)
		}
	}
	return id, nil
}

func checkBody(m *Message) error {
	if strings.TrimSpace(m.Subject) == "" {
		return invalid("Subject", "required")
	}
	if err := noBreaks("Subject", m.Subject); err != nil {
		return err
	}
	if m.Text == "" && m.HTML == "" {
		return invalid("Text", "Text or HTML is required")
	}
	return nil
}

func setBody(msg *gomail.Msg, text, html string) {
	switch {
	case text != "" && html != "":
		msg.SetBodyString(gomail.TypeTextPlain, text)
		msg.AddAlternativeString(gomail.TypeTextHTML, html)
	case html != "":
		msg.SetBodyString(gomail.TypeTextHTML, html)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, text)
	}
}

func setHeaders(msg *gomail.Msg, headers map[string]string) error {
	for name, value := range headers {
		if !validFieldName(name) {
			return invalid("Headers", "field name %q is not valid", name)
		}
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		if reservedHeaders[canonical] {
			return invalid("Headers", "field %s is set by the sender, not by Headers", canonical)
		}
		if err := noBreaks("Headers["+canonical+"]", value); err != nil {
			return err
		}
		if len(value) > maxHeaderValue {
			return invalid("Headers["+canonical+"]", "longer than %d bytes", maxHeaderValue)
		}
		msg.SetGenHeader(gomail.Header(canonical), value)
	}
	return nil
}

// validFieldName reports whether name is an RFC 5322 field name: printable
// ASCII without colon or space.
func validFieldName(name string) bool {
	if name == "" || len(name) > 76 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func setUnsubscribe(msg *gomail.Msg, httpsURL, mailto string) error {
	var mailtoURI string
	if mailto != "" {
		var err error
		if mailtoURI, err = mailtoURIOf(mailto); err != nil {
			return err
		}
	}
	if httpsURL == "" {
		if mailtoURI != "" {
			msg.SetListUnsubscribe(mailtoURI)
		}
		return nil
	}
	if err := checkURI("UnsubscribeURL", httpsURL); err != nil {
		return err
	}
	var extra []string
	if mailtoURI != "" {
		extra = append(extra, mailtoURI)
	}
	if err := msg.SetListUnsubscribeOneClick(httpsURL, extra...); err != nil {
		return invalid("UnsubscribeURL", "%q: want an absolute https URL", httpsURL)
	}
	return nil
}

// mailtoURIOf accepts "mailto:addr?subject=..." or a bare address.
func mailtoURIOf(raw string) (string, error) {
	if err := checkURI("UnsubscribeMailto", raw); err != nil {
		return "", err
	}
	uri := raw
	if !strings.HasPrefix(strings.ToLower(raw), "mailto:") {
		uri = "mailto:" + raw
	}
	u, err := url.Parse(uri)
	if err != nil || u.Opaque == "" {
		return "", invalid("UnsubscribeMailto", "%q: want mailto:address", raw)
	}
	if _, err := mail.ParseAddress(u.Opaque); err != nil {
		return "", invalid("UnsubscribeMailto", "%q: %v", raw, err)
	}
	return uri, nil
}

// checkURI rejects what would break the <uri> syntax of List-Unsubscribe.
func checkURI(field, uri string) error {
	if len(uri) > maxHeaderValue/2 {
		return invalid(field, "longer than %d bytes", maxHeaderValue/2)
	}
	for _, r := range uri {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' {
			return invalid(field, "%q contains a space, control character or angle bracket", uri)
		}
	}
	return nil
}

func noBreaks(field, value string) error {
	if strings.ContainsAny(value, "\r\n\x00") {
		return invalid(field, "contains CR, LF or NUL")
	}
	return nil
}
