package sms_test

import (
	"context"
	"errors"
	"fmt"
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
	}{
		{"throttled", 429, 20429, "7", false, 7 * time.Second},
		{"throttled without header", 429, 20429, "", false, 0},
		{"server error json", 500, 20500, "", false, 0},
		{"bad gateway html", 502, 0, "", false, 0},
		{"unavailable html with retry-after", 503, 0, "30", false, 30 * time.Second},
		{"invalid number", 400, 21211, "", true, 0},
		{"not a mobile", 400, 21614, "", true, 0},
		{"region not enabled", 400, 21408, "", true, 0},
		{"unreachable", 400, 21612, "", true, 0},
		{"carrier violation", 400, 30007, "", true, 0},
		{"other 4xx", 400, 21606, "", true, 0},
		{"forbidden: configuration", 403, 20403, "", false, 0},
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

func TestTwilioAcceptedButUnreadableIsNotRetried(t *testing.T) {
	t.Parallel()
	// A proxy that answers 201 with something other than Twilio's JSON:
	// the message may have been created, so a retry could send it twice.
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
	_, err = tw.Send(t.Context(), message(1))
	var se *sms.SendError
	if !errors.As(err, &se) || se.Status != http.StatusCreated || !sms.IsPermanent(err) {
		t.Errorf("Send = %v, want a permanent error with status 201", err)
	}
}
