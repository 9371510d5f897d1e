package sms_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/workers/sms"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

const (
	testFrom    = "+421233456789"
	testService = "MG0123456789abcdef0123456789abcdef"
	wait        = 10 * time.Second
)

// newTwilio starts a fake Twilio with so and a sender on it; edit changes
// the sender's options.
func newTwilio(t *testing.T, so twiliotest.Options, edit func(*sms.TwilioOptions)) (*twiliotest.Server, *sms.Twilio) {
	t.Helper()
	srv := twiliotest.Start(t, so)
	o := sms.TwilioOptions{AccountSID: srv.AccountSID, AuthToken: srv.AuthToken, From: testFrom, APIURL: srv.URL}
	if edit != nil {
		edit(&o)
	}
	tw, err := sms.NewTwilio(o)
	if err != nil {
		t.Fatalf("NewTwilio: %v", err)
	}
	t.Cleanup(func() { tw.Close() })
	return srv, tw
}

func message(n int) sms.Message {
	return sms.Message{
		To:             fmt.Sprintf("+4219012345%02d", n),
		Body:           "Dobrý deň, vaša objednávka č. 42 je pripravená. Ďakujeme! Łódź, žluťoučký kůň",
		StatusCallback: "https://backoffice.example.sk/twilio/status",
		Ref:            fmt.Sprintf("run1:%d", n),
	}
}

func TestTwilioSend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		edit       func(*sms.TwilioOptions)
		wantStatus string
		want       twiliotest.Message
	}{
		{"from number", nil, "queued", twiliotest.Message{From: testFrom}},
		{"messaging service", func(o *sms.TwilioOptions) { o.From, o.MessagingServiceSID = "", testService },
			"accepted", twiliotest.Message{MessagingServiceSID: testService}},
		{"both", func(o *sms.TwilioOptions) { o.MessagingServiceSID = testService },
			"queued", twiliotest.Message{From: testFrom, MessagingServiceSID: testService}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, tw := newTwilio(t, twiliotest.Options{}, tc.edit)
			m := message(1)
			res, err := tw.Send(t.Context(), m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.WaitFor(t, 1, wait)[0]
			if res.SID != got.SID || !strings.HasPrefix(res.SID, "SM") || len(res.SID) != 34 || res.Status != tc.wantStatus {
				t.Errorf("Send = %+v, want SID %s, status %s", res, got.SID, tc.wantStatus)
			}
			want := tc.want
			want.SID, want.AccountSID, want.To, want.Body, want.StatusCallback = got.SID, srv.AccountSID, m.To, m.Body, m.StatusCallback
			want.NumSegments = 2 // 78 characters with diacritics: UCS-2, two segments
			if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Form" }, cmp.Ignore())); diff != "" {
				t.Errorf("message received (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTwilioFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		status     int
		code       int
		retryAfter string
		permanent  bool
		wantRetry  time.Duration
		limited    bool // IsRateLimited
	}{
		{"throttled", 429, 20429, "7", false, 7 * time.Second, true},
		{"throttled without header", 429, 20429, "", false, 0, true},
		{"throttled html", 429, 0, "", false, 0, true},
		{"sender queue full", 400, 21611, "", false, 0, true},
		{"sender queue full with retry-after", 400, 21611, "5", false, 5 * time.Second, true},
		{"server error json", 500, 20500, "", false, 0, false},
		{"bad gateway html", 502, 0, "", false, 0, false},
		{"unavailable html with retry-after", 503, 0, "30", false, 30 * time.Second, false},
		{"invalid number", 400, 21211, "", true, 0, false},
		{"not a mobile", 400, 21614, "", true, 0, false},
		{"region not enabled", 400, 21408, "", true, 0, false},
		{"unreachable", 400, 21612, "", true, 0, false},
		{"carrier violation", 400, 30007, "", true, 0, false},
		{"other 4xx", 400, 21606, "", true, 0, false},
		{"forbidden: configuration", 403, 20403, "", false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, tw := newTwilio(t, twiliotest.Options{Fail: func(int, string) (int, int, string) {
				return tc.status, tc.code, tc.retryAfter
			}}, nil)
			_, err := tw.Send(t.Context(), message(1))
			var se *sms.SendError
			if !errors.As(err, &se) {
				t.Fatalf("Send = %v (%T), want *sms.SendError", err, err)
			}
			if se.Status != tc.status || se.Code != tc.code || se.Permanent != tc.permanent || sms.IsPermanent(err) != tc.permanent {
				t.Errorf("SendError = %+v, want status %d, code %d, permanent %v", se, tc.status, tc.code, tc.permanent)
			}
			if d, ok := sms.RetryAfter(err); d != tc.wantRetry || ok != (tc.wantRetry > 0) {
				t.Errorf("RetryAfter = %v, %v; want %v", d, ok, tc.wantRetry)
			}
			if sms.IsRateLimited(err) != tc.limited || se.InDoubt || sms.IsInDoubt(err) {
				t.Errorf("IsRateLimited = %v, InDoubt = %v; want %v, false", sms.IsRateLimited(err), se.InDoubt, tc.limited)
			}
		})
	}
}

func TestTwilioOptedOutIsPermanent(t *testing.T) {
	t.Parallel()
	m := message(7)
	srv, tw := newTwilio(t, twiliotest.Options{OptedOut: []string{m.To}}, nil)
	_, err := tw.Send(t.Context(), m)
	var se *sms.SendError
	if !errors.As(err, &se) || se.Code != 21610 || se.Status != 400 || !sms.IsPermanent(err) {
		t.Fatalf("Send to an opted-out number = %v, want permanent 21610", err)
	}
	if !strings.Contains(err.Error(), "unsubscribed") {
		t.Errorf("error %q lacks Twilio's message", err)
	}
	if srv.Count() != 0 {
		t.Errorf("server accepted %d messages", srv.Count())
	}
}

func TestTwilioNeverLeaksTheAuthToken(t *testing.T) {
	t.Parallel()
	srv := twiliotest.Start(t)
	for _, tc := range []struct {
		name  string
		token string
		url   string
	}{
		{"wrong token", "0123456789abcdef0123456789abcdef", srv.URL},
		{"nothing listening", srv.AuthToken, "http://127.0.0.1:1"},
	} {
		tw, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: srv.AccountSID, AuthToken: tc.token, From: testFrom, APIURL: tc.url})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tw.Send(t.Context(), message(1))
		tw.Close()
		if err == nil || sms.IsPermanent(err) {
			t.Errorf("%s: Send = %v, want a transient error", tc.name, err)
			continue
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, tc.token) {
				t.Errorf("%s: error %q contains the auth token", tc.name, s)
			}
		}
	}
	if _, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: srv.AccountSID, AuthToken: "secret-with-dash", From: testFrom}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("NewTwilio with a bad token = %v, want an error without the token", err)
	}
}

func TestTwilioCancelAbortsSlowServer(t *testing.T) {
	t.Parallel()
	srv, tw := newTwilio(t, twiliotest.Options{Latency: time.Hour}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		twiliotest.WaitUntil(t, wait, func() bool { return srv.Requests() == 1 }, func() string { return "no request arrived" })
		cancel()
	}()
	_, err := tw.Send(ctx, message(1))
	if !errors.Is(err, context.Canceled) || sms.IsPermanent(err) {
		t.Fatalf("Send = %v, want transient context.Canceled", err)
	}
	// The server had the whole request: Twilio could have created it.
	if !sms.IsInDoubt(err) || !strings.Contains(err.Error(), "in doubt") {
		t.Errorf("Send = %v, want in doubt: cancelled after the request was sent", err)
	}
	if srv.Count() != 0 {
		t.Errorf("server accepted %d messages", srv.Count())
	}
}

func TestTwilioTimeout(t *testing.T) {
	t.Parallel()
	_, tw := newTwilio(t, twiliotest.Options{Latency: time.Hour}, func(o *sms.TwilioOptions) { o.Timeout = 20 * time.Millisecond })
	_, err := tw.Send(t.Context(), message(1))
	if !errors.Is(err, context.DeadlineExceeded) || sms.IsPermanent(err) {
		t.Fatalf("Send = %v, want transient context.DeadlineExceeded", err)
	}
}

func TestTwilioReusesConnections(t *testing.T) {
	t.Parallel()
	srv, tw := newTwilio(t, twiliotest.Options{Fail: func(n int, _ string) (int, int, string) {
		switch n % 4 { // error answers too must leave the connection reusable
		case 1:
			return 400, 21211, ""
		case 2:
			return 502, 0, "" // HTML: twilio-go neither reads nor closes it
		}
		return 0, 0, ""
	}}, nil)
	for i := range 12 {
		_, _ = tw.Send(t.Context(), message(i))
	}
	if srv.Requests() != 12 || srv.Count() != 6 || srv.Connections() != 1 {
		t.Errorf("requests %d, accepted %d, connections %d; want 12, 6, 1", srv.Requests(), srv.Count(), srv.Connections())
	}
}

func TestTwilioConcurrentSends(t *testing.T) {
	t.Parallel()
	srv, tw := newTwilio(t, twiliotest.Options{Fail: twiliotest.RandomFailures(7, 0.05, 0.01)}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, failed := 0, 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				_, err := tw.Send(t.Context(), message(g*25+i))
				mu.Lock()
				if err != nil {
					failed++
					if sms.IsPermanent(err) {
						t.Errorf("random failure %v classified permanent", err)
					}
				} else {
					sent++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sent != srv.Count() || sent+failed != 200 || srv.Requests() != 200 {
		t.Errorf("sent %d, failed %d; server accepted %d of %d requests", sent, failed, srv.Count(), srv.Requests())
	}
}

func TestTwilioRejectsInvalidMessages(t *testing.T) {
	t.Parallel()
	srv, tw := newTwilio(t, twiliotest.Options{}, nil)
	for _, tc := range []struct {
		field string
		edit  func(*sms.Message)
	}{
		{"To", func(m *sms.Message) { m.To = "0901 234 567" }},
		{"To", func(m *sms.Message) { m.To = "+0123456789" }},
		{"Body", func(m *sms.Message) { m.Body = "  " }},
		{"Body", func(m *sms.Message) { m.Body = strings.Repeat("č", 1601) }},
		{"Body", func(m *sms.Message) { m.Body = "a\xffb" }},
		{"StatusCallback", func(m *sms.Message) { m.StatusCallback = "/relative" }},
		{"Ref", func(m *sms.Message) { m.Ref = "run\n1" }},
	} {
		m := message(1)
		tc.edit(&m)
		_, err := tw.Send(t.Context(), m)
		if !errors.Is(err, sms.ErrInvalidMessage) || !sms.IsPermanent(err) || !strings.Contains(err.Error(), "message "+tc.field+":") {
			t.Errorf("Send(%+v) = %v, want permanent ErrInvalidMessage naming %s", m, err, tc.field)
		}
	}
	if srv.Requests() != 0 {
		t.Errorf("server got %d requests for invalid messages", srv.Requests())
	}
}

func TestNewTwilioValidates(t *testing.T) {
	t.Parallel()
	good := sms.TwilioOptions{AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "abc123", From: testFrom}
	for _, tc := range []struct {
		field string
		edit  func(*sms.TwilioOptions)
	}{
		{"AccountSID", func(o *sms.TwilioOptions) { o.AccountSID = "AC123" }},
		{"AuthToken", func(o *sms.TwilioOptions) { o.AuthToken = "" }},
		{"From or MessagingServiceSID", func(o *sms.TwilioOptions) { o.From = "" }},
		{"From", func(o *sms.TwilioOptions) { o.From = "Shop Name Too Long" }},
		{"MessagingServiceSID", func(o *sms.TwilioOptions) { o.MessagingServiceSID = "MGxyz" }},
		{"APIURL", func(o *sms.TwilioOptions) { o.APIURL = "api.twilio.com" }},
		{"APIURL", func(o *sms.TwilioOptions) { o.APIURL = "https://api.twilio.com/2010-04-01" }},
		{"Timeout", func(o *sms.TwilioOptions) { o.Timeout = -time.Second }},
	} {
		o := good
		tc.edit(&o)
		if _, err := sms.NewTwilio(o); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("NewTwilio(%s wrong) = %v, want an error naming it", tc.field, err)
		}
	}
	for _, from := range []string{"+421901234567", "ShopSK", "12345"} {
		o := good
		o.From = from
		if tw, err := sms.NewTwilio(o); err != nil {
			t.Errorf("NewTwilio(From %q) = %v", from, err)
		} else {
			tw.Close()
		}
	}
}

func TestTwilioAcceptedButUnreadableIsNotAnError(t *testing.T) {
	t.Parallel()
	accepted := sms.Result{SID: "", Status: "accepted"}
	for _, tc := range []struct {
		name  string
		fault twiliotest.Fault
	}{
		{"truncated json", twiliotest.TruncatedJSON},         // twilio-go cannot parse it
		{"connection closed mid-body", twiliotest.ShortBody}, // reading it fails
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, tw := newTwilio(t, twiliotest.Options{Fault: func(int, string) twiliotest.Fault { return tc.fault }}, nil)
			res, err := tw.Send(t.Context(), message(1))
			if err != nil || res != accepted {
				t.Fatalf("Send = %+v, %v; want %+v, nil", res, err, accepted)
			}
			if srv.Count() != 1 || srv.Requests() != 1 {
				t.Errorf("server: %d messages of %d requests, want 1 of 1", srv.Count(), srv.Requests())
			}
		})
	}
	t.Run("html from a proxy", func(t *testing.T) {
		t.Parallel()
		// A proxy that answers 201 with something other than Twilio's JSON:
		// the message was accepted; a retry would send it twice.
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, "<html>created</html>")
		}))
		defer proxy.Close()
		tw, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "abc123", From: testFrom, APIURL: proxy.URL})
		if err != nil {
			t.Fatal(err)
		}
		defer tw.Close()
		if res, err := tw.Send(t.Context(), message(1)); err != nil || res != accepted {
			t.Errorf("Send = %+v, %v; want %+v, nil", res, err, accepted)
		}
	})
}

// inDoubt returns err's *sms.SendError, failing t unless it is in doubt
// (and only that).
func inDoubt(t *testing.T, err error) *sms.SendError {
	t.Helper()
	var se *sms.SendError
	if !errors.As(err, &se) {
		t.Fatalf("Send = %v (%T), want *sms.SendError", err, err)
	}
	if !se.InDoubt || !sms.IsInDoubt(err) || se.Permanent || sms.IsPermanent(err) || sms.IsRateLimited(err) || se.Status != 0 {
		t.Errorf("SendError = %+v; want in doubt, not permanent, not rate limited, status 0", se)
	}
	if !strings.Contains(err.Error(), "(in doubt)") {
		t.Errorf("Error() = %q, want it to say in doubt", err)
	}
	return se
}

func TestTwilioConnectionDroppedAfterWriteIsInDoubt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fault   twiliotest.Fault
		created int
	}{
		{"created, then dropped", twiliotest.DropAfterCreate, 1},
		{"dropped before creating", twiliotest.DropBeforeCreate, 0}, // the client cannot tell
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, tw := newTwilio(t, twiliotest.Options{Fault: func(n int, _ string) twiliotest.Fault {
				if n == 1 {
					return tc.fault
				}
				return twiliotest.NoFault
			}}, nil)
			_, err := tw.Send(t.Context(), message(1))
			inDoubt(t, err)
			if srv.Requests() != 1 || srv.Count() != tc.created {
				t.Errorf("server: %d messages of %d requests, want %d of 1", srv.Count(), srv.Requests(), tc.created)
			}
			// The sender stays usable: the next message goes out once.
			if res, err := tw.Send(t.Context(), message(2)); err != nil || res.SID == "" {
				t.Errorf("next Send = %+v, %v", res, err)
			}
			if srv.Requests() != 2 || srv.Count() != tc.created+1 {
				t.Errorf("server: %d messages of %d requests, want %d of 2", srv.Count(), srv.Requests(), tc.created+1)
			}
		})
	}
}

func TestTwilioTimeoutAfterWriteIsInDoubt(t *testing.T) {
	t.Parallel()
	srv, tw := newTwilio(t, twiliotest.Options{Latency: time.Hour}, func(o *sms.TwilioOptions) { o.Timeout = 500 * time.Millisecond })
	_, err := tw.Send(t.Context(), message(1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
	inDoubt(t, err)
	if srv.Requests() != 1 {
		t.Errorf("server got %d requests, want 1", srv.Requests())
	}
}

// stalledTLS accepts TCP connections and never answers the TLS handshake;
// accepted reports how many it took.
func stalledTLS(t *testing.T) (url string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return "https://" + ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

func TestTwilioNotSentIsNotInDoubt(t *testing.T) {
	t.Parallel()
	srv := twiliotest.Start(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()
	stalled, accepted := stalledTLS(t)
	for _, tc := range []struct {
		name    string
		url     string
		timeout time.Duration
		cancel  bool // cancel once the TCP connection is up
		want    error
	}{
		{"connection refused", refused, 0, false, nil},
		{"no such host", "http://twilio.invalid", 2 * time.Second, false, nil},
		{"tls handshake fails", strings.Replace(srv.URL, "http:", "https:", 1), 0, false, nil},
		{"timeout during tls handshake", stalled, 100 * time.Millisecond, false, context.DeadlineExceeded},
		{"cancel during tls handshake", stalled, 0, true, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tw, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: srv.AccountSID, AuthToken: srv.AuthToken, From: testFrom, APIURL: tc.url, Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer tw.Close()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				before := accepted()
				go func() {
					twiliotest.WaitUntil(t, wait, func() bool { return accepted() > before }, func() string { return "no connection" })
					cancel()
				}()
			}
			_, err = tw.Send(ctx, message(1))
			var se *sms.SendError
			if !errors.As(err, &se) || se.InDoubt || sms.IsInDoubt(err) || sms.IsPermanent(err) || se.Status != 0 {
				t.Fatalf("Send = %v (%+v), want a transient error, not in doubt", err, se)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Send = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "in doubt") {
				t.Errorf("Error() = %q says in doubt", err)
			}
		})
	}
	if srv.Requests() != 0 {
		t.Errorf("server got %d requests", srv.Requests())
	}
}

// TestTwilioSenderQueueFullHolds: 21611 (the From number's queue is
// full) clears with time; a caller that holds on IsRateLimited sends
// every recipient exactly once instead of failing the rest of the run.
func TestTwilioSenderQueueFullHolds(t *testing.T) {
	t.Parallel()
	srv, tw := newTwilio(t, twiliotest.Options{Fail: func(n int, _ string) (int, int, string) {
		if n >= 2 && n <= 4 {
			return 400, 21611, ""
		}
		return 0, 0, ""
	}}, nil)
	failed, held := 0, 0
	for i := range 5 {
		for {
			_, err := tw.Send(t.Context(), message(i))
			if err == nil {
				break
			}
			if sms.IsPermanent(err) || !sms.IsRateLimited(err) {
				failed++
				break
			}
			held++
		}
	}
	if failed != 0 || held != 3 || srv.Count() != 5 || srv.Requests() != 8 {
		t.Errorf("failed %d, held %d; server accepted %d of %d requests; want 0, 3, 5 of 8", failed, held, srv.Count(), srv.Requests())
	}
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		seen[m.To]++
	}
	if len(seen) != 5 {
		t.Errorf("recipients sent: %v, want 5 once each", seen)
	}
}

func TestErrorPredicatesOnOtherErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{nil, errors.New("boom"), context.Canceled, fmt.Errorf("x: %w", sms.ErrInvalidMessage)} {
		if sms.IsInDoubt(err) || sms.IsRateLimited(err) {
			t.Errorf("IsInDoubt(%v) = %v, IsRateLimited = %v; want false", err, sms.IsInDoubt(err), sms.IsRateLimited(err))
		}
	}
	wrapped := fmt.Errorf("job: %w", &sms.SendError{InDoubt: true, Message: "m"})
	if !sms.IsInDoubt(wrapped) || sms.IsPermanent(wrapped) || wrapped.Error() != "job: sms: twilio (in doubt): m" {
		t.Errorf("wrapped in-doubt error: IsInDoubt %v, IsPermanent %v, %q", sms.IsInDoubt(wrapped), sms.IsPermanent(wrapped), wrapped)
	}
	if !sms.IsRateLimited(fmt.Errorf("job: %w", &sms.SendError{Status: 400, Code: 21611})) {
		t.Error("IsRateLimited(wrapped 21611) = false")
	}
}
