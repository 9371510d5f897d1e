package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

// setup starts an SMTP server with so and a pool on it with po.
func setup(t *testing.T, so smtptest.Options, po PoolOptions) (*smtptest.Server, *Pool) {
	t.Helper()
	srv := smtptest.Start(t, so)
	po.URL = srv.URL()
	if srv.RootCAs() != nil {
		po.TLSConfig = &tls.Config{RootCAs: srv.RootCAs()}
	}
	po.HELO = "backoffice.test"
	pool, err := NewPool(po)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { pool.Close() })
	return srv, pool
}

// to returns message n of a test campaign.
func to(n int) *Message {
	m := sample()
	m.To = fmt.Sprintf("customer%d@example.sk", n)
	m.MessageID = fmt.Sprintf("<test-run.%d@mail.example.sk>", n)
	return m
}

func sendErr(t *testing.T, err error) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *SendError", err, err)
	}
	return se
}

// bothTransactions runs test twice: with the pool pipelining each
// transaction (go-smtp offers PIPELINING) and with go-mail's own, one reply
// at a time, as with a server that does not offer it.
func bothTransactions(t *testing.T, test func(t *testing.T, pipelining bool)) {
	for _, pipelining := range []bool{true, false} {
		t.Run(map[bool]string{true: "pipelined", false: "lockstep"}[pipelining], func(t *testing.T) {
			t.Parallel()
			test(t, pipelining)
		})
	}
}

// refuseCustomer2 is a Reject that refuses customer2@example.sk for good.
func refuseCustomer2(rcpt string, _ int) *smtp.SMTPError {
	if rcpt == "customer2@example.sk" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	return nil
}

// clientCommands returns the MAIL, RSET and DATA commands of srv's
// transcript, in order, joined by spaces.
func clientCommands(srv *smtptest.Server) string {
	var cmds []string
	for line := range strings.SplitSeq(srv.Transcript(), "\n") {
		for _, verb := range []string{"MAIL", "RSET", "DATA"} {
			if strings.HasPrefix(strings.ToUpper(line), verb) {
				cmds = append(cmds, verb)
			}
		}
	}
	return strings.Join(cmds, " ")
}

func TestPoolSendsOverAtMostSizeConnections(t *testing.T) {
	t.Parallel()
	srv, pool := setup(t, smtptest.Options{}, PoolOptions{Size: 3})
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range 10 {
		wg.Go(func() {
			for i := g; i < n; i += 10 {
				errs <- pool.Send(t.Context(), to(i))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	msgs := srv.WaitFor(t, n, wait)
	if got := srv.Connections(); got < 1 || got > 3 {
		t.Errorf("server saw %d connections, want 1 to 3", got)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get("Message-Id")
		if seen[id] {
			t.Errorf("Message-ID %s received twice", id)
		}
		seen[id] = true
		var n int
		if _, err := fmt.Sscanf(id, "<test-run.%d@", &n); err != nil || len(m.To) != 1 || m.To[0] != to(n).To {
			t.Errorf("message %s went to %v", id, m.To)
		}
	}
	// Sequential sends keep using the same connections.
	before := srv.Connections()
	for i := range 5 {
		if err := pool.Send(t.Context(), to(n+i)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if got := srv.Connections(); got != before {
		t.Errorf("sequential sends opened %d new connections, want 0", got-before)
	}
}

func TestPoolTransientRejectThenRetry(t *testing.T) {
	t.Parallel()
	bothTransactions(t, func(t *testing.T, pipelining bool) {
		srv, pool := setup(t, smtptest.Options{Reject: func(rcpt string, attempt int) *smtp.SMTPError {
			if attempt == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
			}
			return nil
		}}, PoolOptions{Size: 1})
		pool.pipelining = pipelining

		err := pool.Send(t.Context(), to(1))
		se := sendErr(t, err)
		if IsPermanent(err) || !se.Temporary || se.Code != 451 || se.Enhanced != "4.3.0" || se.To != "customer1@example.sk" {
			t.Fatalf("first Send = %#v, want temporary 451 4.3.0 for customer1", se)
		}
		if !strings.Contains(se.Text, "Try again later") {
			t.Errorf("Text %q lacks the server's reply", se.Text)
		}
		if err := pool.Send(t.Context(), to(1)); err != nil {
			t.Fatalf("retry: %v", err)
		}
		srv.WaitFor(t, 1, wait)
		if got := srv.Connections(); got != 1 {
			t.Errorf("connections = %d, want 1: a 4xx reply leaves the connection usable", got)
		}
	})
}

// The dialogue of a reused connection: MAIL, RCPT, DATA per message and
// no RSET after an accepted one (a round trip saved per message); a refused
// recipient is followed by RSET, so the next message starts clean. The
// pipelined transaction has sent its DATA before it learns of the refusal.
func TestPoolDialogueHasNoRSETAfterAcceptedMessages(t *testing.T) {
	t.Parallel()
	bothTransactions(t, func(t *testing.T, pipelining bool) {
		srv, pool := setup(t, smtptest.Options{Transcript: true, Reject: refuseCustomer2}, PoolOptions{Size: 1})
		pool.pipelining = pipelining
		for n := 1; n <= 4; n++ {
			err := pool.Send(t.Context(), to(n))
			if (err != nil) != (n == 2) {
				t.Fatalf("Send %d = %v", n, err)
			}
		}
		// 1 accepted, 2 refused at RCPT then RSET, 3 and 4 accepted
		want := "MAIL DATA MAIL RSET MAIL DATA MAIL DATA"
		if pipelining {
			want = "MAIL DATA MAIL DATA RSET MAIL DATA MAIL DATA"
		}
		if got := clientCommands(srv); got != want {
			t.Errorf("client commands %q, want %q", got, want)
		}
	})
}

func TestPoolPermanentReject(t *testing.T) {
	t.Parallel()
	bothTransactions(t, func(t *testing.T, pipelining bool) {
		srv, pool := setup(t, smtptest.Options{Reject: refuseCustomer2}, PoolOptions{Size: 2})
		pool.pipelining = pipelining

		err := pool.Send(t.Context(), to(2))
		se := sendErr(t, err)
		if !IsPermanent(err) || se.Temporary || se.Code != 550 || se.Enhanced != "5.1.1" {
			t.Fatalf("Send = %#v, want permanent 550 5.1.1", se)
		}
		for _, want := range []string{"No such user", "customer2@example.sk", "permanent"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "zľava") {
			t.Errorf("error %q contains the message body", err)
		}
		if err := pool.Send(t.Context(), to(3)); err != nil {
			t.Fatalf("next recipient: %v", err)
		}
		srv.WaitFor(t, 1, wait)
	})
}

func TestPoolServerDropsDuringData(t *testing.T) {
	t.Parallel()
	bothTransactions(t, func(t *testing.T, pipelining bool) {
		srv, pool := setup(t, smtptest.Options{Drop: func(_ string, attempt int) bool { return attempt == 1 }}, PoolOptions{Size: 1})
		pool.pipelining = pipelining

		err := pool.Send(t.Context(), to(1))
		if err == nil || IsPermanent(err) {
			t.Fatalf("Send during a dropped DATA = %v, want a transient error", err)
		}
		if se := sendErr(t, err); se.Code != 0 || !se.Temporary {
			t.Errorf("SendError = %#v, want code 0, temporary", se)
		}
		if err := pool.Send(t.Context(), to(1)); err != nil {
			t.Fatalf("next Send: %v", err)
		}
		srv.WaitFor(t, 1, wait)
		if got := srv.Connections(); got != 2 {
			t.Errorf("connections = %d, want 2 (redialled after the drop)", got)
		}
	})
}

// A server that hangs up right after accepting a message: the message is
// delivered (a failure reported now would have it sent twice), and the
// next one goes on a new connection.
func TestPoolServerHangsUpAfterAcceptingIsDelivered(t *testing.T) {
	t.Parallel()
	bothTransactions(t, func(t *testing.T, pipelining bool) {
		srv, pool := setup(t, smtptest.Options{HangUp: func(_ string, attempt int) bool { return attempt == 1 }}, PoolOptions{Size: 1})
		pool.pipelining = pipelining

		if err := pool.Send(t.Context(), to(1)); err != nil {
			t.Fatalf("Send of a message the server accepted before hanging up = %v, want nil", err)
		}
		if err := pool.Send(t.Context(), to(2)); err != nil {
			t.Fatalf("next Send: %v", err)
		}
		msgs := srv.WaitFor(t, 2, wait)
		if len(msgs) != 2 || msgs[0].To[0] != "customer1@example.sk" || msgs[1].Conn != 2 {
			t.Errorf("got %d messages (%v), want customer1 once on connection 1, then customer2 on connection 2", len(msgs), msgs)
		}
	})
}

func TestPoolReplacesConnectionTheServerClosed(t *testing.T) {
	t.Parallel()
	bothTransactions(t, func(t *testing.T, pipelining bool) {
		srv, pool := setup(t, smtptest.Options{}, PoolOptions{Size: 1})
		pool.pipelining = pipelining
		if err := pool.Send(t.Context(), to(1)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		srv.DropConnections()
		smtptest.WaitUntil(t, wait, func() bool { return srv.OpenConnections() == 0 }, func() string { return "connection still open" })

		if err := pool.Send(t.Context(), to(2)); err != nil {
			t.Fatalf("Send after the server closed the idle connection: %v", err)
		}
		msgs := srv.WaitFor(t, 2, wait)
		if len(msgs) != 2 || msgs[1].Conn != 2 {
			t.Errorf("got %d messages, second on connection %d; want 2, on connection 2", len(msgs), msgs[len(msgs)-1].Conn)
		}
	})
}

func TestPoolAuthAndTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tls     smtptest.TLSMode
		wantTLS bool
	}{
		{"plain text on loopback", smtptest.NoTLS, false},
		{"starttls", smtptest.StartTLS, true},
		{"implicit tls", smtptest.Implicit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, pool := setup(t, smtptest.Options{Username: "shop", Password: "s3cret pass", TLS: tc.tls}, PoolOptions{})
			for i := range 3 {
				if err := pool.Send(t.Context(), to(i)); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			for _, m := range srv.WaitFor(t, 3, wait) {
				if m.User != "shop" || m.TLS != tc.wantTLS {
					t.Errorf("message by user %q over TLS %v, want shop, %v", m.User, m.TLS, tc.wantTLS)
				}
			}
		})
	}
}

func TestPoolWrongPasswordIsTransient(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{Username: "shop", Password: "right"})
	pool, err := NewPool(PoolOptions{URL: "smtp://shop:wrong-hunter2@" + srv.Addr + "?tls=none"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = pool.Send(t.Context(), to(1))
	se := sendErr(t, err)
	if IsPermanent(err) || se.Code != 535 {
		t.Errorf("Send with a wrong password = %#v, want transient 535", se)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q leaks the password", err)
	}
}

func TestPoolClosesIdleConnections(t *testing.T) {
	t.Parallel()
	srv, pool := setup(t, smtptest.Options{}, PoolOptions{Size: 2, IdleTimeout: 20 * time.Millisecond})
	if err := pool.Send(t.Context(), to(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	smtptest.WaitUntil(t, wait, func() bool { return srv.OpenConnections() == 0 },
		func() string { return fmt.Sprintf("%d connections still open", srv.OpenConnections()) })
	if err := pool.Send(t.Context(), to(2)); err != nil {
		t.Fatalf("Send after idle close: %v", err)
	}
	srv.WaitFor(t, 2, wait)
}

func TestPoolCancelAbortsStalledServer(t *testing.T) {
	t.Parallel()
	bothTransactions(t, func(t *testing.T, pipelining bool) {
		stalled := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		srv, pool := setup(t, smtptest.Options{Reject: func(string, int) *smtp.SMTPError {
			once.Do(func() { close(stalled) })
			<-release // the server hangs before answering RCPT
			return nil
		}}, PoolOptions{Size: 1})
		pool.pipelining = pipelining
		defer close(release)

		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-stalled
			cancel()
		}()
		err := pool.Send(ctx, to(1))
		if !errors.Is(err, context.Canceled) || IsPermanent(err) {
			t.Fatalf("Send = %v, want transient context.Canceled", err)
		}
		if srv.Count() != 0 {
			t.Errorf("server accepted %d messages", srv.Count())
		}
	})
}

func TestPoolCancelWhileWaitingForAConnection(t *testing.T) {
	t.Parallel()
	stalled := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	_, pool := setup(t, smtptest.Options{Reject: func(string, int) *smtp.SMTPError {
		once.Do(func() { close(stalled) })
		<-release
		return nil
	}}, PoolOptions{Size: 1})

	first := make(chan error, 1)
	go func() { first <- pool.Send(t.Context(), to(1)) }()
	<-stalled
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := pool.Send(ctx, to(2)); !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Errorf("Send with every connection busy = %v, want transient context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Send: %v", err)
	}
}

func TestPoolCancelAbortsDial(t *testing.T) {
	t.Parallel()
	// A server that accepts and never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	pool, err := NewPool(PoolOptions{URL: "smtp://" + l.Addr().String() + "?tls=none"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- pool.Send(ctx, to(1)) }()
	c := <-accepted
	defer c.Close()
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Errorf("Send to a silent server = %v, want transient context.Canceled", err)
	}
}

func TestPoolConnectFailureIsTransient(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	pool, err := NewPool(PoolOptions{URL: "smtp://" + addr + "?tls=none"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = pool.Send(t.Context(), to(1))
	if se := sendErr(t, err); IsPermanent(err) || se.Code != 0 {
		t.Errorf("Send to a closed port = %#v, want transient, code 0", se)
	}
}

func TestPoolInvalidMessageDoesNotConnect(t *testing.T) {
	t.Parallel()
	srv, pool := setup(t, smtptest.Options{}, PoolOptions{})
	m := to(1)
	m.To = "not-an-address"
	if err := pool.Send(t.Context(), m); !errors.Is(err, ErrInvalidMessage) || !IsPermanent(err) {
		t.Errorf("Send = %v, want permanent ErrInvalidMessage", err)
	}
	if got := srv.Connections(); got != 0 {
		t.Errorf("connections = %d, want 0", got)
	}
}

func TestPoolSendAfterClose(t *testing.T) {
	t.Parallel()
	srv, pool := setup(t, smtptest.Options{}, PoolOptions{})
	if err := pool.Send(t.Context(), to(1)); err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	smtptest.WaitUntil(t, wait, func() bool { return srv.OpenConnections() == 0 }, func() string { return "Close left a connection open" })
	err := pool.Send(t.Context(), to(2))
	if !errors.Is(err, ErrPoolClosed) || IsPermanent(err) {
		t.Errorf("Send after Close = %v, want transient ErrPoolClosed", err)
	}
}
