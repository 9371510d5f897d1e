package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shopworks/backoffice/cmd/internal/config"
)

const (
	sessionCookie = "bo_session"
	sessionTTL    = 12 * time.Hour
	maxFormBytes  = 64 << 10
)

// sessionKey is the HMAC key of t's sessions. It is derived from t's secret,
// so rotating or removing a token ends its sessions, and daemons that share
// tokens accept each other's cookies.
func sessionKey(t config.Token) []byte {
	m := hmac.New(sha256.New, []byte(t.Secret))
	m.Write([]byte("backoffice session key v1"))
	return m.Sum(nil)
}

func sessionMAC(t config.Token, expires int64) []byte {
	m := hmac.New(sha256.New, sessionKey(t))
	m.Write([]byte(t.Name + "\n" + strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}

// sessionValue is the cookie value of t's session ending at expires:
// name.expiry.mac, each base64url or decimal.
func sessionValue(t config.Token, expires time.Time) string {
	exp := expires.Unix()
	return base64.RawURLEncoding.EncodeToString([]byte(t.Name)) + "." + strconv.FormatInt(exp, 10) +
		"." + base64.RawURLEncoding.EncodeToString(sessionMAC(t, exp))
}

// readSession returns the token name of a valid, unexpired session cookie.
func (s *Server) readSession(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return "", false
	}
	name, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	mac, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || s.now().Unix() >= exp {
		return "", false
	}
	t, ok := s.auth.byName(string(name))
	if !ok || !hmac.Equal(mac, sessionMAC(t, exp)) {
		return "", false
	}
	return t.Name, true
}

func (s *Server) registerSession() {
	s.open("GET /login", s.loginForm)
	s.open("POST /login", s.login)
	s.open("POST /logout", s.logout)
}

type loginPage struct {
	Next  string
	Error string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login.html", loginPage{Next: localPath(r.URL.Query().Get("next"))})
}

// login exchanges a token, posted from the login form, for a session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := s.origins.check(r); err != nil {
		writeError(w, http.StatusForbidden, "%v", err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "login form: %v", err)
		return
	}
	next := localPath(r.PostForm.Get("next"))
	t, ok := s.auth.match(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		s.log.WarnContext(r.Context(), "login refused: unknown token", "remote", r.RemoteAddr)
		s.render(w, http.StatusUnauthorized, "login.html", loginPage{Next: next, Error: "That token is not valid."})
		return
	}
	noteCaller(r.Context(), t.Name)
	expires := s.now().Add(sessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: sessionValue(t, expires), Path: "/", Expires: expires,
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteStrictMode,
	})
	s.log.InfoContext(r.Context(), "login", "caller", t.Name)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.origins.check(r); err != nil {
		writeError(w, http.StatusForbidden, "%v", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath returns p if it is a path on this server, else "/": the login
// form must not redirect to another site. Browsers drop tabs and newlines
// from a Location and read a backslash as a slash, so "/\t/evil.example"
// would take them to evil.example: a control character anywhere refuses p.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "/"
	}
	return p
}
