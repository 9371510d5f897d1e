package sms

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopworks/backoffice/jobs"
)

// MaxWebhookBody is the largest webhook request body read. Twilio's
// biggest (an MMS with ten media URLs and a 1,600-character body) is a few
// KiB; anything past this is refused before its signature is checked.
const MaxWebhookBody = 64 << 10

// Reasons a webhook request is refused before its signature is checked.
const (
	ReasonTooLarge    = "too_large"
	ReasonContentType = "content_type"
	ReasonMalformed   = "malformed"
	ReasonDuplicate   = "duplicate_param"
)

// FormError is why a webhook body was not read; Reason is one of the
// Reason* constants, used as a metric label.
type FormError struct {
	Reason string
	Err    error
}

func (e *FormError) Error() string { return "webhook form: " + e.Err.Error() }
func (e *FormError) Unwrap() error { return e.Err }

// ReadForm reads a webhook's form-encoded body, at most limit bytes. Every
// parameter must appear once: Twilio never repeats one, and a repeated one
// would be read differently by the signature check and by us.
func ReadForm(body io.Reader, contentType string, limit int64) (url.Values, error) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &FormError{ReasonContentType, fmt.Errorf("content type %q, want application/x-www-form-urlencoded", contentType)}
	}
	raw, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, &FormError{ReasonMalformed, fmt.Errorf("read body: %w", err)}
	}
	if int64(len(raw)) > limit {
		return nil, &FormError{ReasonTooLarge, fmt.Errorf("body over %d bytes", limit)}
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, &FormError{ReasonMalformed, err}
	}
	for name, vals := range form {
		if len(vals) > 1 {
			return nil, &FormError{ReasonDuplicate, fmt.Errorf("parameter %q appears %d times", cutUTF8(name, 40), len(vals))}
		}
	}
	return form, nil
}

// FormReason returns the Reason of a *FormError in err's chain, or
// ReasonMalformed.
func FormReason(err error) string {
	var fe *FormError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return ReasonMalformed
}

// ParseInbound builds the sms:inbound args of Twilio's incoming-message
// webhook form, received at now. It never fails: a form without a valid
// MessageSid is keyed by its digest and keeps its raw form for staff, and
// text that is not UTF-8 is repaired, so that nothing Twilio signed is lost.
func ParseInbound(form url.Values, idempotencyToken string, now time.Time) jobs.SMSInboundArgs {
	a := jobs.SMSInboundArgs{
		MessageSID:       firstOf(form, "MessageSid", "SmsMessageSid", "SmsSid"),
		From:             repairUTF8(form.Get("From")),
		To:               repairUTF8(form.Get("To")),
		Body:             repairUTF8(form.Get("Body")),
		NumMedia:         repairUTF8(form.Get("NumMedia")),
		IdempotencyToken: repairUTF8(idempotencyToken),
		ReceivedAt:       now.UTC(),
	}
	for i := 0; i < jobs.MaxSMSMedia; i++ {
		if u := form.Get("MediaUrl" + strconv.Itoa(i)); u != "" {
			a.MediaURLs = append(a.MediaURLs, repairUTF8(u))
		}
	}
	if !jobs.ValidMessageSID(a.MessageSID) {
		a.MessageSID, a.Raw = malformedKey(form)
	}
	return a
}

// ParseStatus builds the sms:status args of a Twilio status callback form.
// Like ParseInbound it never fails: a callback without a valid MessageSid
// or MessageStatus is keyed by its digest, with status "malformed".
func ParseStatus(form url.Values, now time.Time) jobs.SMSStatusArgs {
	a := jobs.SMSStatusArgs{
		MessageSID: firstOf(form, "MessageSid", "SmsSid"),
		Status:     strings.ToLower(firstOf(form, "MessageStatus", "SmsStatus")),
		ErrorCode:  form.Get("ErrorCode"),
		ReceivedAt: now.UTC(),
	}
	if !jobs.ValidMessageSID(a.MessageSID) || !validStatus(a.Status) || !validErrorCode(a.ErrorCode) {
		a.MessageSID, a.Raw = malformedKey(form)
		a.Status, a.ErrorCode = "malformed", ""
	}
	return a
}

// malformedKey returns the digest key and the raw text kept for staff of a
// form that has no usable MessageSid.
func malformedKey(form url.Values) (key, raw string) {
	enc := form.Encode() // sorted by name: the same request gives the same key
	return jobs.MalformedSMSKey(enc), cutUTF8(repairUTF8(enc), jobs.MaxSMSRaw)
}

func validStatus(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

func validErrorCode(s string) bool {
	if len(s) > 16 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// firstOf returns the value of the first of names that form has.
func firstOf(form url.Values, names ...string) string {
	for _, n := range names {
		if v := form.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// repairUTF8 repairs text that is not UTF-8, which JSON could not carry intact.
func repairUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// cutUTF8 cuts s to at most n bytes, on a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
