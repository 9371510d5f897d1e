// Package logging sets up the daemon's log/slog logger (JSON, one object a
// line) and adapts it to asynq's printf-style Logger.
//
// Secrets are kept out of the logs twice over: attributes whose key names a
// secret (password, secret, token, authorization, cookie) are replaced by
// <redacted>, and the secret values the daemon knows (passed to New) are
// replaced wherever they appear in a message or a string attribute.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Redacted replaces a secret in a log line.
const Redacted = "<redacted>"

// minSecretLen is the shortest secret value scrubbed from log text: a very
// short value would turn ordinary words into <redacted>.
const minSecretLen = 6

// New returns a JSON logger writing records at level and above to w. Every
// occurrence of one of secrets in a message or a string or error attribute
// is replaced by <redacted>.
func New(w io.Writer, level slog.Level, secrets ...string) *slog.Logger {
	r := newRedactor(secrets)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: r.replaceAttr}))
}

// Redact returns s with every occurrence of one of secrets replaced by
// <redacted>. Use it for text built outside slog, such as an error shown on
// a page.
func Redact(s string, secrets ...string) string {
	return newRedactor(secrets).replace(s)
}

type redactor struct{ r *strings.Replacer }

func newRedactor(secrets []string) redactor {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			pairs = append(pairs, s, Redacted)
		}
	}
	if len(pairs) == 0 {
		return redactor{}
	}
	return redactor{strings.NewReplacer(pairs...)}
}

func (r redactor) replace(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// sensitiveWords are the words that make an attribute key name a secret
// when the key is one of them or ends with one after a separator
// ("password", "smtp_password", "X-Api-Key"); "token_name" and
// "api_tokens_file" describe a secret without holding one.
var sensitiveWords = []string{"password", "passwd", "secret", "token", "tokens", "authorization", "cookie", "apikey", "api_key", "api-key"}

// isSensitiveKey reports whether key names a secret.
func isSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range sensitiveWords {
		if k == w {
			return true
		}
		if strings.HasSuffix(k, w) && strings.ContainsAny(k[len(k)-len(w)-1:len(k)-len(w)], "_-.") {
			return true
		}
	}
	return false
}

// alreadyRedacted reports whether v is empty or was redacted where it was
// made (Config's "ops:operator:<redacted>" keeps the token names visible).
func alreadyRedacted(v slog.Value) bool {
	return v.Kind() == slog.KindString && (v.String() == "" || strings.Contains(v.String(), Redacted))
}

func (r redactor) replaceAttr(_ []string, a slog.Attr) slog.Attr {
	if isSensitiveKey(a.Key) && !alreadyRedacted(a.Value) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); r.r != nil {
			return slog.String(a.Key, r.replace(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, r.replace(err.Error()))
		}
		if st, ok := a.Value.Any().(fmt.Stringer); ok && r.r != nil {
			return slog.String(a.Key, r.replace(st.String()))
		}
	}
	return a
}
