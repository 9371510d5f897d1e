package twiliotest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/sms"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
	"github.com/twilio/twilio-go/client"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// post sends form to the server's Messages endpoint with user:pass and
// returns the status and decoded JSON body.
func post(t *testing.T, s *twiliotest.Server, account, user, pass string, form url.Values) (int, map[string]any) {
	t.Helper()
	u := s.URL + "/2010-04-01/Accounts/" + account + "/Messages.json"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return resp.StatusCode, body
}

func TestCreateMessage(t *testing.T) {
	t.Parallel()
	s := twiliotest.Start(t)
	form := url.Values{"To": {"+421901234567"}, "From": {"+421233456789"}, "Body": {"Ahoj"}, "StatusCallback": {"https://x.example/cb"}}
	status, body := post(t, s, s.AccountSID, s.AccountSID, s.AuthToken, form)
	if status != http.StatusCreated {
		t.Fatalf("status %d: %v", status, body)
	}
	sid, _ := body["sid"].(string)
	want := map[string]any{
		"account_sid": s.AccountSID, "api_version": "2010-04-01", "body": "Ahoj", "direction": "outbound-api",
		"from": "+421233456789", "to": "+421901234567", "status": "queued", "num_segments": "1", "num_media": "0",
		"sid": sid, "uri": "/2010-04-01/Accounts/" + s.AccountSID + "/Messages/" + sid + ".json",
	}
	got := map[string]any{}
	for k := range want {
		got[k] = body[k]
	}
	if diff := cmp.Diff(want, got); diff != "" || !jobs.ValidMessageSID(sid) {
		t.Errorf("answer (-want +got):\n%s\nsid %q", diff, sid)
	}
	if m := s.WaitFor(t, 1, 5*time.Second)[0]; m.SID != sid || m.StatusCallback != "https://x.example/cb" {
		t.Errorf("recorded %+v", m)
	}
}

func TestCreateMessageErrors(t *testing.T) {
	t.Parallel()
	s := twiliotest.Start(t, twiliotest.Options{OptedOut: []string{"+421900000000"}})
	ok := url.Values{"To": {"+421901234567"}, "From": {"+421233456789"}, "Body": {"Ahoj"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range ok {
			f[key] = vals
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	for _, tc := range []struct {
		name                string
		account, user, pass string
		form                url.Values
		status, code        int
	}{
		{"wrong token", s.AccountSID, s.AccountSID, "nope", ok, 401, 20003},
		{"other account", "AC00000000000000000000000000000000", s.AccountSID, s.AuthToken, ok, 404, 20404},
		{"no To", s.AccountSID, s.AccountSID, s.AuthToken, with("To", ""), 400, 21604},
		{"bad To", s.AccountSID, s.AccountSID, s.AuthToken, with("To", "0901"), 400, 21211},
		{"no From", s.AccountSID, s.AccountSID, s.AuthToken, with("From", ""), 400, 21603},
		{"no Body", s.AccountSID, s.AccountSID, s.AuthToken, with("Body", ""), 400, 21602},
		{"long Body", s.AccountSID, s.AccountSID, s.AuthToken, with("Body", strings.Repeat("a", 1601)), 400, 21617},
		{"opted out", s.AccountSID, s.AccountSID, s.AuthToken, with("To", "+421900000000"), 400, 21610},
		{"bad callback", s.AccountSID, s.AccountSID, s.AuthToken, with("StatusCallback", "nope"), 400, 21609},
	} {
		status, body := post(t, s, tc.account, tc.user, tc.pass, tc.form)
		if code, _ := body["code"].(float64); status != tc.status || int(code) != tc.code {
			t.Errorf("%s: %d %v, want %d code %d", tc.name, status, body, tc.status, tc.code)
		}
	}
	if s.Count() != 0 {
		t.Errorf("accepted %d messages", s.Count())
	}
}

func TestSegments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want int
	}{
		{"Hello", 1},
		{strings.Repeat("a", 160), 1},
		{strings.Repeat("a", 161), 2},
		{strings.Repeat("€", 80), 1}, // extension characters count twice
		{strings.Repeat("€", 81), 2},
		{strings.Repeat("č", 70), 1},
		{strings.Repeat("č", 71), 2},
		{strings.Repeat("ž", 134), 2},
		{strings.Repeat("ž", 135), 3},
		{"😀", 1}, // two UTF-16 units
	} {
		if got := twiliotest.Segments(tc.body); got != tc.want {
			t.Errorf("Segments(%.12q…) = %d, want %d", tc.body, got, tc.want)
		}
	}
}

func TestRandomFailuresIsSeededAndProportional(t *testing.T) {
	t.Parallel()
	a, b := twiliotest.RandomFailures(42, 0.05, 0.01), twiliotest.RandomFailures(42, 0.05, 0.01)
	counts := map[int]int{}
	for n := range 20000 {
		sa, ca, ra := a(n, "")
		sb, cb, rb := b(n, "")
		if sa != sb || ca != cb || ra != rb {
			t.Fatalf("request %d: same seed gave %d/%d/%q and %d/%d/%q", n, sa, ca, ra, sb, cb, rb)
		}
		counts[sa]++
		if sa == 429 && (ca != 20429 || ra == "") || sa == 500 && ca != 0 {
			t.Fatalf("request %d: %d %d %q", n, sa, ca, ra)
		}
	}
	if counts[429] < 800 || counts[429] > 1200 || counts[500] < 120 || counts[500] > 280 {
		t.Errorf("20000 requests: %d throttled, %d server errors; want about 1000 and 200", counts[429], counts[500])
	}
}

func TestSignMatchesTwilio(t *testing.T) {
	t.Parallel()
	const token = "12345abcde12345abcde12345abcde12"
	params := twiliotest.StatusParams("SM0123456789abcdef0123456789abcdef", "undelivered", 30003)
	params.Set("To", "+421901234567")
	const u = "https://backoffice.example.sk/twilio/status?x=1"
	sig := twiliotest.Sign(token, u, params)
	if want := sms.Sign(token, u, params); sig != want {
		t.Errorf("Sign = %q, sms.Sign = %q", sig, want)
	}
	flat := map[string]string{}
	for k, v := range params {
		flat[k] = v[0]
	}
	rv := client.NewRequestValidator(token)
	if !rv.Validate(u, flat, sig) {
		t.Error("twilio-go's validator refuses Sign's signature")
	}
}

func TestSendStatusCallback(t *testing.T) {
	t.Parallel()
	const token = "12345abcde12345abcde12345abcde12"
	var got url.Values
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		v := sms.NewValidator(token, "http://"+r.Host)
		if !v.Valid(r.URL.Path, r.URL.RawQuery, r.PostForm, r.Header.Get(sms.SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		got = r.PostForm
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	sid := "SM0123456789abcdef0123456789abcdef"
	if code := twiliotest.SendStatusCallback(t, hook.URL+"/twilio/status", token, sid, "delivered", 0); code != http.StatusNoContent {
		t.Fatalf("SendStatusCallback = %d, want 204", code)
	}
	if got.Get("MessageSid") != sid || got.Get("MessageStatus") != "delivered" || got.Has("ErrorCode") {
		t.Errorf("callback form = %v", got)
	}
	if code := twiliotest.SendStatusCallback(t, hook.URL+"/twilio/status", "wrongtoken", sid, "failed", 30006); code != http.StatusForbidden {
		t.Errorf("SendStatusCallback with the wrong token = %d, want 403", code)
	}
}
