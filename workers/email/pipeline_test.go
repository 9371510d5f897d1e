package email

import (
	"bufio"
	"bytes"
	"cmp"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/email/smtptest"
)

// scriptServer is a hand-written SMTP server on loopback for the dialogues
// go-smtp does not produce: a server without PIPELINING, one that holds its
// replies until DATA (as RFC 2920 allows), refusals at MAIL FROM or DATA,
// a 354 after every recipient was refused. reply chooses the answer to
// each command of transaction tx (1 first, counted at MAIL over every
// connection); "" gives the usual positive reply. A reply starting with
// 421 is sent and the connection closed.
type scriptServer struct {
	Addr       string
	pipelining bool // advertise PIPELINING (and hold replies until DATA)
	reply      func(tx int, verb string) string

	mu         sync.Mutex
	verbs      []string // commands received, over every connection, in order
	conns      int
	tx         int
	messages   int // accepted with 250 after the data
	unwaited   int // commands sent before the previous one's reply, without PIPELINING
	transcript []string
}

func startScriptServer(t *testing.T, pipelining bool, reply func(tx int, verb string) string) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{Addr: ln.Addr().String(), pipelining: pipelining, reply: reply}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

var defaultReplies = map[string]string{
	"MAIL": "250 2.1.0 Ok", "RCPT": "250 2.1.5 Ok", "DATA": "354 End data with <CR><LF>.<CR><LF>",
	".": "250 2.0.0 Ok: queued", "RSET": "250 2.0.0 Ok", "NOOP": "250 2.0.0 Ok",
}

func (s *scriptServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	send := func(lines ...string) bool {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		return w.Flush() == nil
	}
	if !send("220 script.test ESMTP") {
		return
	}
	var held []string // replies held until DATA
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		verb, _, _ := strings.Cut(strings.ToUpper(cmd), " ")
		verb, _, _ = strings.Cut(verb, ":")
		s.mu.Lock()
		s.verbs = append(s.verbs, verb)
		s.transcript = append(s.transcript, cmd)
		if !s.pipelining && r.Buffered() > 0 {
			s.unwaited++
		}
		if verb == "MAIL" {
			s.tx++
		}
		tx := s.tx
		s.mu.Unlock()

		switch verb {
		case "EHLO":
			ext := []string{"250-script.test", "250-8BITMIME", "250-ENHANCEDSTATUSCODES"}
			if s.pipelining {
				ext = append(ext, "250-PIPELINING")
			}
			if !send(append(ext, "250 SIZE 10485760")...) {
				return
			}
			continue
		case "QUIT":
			send("221 2.0.0 Bye")
			return
		}
		reply := defaultReplies[verb]
		if reply == "" {
			reply = "502 5.5.2 Command not recognized"
		}
		if s.reply != nil {
			reply = cmp.Or(s.reply(tx, verb), reply)
		}
		if s.pipelining && (verb == "MAIL" || verb == "RCPT") && !strings.HasPrefix(reply, "421") {
			held = append(held, reply)
			continue
		}
		if !send(append(held, reply)...) || strings.HasPrefix(reply, "421") {
			return
		}
		held = nil
		if verb != "DATA" || !strings.HasPrefix(reply, "354") {
			continue
		}
		for { // the content, up to the lone dot
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if l == ".\r\n" {
				break
			}
		}
		end := cmp.Or(s.replyTo(tx, "."), defaultReplies["."])
		if strings.HasPrefix(end, "250") {
			s.mu.Lock()
			s.messages++
			s.mu.Unlock()
		}
		if !send(end) {
			return
		}
	}
}

func (s *scriptServer) replyTo(tx int, verb string) string {
	if s.reply == nil {
		return ""
	}
	return s.reply(tx, verb)
}

// dialogue returns the verbs received so far, joined by spaces.
func (s *scriptServer) dialogue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.verbs, " ")
}

func (s *scriptServer) counts() (conns, messages, unwaited int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.messages, s.unwaited
}

func scriptPool(t *testing.T, s *scriptServer) *Pool {
	t.Helper()
	pool, err := NewPool(PoolOptions{URL: "smtp://" + s.Addr + "?tls=none", Size: 1, HELO: "backoffice.test", SendTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// A server that offers PIPELINING and answers MAIL and RCPT only once it
// has DATA too: a client that waited for each reply would stall until its
// timeout. Both messages go through, two round trips each.
func TestPoolPipelinesWhereTheServerAllows(t *testing.T) {
	t.Parallel()
	s := startScriptServer(t, true, nil)
	pool := scriptPool(t, s)
	for n := 1; n <= 2; n++ {
		if err := pool.Send(t.Context(), to(n)); err != nil {
			t.Fatalf("Send %d: %v", n, err)
		}
	}
	conns, messages, _ := s.counts()
	if messages != 2 || conns != 1 {
		t.Errorf("server accepted %d messages over %d connections, want 2 over 1", messages, conns)
	}
	if got, want := s.dialogue(), "EHLO MAIL RCPT DATA MAIL RCPT DATA"; got != want {
		t.Errorf("dialogue %q, want %q", got, want)
	}
}

// Without PIPELINING in the server's EHLO the pool waits for every reply
// (go-mail's own transaction).
func TestPoolWaitsForEachReplyWithoutPipelining(t *testing.T) {
	t.Parallel()
	s := startScriptServer(t, false, nil)
	pool := scriptPool(t, s)
	for n := 1; n <= 2; n++ {
		if err := pool.Send(t.Context(), to(n)); err != nil {
			t.Fatalf("Send %d: %v", n, err)
		}
	}
	_, messages, unwaited := s.counts()
	if messages != 2 || unwaited != 0 {
		t.Errorf("server accepted %d messages and got %d commands before the previous reply, want 2 and 0", messages, unwaited)
	}
}

// Refusals inside a pipelined transaction: the first refused step is the
// error (with its code, enhanced code and text), the replies that follow
// from it are read and dropped, and the connection is kept after a refused
// MAIL or RCPT (RSET puts it back in step) and closed after a refused DATA.
func TestPoolPipelinedRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		replies   map[string]string // replies to transaction 1
		code      int
		enhanced  string
		text      string // of the refusal
		permanent bool
		dialogue  string
		conns     int
	}{
		{
			name:    "MAIL refused",
			replies: map[string]string{"MAIL": "451 4.3.0 Mailbox busy", "RCPT": "503 5.5.1 Need MAIL", "DATA": "503 5.5.1 Need RCPT"},
			code:    451, enhanced: "4.3.0", text: "Mailbox busy",
			dialogue: "EHLO MAIL RCPT DATA RSET MAIL RCPT DATA", conns: 1,
		},
		{
			name:    "RCPT refused, DATA still 354",
			replies: map[string]string{"RCPT": "550 5.1.1 No such user", ".": "554 5.5.1 No valid recipients"},
			code:    550, enhanced: "5.1.1", text: "No such user", permanent: true,
			dialogue: "EHLO MAIL RCPT DATA RSET MAIL RCPT DATA", conns: 1,
		},
		{
			name: "RCPT refused, RSET answered 421",
			replies: map[string]string{"RCPT": "550 5.1.1 No such user", ".": "554 5.5.1 No valid recipients",
				"RSET": "421 4.3.2 Closing"},
			code: 550, enhanced: "5.1.1", text: "No such user", permanent: true,
			dialogue: "EHLO MAIL RCPT DATA RSET EHLO MAIL RCPT DATA", conns: 2,
		},
		{
			// Postfix after smtpd_hard_error_limit refusals in a session:
			// the refusal, then 421 and the connection closed.
			name:    "RCPT refused, DATA answered 421",
			replies: map[string]string{"RCPT": "550 5.1.1 No such user", "DATA": "421 4.7.0 Error: too many errors"},
			code:    550, enhanced: "5.1.1", text: "No such user", permanent: true,
			dialogue: "EHLO MAIL RCPT DATA EHLO MAIL RCPT DATA", conns: 2,
		},
		{
			name:    "MAIL refused, RCPT answered 421",
			replies: map[string]string{"MAIL": "553 5.7.1 Sender rejected", "RCPT": "421 4.7.0 Closing"},
			code:    553, enhanced: "5.7.1", text: "Sender rejected", permanent: true,
			dialogue: "EHLO MAIL RCPT EHLO MAIL RCPT DATA", conns: 2,
		},
		{
			// the relay stays, the transaction's state is unknown: the
			// connection is replaced all the same
			name: "RCPT refused, RSET refused",
			replies: map[string]string{"RCPT": "550 5.1.1 No such user", ".": "554 5.5.1 No valid recipients",
				"RSET": "502 5.5.2 Error: command not recognized"},
			code: 550, enhanced: "5.1.1", text: "No such user", permanent: true,
			dialogue: "EHLO MAIL RCPT DATA RSET EHLO MAIL RCPT DATA", conns: 2,
		},
		{
			name:    "DATA refused",
			replies: map[string]string{"DATA": "452 4.3.1 Insufficient system storage"},
			code:    452, enhanced: "4.3.1", text: "Insufficient system storage",
			dialogue: "EHLO MAIL RCPT DATA EHLO MAIL RCPT DATA", conns: 2,
		},
		{
			name:    "content refused",
			replies: map[string]string{".": "554 5.7.1 Spam"},
			code:    554, enhanced: "5.7.1", text: "Spam", permanent: true,
			dialogue: "EHLO MAIL RCPT DATA MAIL RCPT DATA", conns: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startScriptServer(t, true, func(tx int, verb string) string {
				if tx == 1 {
					return tc.replies[verb]
				}
				return ""
			})
			pool := scriptPool(t, s)
			err := pool.Send(t.Context(), to(1))
			se := sendErr(t, err)
			if se.Code != tc.code || se.Enhanced != tc.enhanced || IsPermanent(err) != tc.permanent || se.To != "customer1@example.sk" {
				t.Errorf("Send = %#v, want code %d %s, permanent %v", se, tc.code, tc.enhanced, tc.permanent)
			}
			if !strings.Contains(se.Text, tc.text) {
				t.Errorf("Text %q lacks the server's reply %q", se.Text, tc.text)
			}
			if err := pool.Send(t.Context(), to(2)); err != nil {
				t.Fatalf("next Send: %v", err)
			}
			if got := s.dialogue(); got != tc.dialogue {
				t.Errorf("dialogue %q, want %q", got, tc.dialogue)
			}
			if conns, messages, _ := s.counts(); conns != tc.conns || messages != 1 {
				t.Errorf("%d messages over %d connections, want 1 over %d", messages, conns, tc.conns)
			}
		})
	}
}

// A reused connection whose server now answers MAIL with 421 (closing) is
// replaced before the message was sent: the message goes on a new one.
func TestPoolPipelinedRedialsAfter421AtMail(t *testing.T) {
	t.Parallel()
	s := startScriptServer(t, true, func(tx int, verb string) string {
		if tx == 2 && verb == "MAIL" {
			return "421 4.3.2 Shutting down"
		}
		return ""
	})
	pool := scriptPool(t, s)
	for n := 1; n <= 2; n++ {
		if err := pool.Send(t.Context(), to(n)); err != nil {
			t.Fatalf("Send %d: %v", n, err)
		}
	}
	if conns, messages, _ := s.counts(); conns != 2 || messages != 2 {
		t.Errorf("%d messages over %d connections, want 2 over 2", messages, conns)
	}
}

// writeDotted writes what textproto's DotWriter writes, for every content
// of up to 8 bytes of '.', CR, LF and a letter (87,381 of them: leading and
// doubled dots, bare LFs, CR runs, no final line end, nothing at all).
func TestWriteDottedMatchesDotWriter(t *testing.T) {
	t.Parallel()
	alphabet := []byte{'.', '\r', '\n', 'a'}
	var want, got bytes.Buffer
	content := make([]byte, 0, 8)
	var walk func()
	walk = func() {
		want.Reset()
		dw := textproto.NewWriter(bufio.NewWriter(&want)).DotWriter()
		_, _ = dw.Write(content)
		_ = dw.Close()
		got.Reset()
		w := bufio.NewWriter(&got)
		if err := writeDotted(w, content); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("writeDotted(%q) = %q, DotWriter writes %q", content, got.Bytes(), want.Bytes())
		}
		if len(content) == cap(content) {
			return
		}
		for _, c := range alphabet {
			content = append(content, c)
			walk()
			content = content[:len(content)-1]
		}
	}
	walk()
}

// pipelining=off in the URL keeps go-mail's transaction although the
// server offers PIPELINING: a refused recipient is followed by RSET, with
// no DATA sent ahead of the refusal.
func TestPoolPipeliningOffInTheURL(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{Transcript: true, Reject: refuseCustomer2})
	pool, err := NewPool(PoolOptions{URL: srv.URL() + "&pipelining=off", Size: 1, HELO: "backoffice.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for n := 1; n <= 3; n++ {
		if err := pool.Send(t.Context(), to(n)); (err != nil) != (n == 2) {
			t.Fatalf("Send %d = %v", n, err)
		}
	}
	if got, want := clientCommands(srv), "MAIL DATA MAIL RSET MAIL DATA"; got != want {
		t.Errorf("client commands %q, want %q (one at a time)", got, want)
	}
}
