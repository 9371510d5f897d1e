package smtptest_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const body = "From: shop@example.sk\r\nTo: jana@example.sk\r\nSubject: Ahoj\r\nMessage-ID: <1@example.sk>\r\n\r\nDobry den.\r\n"

// send delivers one message with the standard library's client.
func send(t *testing.T, c *smtp.Client, to string) error {
	t.Helper()
	if err := c.Mail("shop@example.sk"); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		_ = c.Reset()
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

func dial(t *testing.T, s *smtptest.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRecordsMessages(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t)
	c := dial(t, s)
	for range 2 {
		if err := send(t, c, "jana@example.sk"); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	msgs := s.WaitFor(t, 2, 5*time.Second)
	m := msgs[0]
	if m.From != "shop@example.sk" || len(m.To) != 1 || m.To[0] != "jana@example.sk" || m.Conn != 1 || m.TLS {
		t.Errorf("message = %+v", m)
	}
	if got := m.Header.Get("Message-Id"); got != "<1@example.sk>" {
		t.Errorf("Message-ID = %q", got)
	}
	if string(m.Data) != body {
		t.Errorf("Data = %q, want %q", m.Data, body)
	}
	if s.Count() != 2 || s.Connections() != 1 || s.OpenConnections() != 1 {
		t.Errorf("count %d, connections %d, open %d; want 2, 1, 1", s.Count(), s.Connections(), s.OpenConnections())
	}
	s.DropConnections()
	smtptest.WaitUntil(t, 5*time.Second, func() bool { return s.OpenConnections() == 0 }, func() string { return "still open" })
	if err := c.Noop(); err == nil {
		t.Error("NOOP on a dropped connection succeeded")
	}
}

func TestRejectCountsAttempts(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t, smtptest.Options{Reject: func(rcpt string, attempt int) *gosmtp.SMTPError {
		if rcpt == "gone@example.sk" {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
		if attempt == 1 {
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "Later"}
		}
		return nil
	}})
	c := dial(t, s)
	for _, tc := range []struct {
		to   string
		code int
	}{{"jana@example.sk", 451}, {"jana@example.sk", 0}, {"gone@example.sk", 550}} {
		err := send(t, c, tc.to)
		var te *textproto.Error
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("send to %s: %v", tc.to, err)
		case tc.code != 0 && (!errors.As(err, &te) || te.Code != tc.code):
			t.Errorf("send to %s = %v, want %d", tc.to, err, tc.code)
		}
	}
	if s.Count() != 1 {
		t.Errorf("count = %d, want 1", s.Count())
	}
}

func TestDropDuringData(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t, smtptest.Options{Drop: func(_ string, attempt int) bool { return attempt == 1 }})
	if err := send(t, dial(t, s), "jana@example.sk"); err == nil {
		t.Fatal("send through a dropped connection succeeded")
	}
	if err := send(t, dial(t, s), "jana@example.sk"); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if msgs := s.WaitFor(t, 1, 5*time.Second); msgs[0].Conn != 2 {
		t.Errorf("message on connection %d, want 2", msgs[0].Conn)
	}
}

func TestAuthAndStartTLS(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t, smtptest.Options{Username: "shop", Password: "pw", TLS: smtptest.StartTLS})
	c := dial(t, s)
	if err := send(t, c, "jana@example.sk"); err == nil {
		t.Fatal("MAIL before AUTH succeeded")
	}
	cfg := &tls.Config{RootCAs: s.RootCAs(), ServerName: "127.0.0.1"}
	wrong := dial(t, s)
	if err := wrong.StartTLS(cfg); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := wrong.Auth(smtp.PlainAuth("", "shop", "wrong", "127.0.0.1")); err == nil {
		t.Fatal("AUTH with a wrong password succeeded")
	}
	if err := c.StartTLS(cfg); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Auth(smtp.PlainAuth("", "shop", "pw", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := send(t, c, "jana@example.sk"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if m := s.WaitFor(t, 1, 5*time.Second)[0]; m.User != "shop" || !m.TLS {
		t.Errorf("message by %q over TLS %v, want shop over TLS", m.User, m.TLS)
	}
}

func TestSinkCountsWithoutRecording(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t, smtptest.Options{Sink: true})
	c := dial(t, s)
	for range 3 {
		if err := send(t, c, "jana@example.sk"); err != nil {
			t.Fatal(err)
		}
	}
	s.WaitFor(t, 3, 5*time.Second)
	if len(s.Messages()) != 0 {
		t.Errorf("sink recorded %d messages", len(s.Messages()))
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    smtptest.Options
		want string
	}{
		{smtptest.Options{}, "smtp://%s?tls=none"},
		{smtptest.Options{Username: "u", Password: "p w", TLS: smtptest.StartTLS}, "smtp://u:p%%20w@%s?tls=mandatory-starttls"},
		{smtptest.Options{TLS: smtptest.Implicit}, "smtps://%s"},
	} {
		s := smtptest.Start(t, tc.o)
		if got, want := s.URL(), fmt.Sprintf(tc.want, s.Addr); got != want {
			t.Errorf("URL() = %q, want %q", got, want)
		}
	}
}

// With Latency every reply comes at least one round trip after its
// command, and the message still arrives whole.
func TestLatencyDelaysEachWay(t *testing.T) {
	t.Parallel()
	const d = 20 * time.Millisecond
	s := smtptest.Start(t, smtptest.Options{Latency: d})
	start := time.Now()
	c := dial(t, s) // the greeting: one way
	if got := time.Since(start); got < d {
		t.Errorf("greeting after %v, want at least %v", got, d)
	}
	start = time.Now()
	if err := c.Noop(); err != nil { // EHLO, then NOOP: two round trips
		t.Fatal(err)
	}
	if got := time.Since(start); got < 4*d {
		t.Errorf("EHLO and NOOP answered after %v, want at least %v", got, 4*d)
	}
	if err := send(t, c, "jana@example.sk"); err != nil {
		t.Fatal(err)
	}
	if msgs := s.WaitFor(t, 1, 5*time.Second); string(msgs[0].Data) != body {
		t.Errorf("Data = %q, want %q", msgs[0].Data, body)
	}
}
