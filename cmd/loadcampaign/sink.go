package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is an SMTP server (emersion/go-smtp, in this process, on loopback)
// that discards every message and counts, per recipient, how many it
// accepted: the target of the baseline and of the daemon alike.
// workers/email/smtptest's sink mode counts messages but not recipients.
type sink struct {
	Addr   string
	srv    *smtp.Server
	served chan struct{}

	mu    sync.Mutex
	tally tally
}

// tally is what a sink accepted since the last take.
type tally struct {
	messages int
	bytes    int64
	byRcpt   map[string]int // lower-cased address -> messages accepted for it
	first    time.Time      // first and last message accepted
	last     time.Time
}

// startSink listens on a free loopback port and serves until close.
func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: listen: %w", err)
	}
	s := &sink{Addr: ln.Addr().String(), served: make(chan struct{}), tally: tally{byRcpt: map[string]int{}}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.srv.Domain = "sink.loadcampaign"
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.MaxMessageBytes = 32 << 20
	s.srv.MaxRecipients = 100
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// URL is the daemon's BACKOFFICE_SMTP_URL for the sink (plain text: it is
// loopback).
func (s *sink) URL() string { return "smtp://" + s.Addr + "?tls=none" }

// add adds the counts of o to t.
func (t *tally) add(o tally) {
	if t.messages == 0 || (o.messages > 0 && o.first.Before(t.first)) {
		t.first = o.first
	}
	if o.last.After(t.last) {
		t.last = o.last
	}
	t.messages += o.messages
	t.bytes += o.bytes
	for a, n := range o.byRcpt {
		t.byRcpt[a] += n
	}
}

// take returns what the sink accepted so far and starts a new tally.
func (s *sink) take() tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tally
	s.tally = tally{byRcpt: map[string]int{}}
	return t
}

// count returns how many messages the sink accepted since the last take.
func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tally.messages
}

func (s *sink) record(to []string, n int64) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.tally
	if t.messages == 0 {
		t.first = now
	}
	t.last = now
	t.messages++
	t.bytes += n
	for _, rcpt := range to {
		t.byRcpt[strings.ToLower(rcpt)]++
	}
}

// close stops the server and its sessions.
func (s *sink) close() {
	_ = s.srv.Close()
	<-s.served
}

// sinkSession is one SMTP session of the sink.
type sinkSession struct {
	s  *sink
	to []string
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { ss.to = ss.to[:0]; return nil }

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

// Data reads the message to the end and records it for its recipients.
func (ss *sinkSession) Data(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	ss.s.record(ss.to, n)
	return nil
}

func (ss *sinkSession) Reset()        { ss.to = ss.to[:0] }
func (ss *sinkSession) Logout() error { return nil }
