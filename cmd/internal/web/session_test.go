package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/web"
)

// login posts the login form from our own origin and returns the session
// cookie.
func (b *bundle) login(t *testing.T, secret string) *http.Cookie {
	t.Helper()
	resp, body := b.call(t, "POST", "/login", "", strings.NewReader(url.Values{"token": {secret}, "next": {"/"}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", b.ts.URL)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login = %d, want 303; body %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "bo_session" {
			return c
		}
	}
	t.Fatalf("POST /login set no bo_session cookie")
	return nil
}

func TestLoginSetsHardenedCookie(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		publicURL  string
		wantSecure bool
	}{{"", false}, {"https://backoffice.example.com", true}} {
		b := setup(t, func(o *web.Options) { o.PublicURL = tt.publicURL })
		c := b.login(t, operatorSecret)
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != tt.wantSecure || c.MaxAge != 12*3600 {
			t.Errorf("PublicURL %q: cookie HttpOnly=%v SameSite=%v Secure=%v MaxAge=%d; want true, Strict, %v, 43200",
				tt.publicURL, c.HttpOnly, c.SameSite, c.Secure, c.MaxAge, tt.wantSecure)
		}
		if strings.Contains(c.Value, operatorSecret) {
			t.Errorf("cookie value contains the token secret")
		}
	}
}

func TestLoginRefusesWrongToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, body := b.call(t, "POST", "/login", "", strings.NewReader("token=not-a-valid-token-0123456789"),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", b.ts.URL)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(string(body), "not valid") {
		t.Errorf("POST /login with a wrong token = %d, cookies %v; want 401, no cookie, the form with a message", resp.StatusCode, resp.Cookies())
	}
	resp, _ = b.call(t, "POST", "/login", "", strings.NewReader("token="+operatorSecret),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example")
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("POST /login from another origin = %d, want 403 without a cookie", resp.StatusCode)
	}
}

func TestDashboardRedirectsToLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct{ path, want string }{
		{"/", "/login?next=%2F"},
		{"/monitor/", "/login?next=%2Fmonitor%2F"},
	} {
		resp, _ := b.call(t, "GET", tt.path, "", nil, "Accept", "text/html")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.want {
			t.Errorf("GET %s from a browser without a session = %d Location %q; want 303 %s",
				tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.want)
		}
	}
}

func TestLoginNextStaysOnSite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Browsers drop tabs and newlines from a Location: "/\t/evil.example"
	// is "//evil.example" to them.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example/x",
		"/\n/evil.example", "/\r\n/evil.example", "/\t\\evil.example", "\t//evil.example", "/monitor/"} {
		req, err := http.NewRequestWithContext(t.Context(), "POST", b.ts.URL+"/login",
			strings.NewReader(url.Values{"token": {viewerSecret}, "next": {next}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.ts.URL)
		// A transport, not a client: a client refuses a Location with a
		// control character before the test could see it.
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := "/"
		if next == "/monitor/" {
			want = next
		}
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("login with next=%q redirects to %q, want %q", next, got, want)
		}
	}
}

func TestSessionCookieAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cookie := b.login(t, operatorSecret)
	withCookie := func(method, path, body string, header ...string) *http.Response {
		resp, _ := b.call(t, method, path, "", strings.NewReader(body), append(header, "Cookie", cookie.Name+"="+cookie.Value)...)
		return resp
	}
	if resp := withCookie("GET", "/", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET / with a session = %d, want 200", resp.StatusCode)
	}
	if resp := withCookie("GET", "/api/kinds", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/kinds with a session = %d, want 200", resp.StatusCode)
	}
	args := `{"import_id":"from-browser","path":"/srv/a.csv"}`
	tests := []struct {
		name   string
		header []string
		want   int
	}{
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"foreign Origin", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"foreign Referer", []string{"Referer", "https://evil.example/page"}, http.StatusForbidden},
		{"no Origin or Referer", nil, http.StatusForbidden},
		{"same Referer", []string{"Referer", b.ts.URL + "/"}, http.StatusAccepted},
	}
	for _, tt := range tests {
		if resp := withCookie("POST", "/api/jobs/customers:import", args, tt.header...); resp.StatusCode != tt.want {
			t.Errorf("%s: POST with a session = %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	tampered := cookie.Value[:len(cookie.Value)-2] + "xx"
	if resp, _ := b.call(t, "GET", "/api/kinds", "", nil, "Cookie", "bo_session="+tampered); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET with a tampered cookie = %d, want 401", resp.StatusCode)
	}
}

// TestSessionExpires moves the server's clock past the 12 hours.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	b := setup(t, func(o *web.Options) { o.Now = clock.Now })
	cookie := b.login(t, viewerSecret)
	get := func() int {
		resp, _ := b.call(t, "GET", "/api/kinds", "", nil, "Cookie", cookie.Name+"="+cookie.Value)
		return resp.StatusCode
	}
	clock.Advance(12*time.Hour - time.Minute)
	if code := get(); code != http.StatusOK {
		t.Errorf("session after 11h59m = %d, want 200", code)
	}
	clock.Advance(time.Minute)
	if code := get(); code != http.StatusUnauthorized {
		t.Errorf("session after 12h = %d, want 401", code)
	}
}

// TestSessionEndsWithItsToken: a cookie of a token that is no longer
// configured (or has a new secret) is refused.
func TestSessionEndsWithItsToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cookie := b.login(t, viewerSecret)
	rotated := setup(t, func(o *web.Options) {
		o.Tokens = testTokens()
		o.Tokens[1].Secret = "viewer-rotated-secret-0123456789"
	})
	resp, _ := rotated.call(t, "GET", "/api/kinds", "", nil, "Cookie", cookie.Name+"="+cookie.Value)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie of a rotated token = %d, want 401", resp.StatusCode)
	}
	same := setup(t)
	if resp, _ := same.call(t, "GET", "/api/kinds", "", nil, "Cookie", cookie.Name+"="+cookie.Value); resp.StatusCode != http.StatusOK {
		t.Errorf("cookie on another server with the same tokens = %d, want 200", resp.StatusCode)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cookie := b.login(t, viewerSecret)
	resp, _ := b.call(t, "POST", "/logout", "", nil, "Cookie", cookie.Name+"="+cookie.Value, "Origin", b.ts.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("POST /logout = %d Location %q, want 303 /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == "bo_session" && c.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("POST /logout did not clear the cookie: %v", resp.Cookies())
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestLogoutRevokesCopies: a copy of the cookie taken before logout (another
// browser, a stolen value) is refused after it, on the API and on pages.
func TestLogoutRevokesCopies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cookie := b.login(t, viewerSecret)
	copied := cookie.Name + "=" + cookie.Value
	if resp, _ := b.call(t, "GET", "/api/kinds", "", nil, "Cookie", copied); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/kinds before logout = %d, want 200", resp.StatusCode)
	}
	if resp, _ := b.call(t, "POST", "/logout", "", nil, "Cookie", copied, "Origin", b.ts.URL); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /logout = %d, want 303", resp.StatusCode)
	}
	if resp, body := b.call(t, "GET", "/api/kinds", "", nil, "Cookie", copied); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(string(body), "the session has ended") {
		t.Errorf("GET /api/kinds with the copied cookie after logout = %d %s, want 401 saying the session ended", resp.StatusCode, body)
	}
	resp, _ := b.call(t, "GET", "/", "", nil, "Cookie", copied, "Accept", "text/html")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2F" {
		t.Errorf("GET / with the copied cookie after logout = %d Location %q, want 303 /login?next=%%2F",
			resp.StatusCode, resp.Header.Get("Location"))
	}
	// Another session of the same token is not affected.
	other := b.login(t, viewerSecret)
	if resp, _ := b.call(t, "GET", "/api/kinds", "", nil, "Cookie", other.Name+"="+other.Value); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/kinds with a new session of the same token = %d, want 200", resp.StatusCode)
	}
}

// TestLogoutRevocationTTL: the revocation is a key under the daemon's prefix
// that lives as long as the session had left (and a minute for clocks), so
// Redis does not keep revoked sessions forever.
func TestLogoutRevocationTTL(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	b := setup(t, func(o *web.Options) { o.Now = clock.Now })
	cookie := b.login(t, viewerSecret)
	clock.Advance(2 * time.Hour)
	if resp, _ := b.call(t, "POST", "/logout", "", nil, "Cookie", cookie.Name+"="+cookie.Value, "Origin", b.ts.URL); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /logout = %d, want 303", resp.StatusCode)
	}
	keys, err := b.rdb.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Split(cookie.Value, ".")[2]
	if want := "bo:session:revoked:" + id; len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys after logout = %q, want only %q", keys, want)
	}
	ttl, err := b.rdb.TTL(t.Context(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 10*time.Hour-time.Minute || ttl > 10*time.Hour+time.Minute {
		t.Errorf("TTL of the revoked session = %v, want the 10h left of it (plus at most a minute)", ttl)
	}
}

// TestSessionRedisDown: while Redis does not answer, a cookie cannot be
// checked against the revoked sessions: cookie requests fail closed with
// 503 (not a login page: signing in again would not help), bearer requests
// do not depend on it, and logout answers 503 and keeps the cookie so that
// it can be retried.
func TestSessionRedisDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cookie := b.login(t, viewerSecret)
	withCookie := []string{"Cookie", cookie.Name + "=" + cookie.Value}
	b.redis.Stop()
	resp, body := b.call(t, "GET", "/api/kinds", "", nil, withCookie...)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "Redis") {
		t.Errorf("GET /api/kinds with a cookie, Redis down = %d %s; want 503 naming Redis", resp.StatusCode, body)
	}
	if resp, _ := b.call(t, "GET", "/", "", nil, append(withCookie, "Accept", "text/html")...); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET / with a cookie, Redis down = %d, want 503", resp.StatusCode)
	}
	if resp, _ := b.call(t, "GET", "/api/kinds", viewerSecret, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/kinds with a bearer token, Redis down = %d, want 200", resp.StatusCode)
	}
	resp, _ = b.call(t, "POST", "/logout", "", nil, append(withCookie, "Origin", b.ts.URL)...)
	if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 {
		t.Errorf("POST /logout, Redis down = %d, cookies %v; want 503 and the cookie kept", resp.StatusCode, resp.Cookies())
	}
	b.redis.Restart(t)
	eventually(t, "the cookie works again once Redis is back", func() bool {
		resp, _ := b.call(t, "GET", "/api/kinds", "", nil, withCookie...)
		return resp.StatusCode == http.StatusOK
	})
	if resp, _ := b.call(t, "POST", "/logout", "", nil, append(withCookie, "Origin", b.ts.URL)...); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /logout once Redis is back = %d, want 303", resp.StatusCode)
	}
	if resp, _ := b.call(t, "GET", "/api/kinds", "", nil, withCookie...); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/kinds after the retried logout = %d, want 401", resp.StatusCode)
	}
}
