// Package smtptest runs a real SMTP server (emersion/go-smtp) in the test
// process on 127.0.0.1: it records every message it accepts, counts
// connections, can require AUTH PLAIN and TLS, and injects faults (reject
// chosen recipients with 4xx or 5xx, drop the connection in DATA). A sink
// mode counts and discards messages for benchmarks.
package smtptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TLSMode says how the server offers TLS.
type TLSMode int

const (
	NoTLS    TLSMode = iota // plain text only
	StartTLS                // STARTTLS offered (self-signed certificate, see RootCAs)
	Implicit                // TLS from the first byte, as on port 465
)

// Options change how Start runs the server.
type Options struct {
	// Reject, when set, is asked at every RCPT TO with the recipient and
	// how many times that recipient has been tried (1 first); a non-nil
	// error is the reply, such as 451 (try later) or 550 (no such user).
	Reject func(rcpt string, attempt int) *smtp.SMTPError
	// Drop, when set, is asked after the message data of a recipient's
	// attempt was received; true closes the connection without a reply,
	// as a server that crashes mid-transaction. The message is not kept.
	Drop func(rcpt string, attempt int) bool
	// HangUp, when set, is asked after a recipient's message was accepted
	// and its 250 reply sent; true closes the connection before the next
	// command (the client's next MAIL FROM), as a server that dies between
	// transactions. The message is kept.
	HangUp func(rcpt string, attempt int) bool
	// Username and Password require AUTH PLAIN with these credentials
	// before MAIL FROM.
	Username, Password string
	// TLS offers STARTTLS or implicit TLS with a self-signed certificate
	// for 127.0.0.1.
	TLS TLSMode
	// Sink counts messages and discards them: no recording, no parsing.
	Sink bool
	// Transcript keeps every line of every connection, both ways, for
	// Server.Transcript.
	Transcript bool
	// Latency delays everything each connection carries by this much in
	// each direction, as a relay Latency*2 of round trip away (for
	// benchmarks: pipelined against one-command-at-a-time dialogues).
	Latency time.Duration
}

// Message is one message the server accepted.
type Message struct {
	From   string
	To     []string
	Data   []byte      // exactly as received (dot-unstuffed), CRLF line ends
	Header mail.Header // parsed with net/mail; nil when Data did not parse
	Conn   int         // which connection carried it (1 = first accepted)
	TLS    bool        // the connection was encrypted
	User   string      // who authenticated, "" without AUTH
}

// Server is a running SMTP server.
type Server struct {
	Addr string // 127.0.0.1:port

	opts     Options
	srv      *smtp.Server
	listener *trackingListener
	roots    *x509.CertPool
	served   chan struct{}

	mu         sync.Mutex
	messages   []Message
	transcript bytes.Buffer
	count      int
	attempts   map[string]int
}

// Start runs a server for t and stops it in t.Cleanup.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{
		Addr: tcp.Addr().String(), opts: o, served: make(chan struct{}),
		listener: &trackingListener{Listener: tcp, open: map[net.Conn]bool{}, latency: o.Latency},
		attempts: map[string]int{},
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "smtptest.local"
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.MaxMessageBytes = 32 << 20
	s.srv.AllowInsecureAuth = true
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	if o.Transcript {
		s.srv.Debug = transcriptWriter{s}
	}
	var l net.Listener = s.listener
	if o.TLS != NoTLS {
		cfg, roots, err := selfSigned()
		if err != nil {
			t.Fatalf("smtptest: certificate: %v", err)
		}
		s.roots = roots
		if o.TLS == StartTLS {
			s.srv.TLSConfig = cfg
		} else {
			l = tls.NewListener(l, cfg)
		}
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(l)
	}()
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and every connection, and waits until every
// session goroutine has returned.
func (s *Server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Shutdown(ctx) // closes the listener, waits for sessions
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.listener.closeAll() // sessions end when their connection does
		select {
		case <-done:
			// Shutdown misses the listener when Serve has not
			// registered it yet; closing it again is harmless.
			_ = s.listener.Close()
			<-s.served
			return
		case <-tick.C:
		}
	}
}

// URL returns an smtp:// or smtps:// URL for email.PoolOptions, with the
// credentials and the tls option the server needs.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr, RawQuery: "tls=none"}
	switch s.opts.TLS {
	case StartTLS:
		u.RawQuery = "tls=mandatory-starttls"
	case Implicit:
		u.Scheme, u.RawQuery = "smtps", ""
	}
	if s.opts.Username != "" {
		u.User = url.UserPassword(s.opts.Username, s.opts.Password)
	}
	return u.String()
}

// RootCAs returns a pool trusting the server's certificate; nil without TLS.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// Messages returns a copy of the messages accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Transcript returns what was said on every connection so far (with
// Options.Transcript), as go-smtp's debug output: the client's lines and
// the server's replies.
func (s *Server) Transcript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transcript.String()
}

// transcriptWriter is go-smtp's Debug writer, called from every
// connection's goroutine.
type transcriptWriter struct{ s *Server }

func (w transcriptWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.transcript.Write(p)
}

// Count returns how many messages the server accepted (also in Sink mode).
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Connections returns how many connections the server accepted so far.
func (s *Server) Connections() int { return s.listener.accepted() }

// OpenConnections returns how many connections are open now.
func (s *Server) OpenConnections() int { return s.listener.openCount() }

// DropConnections closes every open connection from the server side, as
// a server restart or an idle timeout would.
func (s *Server) DropConnections() { s.listener.closeAll() }

// WaitFor polls until the server accepted at least n messages and returns
// them; it fails t when timeout passes first.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	WaitUntil(t, timeout, func() bool { return s.Count() >= n },
		func() string { return fmt.Sprintf("%d messages, want %d", s.Count(), n) })
	return s.Messages()
}

// WaitUntil polls cond every few milliseconds until it is true, failing t
// with what() when timeout passes first.
func WaitUntil(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("smtptest: gave up after %v: %s", timeout, what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// attempt counts one more try of rcpt and returns its number.
func (s *Server) attempt(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[rcpt]++
	return s.attempts[rcpt]
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if s.opts.Sink {
		return
	}
	if parsed, err := mail.ReadMessage(bytes.NewReader(m.Data)); err == nil {
		m.Header = parsed.Header
	}
	s.messages = append(s.messages, m)
}

// rcptKey normalises an address for attempt counting.
func rcptKey(to string) string { return strings.ToLower(strings.Trim(to, "<>")) }
