// Package twiliotest runs a local HTTP server that speaks the part of
// Twilio's REST API the daemon uses: creating a message
// (POST /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP Basic
// auth). It answers like Twilio (201 with the message resource, JSON errors
// with Twilio's codes), records what it accepted, and injects faults: 429
// with Retry-After, 5xx with an HTML body, opted-out recipients, latency,
// and broken answers (Options.Fault): a connection dropped before or after
// the message is created, a 201 whose body is cut short.
// SendStatusCallback posts a signed delivery status callback, as Twilio
// does, to a webhook under test.
package twiliotest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Options change how Start runs the server.
type Options struct {
	// AccountSID and AuthToken are the credentials the server accepts.
	// Default: a random "AC..." SID and a random 32-hex-digit token.
	AccountSID, AuthToken string
	// Fail, when set, is asked for every authenticated request with its
	// number (1 first) and the To field. A non-zero status fails the
	// request: with code non-zero the body is Twilio's JSON error, with
	// code 0 an HTML page (as a load balancer sends). retryAfter, when not
	// empty, is sent as the Retry-After header.
	Fail func(n int, to string) (status, code int, retryAfter string)
	// OptedOut numbers get 400 with code 21610, as after the recipient
	// replied STOP.
	OptedOut []string
	// Latency delays every answer, or until the client gives up.
	Latency time.Duration
	// Fault, when set, is asked for every authenticated request that Fail
	// did not fail, with its number (1 first) and the To field; see Fault.
	Fault func(n int, to string) Fault
}

// Fault is a broken answer to a create request.
type Fault int

const (
	// NoFault answers as Twilio does.
	NoFault Fault = iota
	// DropBeforeCreate reads the request, creates nothing and closes the
	// connection without an answer.
	DropBeforeCreate
	// DropAfterCreate creates the message (Count includes it) and closes
	// the connection without an answer: Twilio sent the SMS, the client
	// never hears of it.
	DropAfterCreate
	// TruncatedJSON creates the message and answers 201 with a well
	// framed body holding the first half of the JSON resource.
	TruncatedJSON
	// ShortBody creates the message and answers 201 announcing the whole
	// resource in Content-Length but sends only half of it before closing
	// the connection: reading the body fails.
	ShortBody
)

// Message is one message the server accepted.
type Message struct {
	SID                 string
	AccountSID          string
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	StatusCallback      string
	NumSegments         int
	Form                url.Values // the request's form as received
}

// Server is a running fake Twilio API.
type Server struct {
	URL        string // http://127.0.0.1:port, for TwilioOptions.APIURL
	AccountSID string
	AuthToken  string

	opts     Options
	srv      *httptest.Server
	optedOut map[string]bool
	closing  chan struct{}

	mu       sync.Mutex
	messages []Message
	requests int
	conns    int
}

// Start runs a server for t and stops it in t.Cleanup.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s := &Server{
		AccountSID: o.AccountSID, AuthToken: o.AuthToken, opts: o,
		optedOut: map[string]bool{}, closing: make(chan struct{}),
	}
	if s.AccountSID == "" {
		s.AccountSID = "AC" + randomHex(16)
	}
	if s.AuthToken == "" {
		s.AuthToken = randomHex(16)
	}
	for _, n := range o.OptedOut {
		s.optedOut[n] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{AccountSid}/Messages.json", s.createMessage)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found", "")
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.closing) // ends requests held by Latency
		s.srv.Close()
	})
	return s
}

// Messages returns a copy of the messages accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Count returns how many messages the server accepted (answered 201).
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}

// Requests returns how many authenticated create requests arrived,
// failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Connections returns how many TCP connections the server accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

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
			t.Fatalf("twiliotest: gave up after %v: %s", timeout, what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
