package email

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// ErrPoolClosed is returned by Send after Close. It is transient: the job
// is retried by a daemon that is not shutting down.
var ErrPoolClosed = errors.New("email: pool closed")

// SendError is a failed delivery to one recipient. Its text comes from the
// SMTP dialogue (reply code and server text, the recipient, the
// Message-ID); it never holds a message body or a password.
type SendError struct {
	Code      int    // SMTP reply code, 0 when the server gave none (network error, timeout)
	Enhanced  string // enhanced status code ("5.1.1") when the server sent one
	Text      string // what failed, with the server's reply
	Temporary bool   // retrying later may succeed
	To        string // the recipient
	err       error
}

// Error describes the failure.
func (e *SendError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	return fmt.Sprintf("email: send to %s (%s): %s", e.To, kind, e.Text)
}

// Unwrap returns the underlying error, such as context.Canceled.
func (e *SendError) Unwrap() error { return e.err }

// IsPermanent reports whether retrying err cannot succeed: an SMTP 5xx
// reply to the message or an invalid message or address. SMTP 4xx
// replies, network errors, timeouts, replies without a code, a closed pool
// and failures to connect, start TLS or authenticate (a problem of the
// server or of our configuration, not of the recipient) are transient.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	var se *SendError
	if errors.As(err, &se) {
		return !se.Temporary
	}
	return false
}

// sendFailure turns what a transaction returned (sendPipelined or go-mail's
// SendWithSMTPClient) into a *SendError for recipient to.
func sendFailure(err error, to string) *SendError {
	if errors.Is(err, ErrInvalidMessage) {
		return &SendError{Text: err.Error(), To: to, err: err}
	}
	var se *stepError
	if errors.As(err, &se) {
		code, enhanced := serverReply(err)
		return &SendError{Code: code, Enhanced: enhanced, Text: se.Error(), Temporary: code < 500 || code > 599, To: to, err: err}
	}
	var me *gomail.SendError
	if !errors.As(err, &me) {
		return &SendError{Text: err.Error(), Temporary: true, To: to, err: err}
	}
	code := me.ErrorCode()
	permanent := code >= 500 && code <= 599
	switch me.Reason {
	case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
		permanent = true // the message itself cannot be sent
	}
	return &SendError{
		Code: code, Enhanced: me.EnhancedStatusCode(), Text: me.Error(),
		Temporary: !permanent, To: to, err: err,
	}
}

// connectFailure wraps a failure to dial, greet, start TLS or authenticate.
// It is always transient: it says nothing about the recipient.
func connectFailure(err error, to string) *SendError {
	code, enhanced := serverReply(err)
	return &SendError{Code: code, Enhanced: enhanced, Text: "connect: " + err.Error(), Temporary: true, To: to, err: err}
}

// serverReply returns the reply code and enhanced status code of the
// server's reply in err's chain, or 0 and "" when the server gave none (a
// network error, a timeout).
func serverReply(err error) (code int, enhanced string) {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return 0, ""
	}
	return te.Code, enhancedOf(te.Msg)
}

// enhancedOf returns the leading "x.y.z" enhanced status code of an SMTP
// reply text, or "".
func enhancedOf(reply string) string {
	word, _, _ := strings.Cut(reply, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.ContainsAny(parts[0], "245") {
		return ""
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return word
}
