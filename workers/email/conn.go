package email

import (
	"net"
	"sync"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// longAgo is a deadline that has passed: setting it fails pending and
// future I/O at once.
var longAgo = time.Unix(1, 0)

// abortConn is a net.Conn that another goroutine can abort: abort moves
// the deadline into the past and keeps it there, whatever deadline go-mail
// sets afterwards. go-mail only bounds I/O with deadlines, so this is how a
// cancelled context interrupts a dial, a handshake or a send.
type abortConn struct {
	net.Conn
	mu      sync.Mutex
	aborted bool
}

func (c *abortConn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted = true
	_ = c.Conn.SetDeadline(longAgo)
}

func (c *abortConn) deadline(t time.Time) time.Time {
	if c.aborted {
		return longAgo
	}
	return t
}

// SetDeadline sets the deadline unless the connection was aborted.
func (c *abortConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetDeadline(c.deadline(t))
}

// SetReadDeadline sets the read deadline unless the connection was aborted.
func (c *abortConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.deadline(t))
}

// SetWriteDeadline sets the write deadline unless the connection was aborted.
func (c *abortConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.deadline(t))
}

// dialSlot receives the connection go-mail dials (through the context
// passed to DialToSMTPClientWithContext), so that the pool can abort the
// handshake and close the connection when go-mail returns an error without
// closing it.
type dialSlot struct {
	mu      sync.Mutex
	conn    *abortConn
	aborted bool
}

type dialSlotKey struct{}

func (s *dialSlot) set(c *abortConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = c
	if s.aborted {
		c.abort()
	}
}

func (s *dialSlot) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = true
	if s.conn != nil {
		s.conn.abort()
	}
}

func (s *dialSlot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
}

// conn is one pooled SMTP connection. Only the goroutine that borrowed it
// touches it.
type conn struct {
	id       uint64
	client   *smtp.Client
	raw      *abortConn
	lastUsed time.Time
	sends    int  // transactions attempted on it
	broken   bool // aborted or failed: never reuse
	// pipelining: the server advertised PIPELINING and the pool may use it
	pipelining bool
}

// quitTimeout bounds the QUIT sent when a healthy connection is closed.
const quitTimeout = 2 * time.Second

// close ends the connection: QUIT when it is healthy, then close.
func (c *conn) close() error {
	var err error
	if !c.broken && c.client.HasConnection() {
		if err = c.client.UpdateDeadline(quitTimeout); err == nil {
			err = c.client.Quit()
		}
	}
	_ = c.raw.Close() // after a clean QUIT it is already closed
	return err
}
