package email

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// A server that advertises PIPELINING (RFC 2920) gets each message's MAIL
// FROM, RCPT TO and DATA in one write, and their replies are read
// together: two round trips per message (the commands, then the content)
// instead of go-mail's four. Against a relay a few milliseconds away that
// halves the time a connection spends on each message; on loopback it
// halves the system calls on both sides. go-mail still builds the message,
// dials, starts TLS and authenticates; only the transaction is ours.

// step is where in a transaction a pipelined send failed.
type step string

const (
	stepMail    step = "MAIL FROM"
	stepRcpt    step = "RCPT TO"
	stepData    step = "DATA"
	stepContent step = "message content"
	stepEnd     step = "end of data"
	stepReset   step = "RSET"
)

// stepError is the failure of one step of a pipelined transaction: the
// server's reply (a *textproto.Error) or a network error.
type stepError struct {
	step step
	err  error
}

func (e *stepError) Error() string { return fmt.Sprintf("smtp %s: %v", e.step, e.err) }
func (e *stepError) Unwrap() error { return e.err }

// code is the SMTP reply code of the failure, 0 when the server gave none.
func (e *stepError) code() int {
	var te *textproto.Error
	if errors.As(e.err, &te) {
		return te.Code
	}
	return 0
}

// canPipeline reports whether the server c talks to accepts PIPELINING.
func canPipeline(c *smtp.Client) bool {
	ok, _ := c.Extension("PIPELINING")
	return ok
}

// sendPipelined runs one transaction for msg on c, pipelining its
// commands. delivered is true once the server accepted the content (250
// after the final dot), whatever follows. A refused MAIL FROM or RCPT TO
// is followed by RSET, so the connection is reusable when the RSET got its
// 250; any other failure leaves the dialogue out of step.
func sendPipelined(c *smtp.Client, msg *gomail.Msg) (delivered bool, err error) {
	from, err := msg.GetSender(false)
	if err != nil {
		return false, fmt.Errorf("%w: no sender: %v", ErrInvalidMessage, err)
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return false, fmt.Errorf("%w: no recipient: %v", ErrInvalidMessage, err)
	}
	for _, a := range append([]string{from}, rcpts...) {
		if strings.ContainsAny(a, "\r\n") {
			return false, fmt.Errorf("%w: an address with a line break", ErrInvalidMessage)
		}
	}
	var params string
	if ok, _ := c.Extension("8BITMIME"); ok {
		params += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		params += " SMTPUTF8"
	}

	text := c.Text
	w := text.W
	fmt.Fprintf(w, "MAIL FROM:%s%s\r\n", from, params)
	for _, r := range rcpts {
		fmt.Fprintf(w, "RCPT TO:%s\r\n", r)
	}
	w.WriteString("DATA\r\n")
	if err := w.Flush(); err != nil {
		return false, &stepError{step: stepMail, err: err}
	}

	// Every command gets its reply, read in order, even after a refusal:
	// the first refusal is the cause, the rest follow from it (503 bad
	// sequence, 554 no valid recipients).
	var first *stepError
	refused := func(s step, err error) error {
		var te *textproto.Error
		if !errors.As(err, &te) || te.Code == 421 {
			// No reply, or the server is closing the connection: the
			// dialogue is over.
			return &stepError{step: s, err: err}
		}
		if first == nil {
			first = &stepError{step: s, err: err}
		}
		return nil
	}
	if _, _, err := text.ReadResponse(250); err != nil {
		if e := refused(stepMail, err); e != nil {
			return false, e
		}
	}
	for range rcpts {
		if _, _, err := text.ReadResponse(25); err != nil {
			if e := refused(stepRcpt, err); e != nil {
				return false, e
			}
		}
	}
	_, _, err = text.ReadResponse(354)
	if err != nil {
		if e := refused(stepData, err); e != nil {
			return false, e
		}
	}
	if first != nil {
		if err == nil {
			// DATA was accepted although MAIL or RCPT was not: end the
			// empty message (RFC 2920 3.1) and throw it away with RSET.
			w.WriteString(".\r\n")
			if err := w.Flush(); err != nil {
				return false, &stepError{step: stepEnd, err: err}
			}
			if _, _, err := text.ReadResponse(0); err != nil {
				var te *textproto.Error
				if !errors.As(err, &te) {
					return false, &stepError{step: stepEnd, err: err}
				}
			}
		}
		if first.step == stepData {
			return false, first
		}
		if err := c.Reset(); err != nil {
			return false, &stepError{step: stepReset, err: err}
		}
		return false, first
	}

	dw := text.DotWriter()
	if _, err := msg.WriteTo(dw); err != nil {
		_ = dw.Close()
		return false, &stepError{step: stepContent, err: err}
	}
	if err := dw.Close(); err != nil {
		return false, &stepError{step: stepContent, err: err}
	}
	if _, _, err := text.ReadResponse(250); err != nil {
		return false, &stepError{step: stepEnd, err: err}
	}
	return true, nil
}
