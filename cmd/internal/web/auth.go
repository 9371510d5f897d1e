package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/shopworks/backoffice/cmd/internal/config"
)

// caller is who made a request: the name and role of the token it showed,
// directly (bearer) or through a session cookie.
type caller struct {
	Name      string
	Role      config.Role
	ViaCookie bool
}

// authenticator matches secrets against the configured tokens.
type authenticator struct {
	tokens []config.Token
	hashes [][sha256.Size]byte // sha256 of each secret, same order
}

func newAuthenticator(tokens []config.Token) *authenticator {
	a := &authenticator{tokens: append([]config.Token(nil), tokens...)}
	for _, t := range a.tokens {
		a.hashes = append(a.hashes, sha256.Sum256([]byte(t.Secret)))
	}
	return a
}

// match returns the token whose secret is secret. It compares against every
// token in constant time (hashes, so lengths do not leak either).
func (a *authenticator) match(secret string) (config.Token, bool) {
	if secret == "" {
		return config.Token{}, false
	}
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range a.hashes {
		if subtle.ConstantTimeCompare(h[:], a.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return config.Token{}, false
	}
	return a.tokens[found], true
}

// byName returns the token called name.
func (a *authenticator) byName(name string) (config.Token, bool) {
	for _, t := range a.tokens {
		if t.Name == name {
			return t, true
		}
	}
	return config.Token{}, false
}

// bearer returns the secret of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	return secret, secret != ""
}

// identify finds the caller of r: a bearer token wins over a session
// cookie. A present but wrong bearer token is not rescued by a cookie.
// The error is errNoSession for no valid caller, another error when a
// session cookie could not be checked against the revoked sessions. Only
// a cookie costs a Redis read; a bearer token costs none.
func (s *Server) identify(r *http.Request) (caller, error) {
	if r.Header.Get("Authorization") != "" {
		secret, ok := bearer(r)
		if !ok {
			return caller{}, errNoSession
		}
		t, ok := s.auth.match(secret)
		if !ok {
			return caller{}, errNoSession
		}
		return caller{Name: t.Name, Role: t.Role}, nil
	}
	sess, err := s.checkSession(r)
	if err != nil {
		return caller{}, err
	}
	t, ok := s.auth.byName(sess.token)
	if !ok {
		return caller{}, errNoSession
	}
	return caller{Name: t.Name, Role: t.Role, ViaCookie: true}, nil
}

// authorize wraps h: it identifies the caller, checks its role and, for
// cookie callers, that unsafe requests come from our own pages.
func (s *Server) authorize(need config.Role, browser bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.identify(r)
		if errors.Is(err, errNoSession) {
			s.unauthorized(w, r, browser)
			return
		}
		if err != nil {
			// Fail closed: the session may have been logged out.
			s.log.WarnContext(r.Context(), "session check failed", "err", err)
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable,
				"cannot check the session cookie: Redis is not answering; try again, or use a bearer token")
			return
		}
		noteCaller(r.Context(), c.Name)
		if !c.Role.Allows(need) {
			writeJSON(w, http.StatusForbidden, apiError{
				Error:    fmt.Sprintf("token %q is a %s; this needs an %s token", c.Name, c.Role, need),
				NeedRole: string(need),
			})
			return
		}
		if c.ViaCookie {
			if err := s.origins.check(r); err != nil {
				writeError(w, http.StatusForbidden, "%v", err)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, browser bool) {
	if browser && wantsHTML(r) && r.Header.Get("Authorization") == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="backoffice"`)
	if _, err := r.Cookie(sessionCookie); err == nil && r.Header.Get("Authorization") == "" {
		// a page's script whose session ended: a token is not what it lacks
		writeError(w, http.StatusUnauthorized, "the session has ended (signed out, expired or its token changed): sign in again at /login")
		return
	}
	writeError(w, http.StatusUnauthorized, "missing or invalid API token: send Authorization: Bearer <token>")
}

// wantsHTML reports whether r is a browser navigating (not a script of a
// page fetching data, which should see the 401 rather than a login page).
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

type callerKey struct{}

// callerOf returns the caller that authorize stored in ctx.
func callerOf(ctx context.Context) (caller, bool) {
	c, ok := ctx.Value(callerKey{}).(caller)
	return c, ok
}
