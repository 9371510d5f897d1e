package sms

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidMessage is wrapped by every error about an outbound Message
// that can never be sent as it is; IsPermanent reports true for it.
var ErrInvalidMessage = errors.New("invalid message")

// SendError is a failed request to create a message. It never holds the
// auth token.
type SendError struct {
	Code       int           // Twilio error code (21610 opted out, 20429 too many requests, 21611 sender queue full), 0 when none
	Status     int           // HTTP status, 0 when no response arrived
	Message    string        // Twilio's message, or what went wrong
	RetryAfter time.Duration // from Retry-After, 0 when absent
	Permanent  bool          // retrying cannot succeed
	// InDoubt: the request was sent and no response says whether Twilio
	// created the message (a timeout, a cancel or a dropped connection
	// after the whole request was written). Sending again may duplicate
	// it. Never set together with Permanent, and only with Status 0.
	InDoubt bool
	err     error
}

// Error describes the failure; it says "in doubt" for an InDoubt error.
func (e *SendError) Error() string {
	kind := "temporary"
	switch {
	case e.Permanent:
		kind = "permanent"
	case e.InDoubt:
		kind = "in doubt"
	}
	var b strings.Builder
	b.WriteString("sms: twilio")
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, ", error %d", e.Code)
	}
	fmt.Fprintf(&b, " (%s): %s", kind, e.Message)
	return b.String()
}

// Unwrap returns the underlying error, such as context.Canceled.
func (e *SendError) Unwrap() error { return e.err }

// IsPermanent reports whether retrying err cannot succeed: an invalid
// message, or a Twilio error about the recipient or the message (21610
// opted out, 21211 invalid number, 21614 not a mobile, 21408 region not
// enabled, 21612 unreachable, 30003-30007, and any other 4xx). Transient:
// 429 / 20429 and 21611 (see IsRateLimited), 5xx (JSON or not), network
// errors, timeouts, and 401, 403 and 404, which mean wrong credentials or
// account SID, a configuration problem that must not mark every recipient
// as failed.
//
// False does not mean that sending again is safe: when IsInDoubt(err),
// the request reached the network and Twilio may have created the
// message; the caller decides whether to resend, hold or ask a human.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	var se *SendError
	if errors.As(err, &se) {
		return se.Permanent
	}
	return false
}

// IsInDoubt reports whether err is a SendError whose request was written
// to the connection in full with no response after it (a timeout, a
// cancel, a connection reset or closed while waiting), so that nobody
// knows whether Twilio created the message. Twilio's Messages API has no
// idempotency key: sending again may deliver the SMS twice. A failure to
// connect (DNS, refused, TLS handshake) or to write the request is not in
// doubt. IsPermanent is false for such an error.
func IsInDoubt(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.InDoubt
}

// IsRateLimited reports whether err is Twilio asking us to slow down:
// HTTP 429, error 20429 (too many requests) or 21611 (the sender's queue
// of outgoing messages is full). It clears with time: hold the remaining
// sends (see RetryAfter) rather than fail them.
func IsRateLimited(err error) bool {
	var se *SendError
	return errors.As(err, &se) &&
		(se.Status == http.StatusTooManyRequests || se.Code == 20429 || se.Code == 21611)
}

// RetryAfter returns how long Twilio asked us to wait (its Retry-After
// header) before the next request, when it said.
func RetryAfter(err error) (time.Duration, bool) {
	var se *SendError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// permanentTwilioError classifies an HTTP status and Twilio error code.
func permanentTwilioError(status, code int) bool {
	switch {
	case code == 20429 || code == 21611 || status == http.StatusTooManyRequests:
		return false // rate limited: clears with time
	case status >= 500 || status == 0:
		return false
	case code == 21610 || code == 21211 || code == 21614 || code == 21408 || code == 21612:
		return true
	case code >= 30003 && code <= 30007:
		return true
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound:
		return false
	}
	return status >= 400
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
