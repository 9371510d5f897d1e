package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// session is one SMTP session; go-smtp starts a new one after EHLO and
// after STARTTLS.
type session struct {
	s    *Server
	conn *smtp.Conn
	id   int
	user string
	from string
	to   []string
	try  int // attempt number of the first recipient
	// hangUp closes the connection at the end of the transaction
	// (Options.HangUp)
	hangUp bool
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, conn: c, id: connID(c.Conn())}, nil
}

// connID finds the tracked TCP connection under c, TLS or not.
func connID(c net.Conn) int {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*trackedConn); ok {
		return tc.id
	}
	return 0
}

// AuthMechanisms offers PLAIN when the server has credentials.
func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks PLAIN credentials.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

// Mail starts a transaction.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && ss.user == "" {
		return errAuthRequired
	}
	ss.from = from
	return nil
}

// Rcpt adds a recipient unless Options.Reject refuses it.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	attempt := ss.s.attempt(rcptKey(to))
	if reject := ss.s.opts.Reject; reject != nil {
		if err := reject(to, attempt); err != nil {
			return err
		}
	}
	if len(ss.to) == 0 {
		ss.try = attempt
	}
	ss.to = append(ss.to, to)
	return nil
}

// errDropped is returned after the connection was closed on purpose.
var errDropped = errors.New("smtptest: connection dropped")

// Data receives the message, then records it or drops the connection.
func (ss *session) Data(r io.Reader) error {
	if ss.s.opts.Sink {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		ss.s.record(Message{})
		return nil
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if drop := ss.s.opts.Drop; drop != nil && len(ss.to) > 0 && drop(ss.to[0], ss.try) {
		_ = ss.conn.Conn().Close()
		return errDropped
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.s.record(Message{
		From: ss.from, To: append([]string(nil), ss.to...), Data: bytes.Clone(data),
		Conn: ss.id, TLS: isTLS, User: ss.user,
	})
	ss.hangUp = ss.s.opts.HangUp != nil && len(ss.to) > 0 && ss.s.opts.HangUp(ss.to[0], ss.try)
	return nil
}

// Reset ends the transaction (RSET, or after DATA: go-smtp calls it once
// the reply to the data is written, so a hang-up here comes after the
// client read its 250).
func (ss *session) Reset() {
	if ss.hangUp {
		ss.hangUp = false
		_ = ss.conn.Conn().Close()
	}
	ss.from, ss.to, ss.try = "", nil, 0
}

// Logout ends the session.
func (ss *session) Logout() error { return nil }
