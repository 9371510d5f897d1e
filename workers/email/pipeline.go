package email

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"

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
)

// stepError is the failure of one step of a pipelined transaction: the
// server's reply (a *textproto.Error) or a network error.
type stepError struct {
	step step
	err  error
	// outOfStep: after this refusal the dialogue could not be put back in
	// step (the RSET or the end of an empty message failed); the refusal
	// stands, the connection is not to be reused
	outOfStep bool
}

func (e *stepError) Error() string { return fmt.Sprintf("smtp %s: %v", e.step, e.err) }
func (e *stepError) Unwrap() error { return e.err }

// code is the SMTP reply code of the failure, 0 when the server gave none.
func (e *stepError) code() int {
	code, _ := serverReply(e.err)
	return code
}

// canPipeline reports whether the server c talks to accepts PIPELINING.
func canPipeline(c *smtp.Client) bool {
	ok, _ := c.Extension("PIPELINING")
	return ok
}

// sendPipelined runs one transaction for msg on c, pipelining its
// commands. delivered is true once the server accepted the content (250
// after the final dot). A refused MAIL FROM or RCPT TO is followed by RSET,
// and the connection is reusable when the RSET got its 250 (see reusable).
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
	// The whole message first: a message go-mail cannot write is refused
	// before the server hears of it, and the content goes out a line at a
	// time rather than through textproto's byte-at-a-time dot writer.
	content := contentBuffers.Get().(*bytes.Buffer)
	defer putContentBuffer(content)
	content.Reset()
	if _, err := msg.WriteTo(content); err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
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
	_, _ = w.WriteString("DATA\r\n")
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
			// dialogue is over. An earlier refusal stands (a server may
			// close after it, as Postfix does after too many errors).
			if first != nil {
				first.outOfStep = true
				return first
			}
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
			_, _ = w.WriteString(".\r\n")
			if w.Flush() != nil {
				first.outOfStep = true
				return false, first
			}
			if _, _, err := text.ReadResponse(0); err != nil {
				first.outOfStep = true
				return false, first
			}
		}
		if first.step != stepData && c.Reset() != nil {
			first.outOfStep = true
		}
		return false, first
	}

	if err := writeDotted(w, content.Bytes()); err != nil {
		return false, &stepError{step: stepContent, err: err}
	}
	if _, _, err := text.ReadResponse(250); err != nil {
		return false, &stepError{step: stepEnd, err: err}
	}
	return true, nil
}

// contentBuffers hold messages while they are sent.
var contentBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putContentBuffer returns b to contentBuffers unless a large message
// grew it: one campaign with attachments must not pin megabytes per
// connection for good.
func putContentBuffer(b *bytes.Buffer) {
	if b.Cap() <= 256<<10 {
		contentBuffers.Put(b)
	}
}

// writeDotted writes b as SMTP message content followed by the final dot
// and flushes w: exactly the bytes net/textproto's DotWriter writes (a dot
// at the start of a line doubled, a bare LF sent as CRLF, the content ended
// with CRLF . CRLF), a line at a time instead of a byte at a time; the dot
// writer was a tenth of the daemon's CPU time in a campaign.
func writeDotted(w *bufio.Writer, b []byte) error {
	if len(b) == 0 {
		_, _ = w.WriteString("\r\n.\r\n")
		return w.Flush()
	}
	for len(b) > 0 {
		if b[0] == '.' {
			_ = w.WriteByte('.')
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			_, _ = w.Write(b)
			// DotWriter's end: CRLF unless the content ends in the CR
			// of a line end it has not seen the LF of.
			if oddCRs(b) {
				_, _ = w.WriteString("\n.\r\n")
			} else {
				_, _ = w.WriteString("\r\n.\r\n")
			}
			return w.Flush()
		}
		line := b[:i]
		_, _ = w.Write(line)
		if oddCRs(line) {
			_ = w.WriteByte('\n') // the line ends in CR LF already
		} else {
			_, _ = w.WriteString("\r\n")
		}
		b = b[i+1:]
	}
	_, _ = w.WriteString(".\r\n")
	return w.Flush()
}

// oddCRs reports whether b ends in an odd number of CRs: DotWriter takes
// CR CR as two data bytes, so only the last of an odd run pairs with an LF.
func oddCRs(b []byte) bool {
	n := 0
	for n < len(b) && b[len(b)-1-n] == '\r' {
		n++
	}
	return n%2 == 1
}
