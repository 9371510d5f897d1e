package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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
	// sessionIDBytes is the length of a session's random id, which tells
	// two logins of one token apart and names the session when it is revoked.
	sessionIDBytes = 16
	// sessionCheckTimeout bounds the Redis read that checks a session cookie
	// against the revoked sessions, and the write of logout.
	sessionCheckTimeout = time.Second
)

// errNoSession is a request without a valid, unexpired, unrevoked session.
var errNoSession = errors.New("no valid session")

// session is what a valid session cookie says: whose it is, its id and
// when it ends.
type session struct {
	token   string
	id      string // base64url of sessionIDBytes random bytes
	expires time.Time
}

// sessionKey is the HMAC key of t's sessions. It is derived from t's secret,
// so rotating or removing a token ends its sessions, and daemons that share
// tokens accept each other's cookies.
func sessionKey(t config.Token) []byte {
	m := hmac.New(sha256.New, []byte(t.Secret))
	m.Write([]byte("backoffice session key v2"))
	return m.Sum(nil)
}

func sessionMAC(t config.Token, expires int64, id string) []byte {
	m := hmac.New(sha256.New, sessionKey(t))
	m.Write([]byte(t.Name + "\n" + strconv.FormatInt(expires, 10) + "\n" + id))
	return m.Sum(nil)
}

// newSessionValue is the cookie value of a new session of t ending at
// expires: name.expiry.id.mac, each base64url or decimal.
func newSessionValue(t config.Token, expires time.Time) string {
	raw := make([]byte, sessionIDBytes)
	_, _ = rand.Read(raw) // never fails (crypto/rand, Go 1.24+)
	id := base64.RawURLEncoding.EncodeToString(raw)
	exp := expires.Unix()
	return base64.RawURLEncoding.EncodeToString([]byte(t.Name)) + "." + strconv.FormatInt(exp, 10) + "." + id +
		"." + base64.RawURLEncoding.EncodeToString(sessionMAC(t, exp, id))
}

// parseSession returns the session of r's cookie when it is signed by a
// configured token and has not expired. It does not ask Redis whether the
// session was revoked: checkSession does.
func (s *Server) parseSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return session{}, false
	}
	name, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	id, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	mac, err4 := base64.RawURLEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || len(id) != sessionIDBytes || s.now().Unix() >= exp {
		return session{}, false
	}
	t, ok := s.auth.byName(string(name))
	if !ok || !hmac.Equal(mac, sessionMAC(t, exp, parts[2])) {
		return session{}, false
	}
	return session{token: t.Name, id: parts[2], expires: time.Unix(exp, 0)}, true
}

// revokedKey is the Redis key that marks session id as logged out.
func (s *Server) revokedKey(id string) string {
	return s.keyPrefix + "session:revoked:" + id
}

// checkSession returns the session of r's cookie: errNoSession without a
// valid one or when it was logged out, another error when Redis cannot
// tell (the caller must then refuse the request: fail closed). It reads
// Redis once, and only for a cookie whose signature is valid.
func (s *Server) checkSession(r *http.Request) (session, error) {
	sess, ok := s.parseSession(r)
	if !ok {
		return session{}, errNoSession
	}
	ctx, cancel := context.WithTimeout(r.Context(), sessionCheckTimeout)
	defer cancel()
	n, err := s.redis.Exists(ctx, s.revokedKey(sess.id)).Result()
	if err != nil {
		return session{}, fmt.Errorf("check session of %q: %w", sess.token, err)
	}
	if n > 0 {
		return session{}, errNoSession
	}
	return sess, nil
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
		Name: sessionCookie, Value: newSessionValue(t, expires), Path: "/", Expires: expires,
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteStrictMode,
	})
	s.log.InfoContext(r.Context(), "login", "caller", t.Name)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout revokes the session of the request's cookie everywhere (every
// daemon on this Redis refuses it from now on, copies included) and removes
// the cookie from this browser. When the revocation cannot be recorded it
// answers 503 and leaves the cookie in place, so that the user can try
// again: clearing it would look like a logout while a copy still works.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.origins.check(r); err != nil {
		writeError(w, http.StatusForbidden, "%v", err)
		return
	}
	if sess, ok := s.parseSession(r); ok {
		noteCaller(r.Context(), sess.token)
		ctx, cancel := context.WithTimeout(r.Context(), sessionCheckTimeout)
		defer cancel()
		// Revoked until the session would have expired anyway; a moment
		// more covers clocks of daemons a little behind this one's.
		ttl := sess.expires.Sub(s.now()) + time.Minute
		if err := s.redis.Set(ctx, s.revokedKey(sess.id), "1", ttl).Err(); err != nil {
			s.log.WarnContext(r.Context(), "logout: cannot revoke the session", "caller", sess.token, "err", err)
			writeError(w, http.StatusServiceUnavailable,
				"logout: the session could not be revoked (Redis is not answering); it is still valid: try again")
			return
		}
		s.log.InfoContext(r.Context(), "logout", "caller", sess.token)
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
