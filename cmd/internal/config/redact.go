package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"text/tabwriter"
)

// Redacted returns the effective configuration, one setting a line, with
// every secret shown as <redacted> (passwords inside URLs too).
func (c Config) Redacted() string {
	var b strings.Builder
	c.WriteTable(&b)
	return b.String()
}

// WriteTable writes the effective configuration as an aligned table of
// variable and value, secrets redacted.
func (c Config) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range settings() {
		v := s.show(c)
		if v == "" {
			v = "(not set)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", s.env, v)
	}
	_ = tw.Flush()
}

// LogValue makes a logged Config a group of its settings, secrets redacted.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, s := range settings() {
		attrs = append(attrs, slog.String(s.env, s.show(c)))
	}
	return slog.GroupValue(attrs...)
}

// String is Redacted, so that printing a Config with %v never shows a secret.
func (c Config) String() string { return c.Redacted() }

// GoString is Redacted, for %#v.
func (c Config) GoString() string { return c.Redacted() }

// Secrets returns every secret value of the configuration (API token
// secrets, passwords inside the Redis and SMTP URLs, the Twilio auth token,
// the unsubscribe secret), for a logger that scrubs them from its output.
func (c Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	for _, t := range c.APITokens {
		add(t.Secret)
	}
	for _, raw := range []string{c.RedisURL, c.SMTPURL} {
		for _, s := range urlSecrets(raw) {
			add(s)
		}
	}
	add(c.TwilioAuthToken)
	add(c.UnsubscribeSecret)
	return out
}

// urlSecrets returns the password of a URL and any *password query value,
// both as written and percent-encoded.
func urlSecrets(raw string) []string {
	var out []string
	// Cut the authority by hand: net/url refuses host lists.
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		authority := rest
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			authority = rest[:end] // a query value may hold an @ too
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			if _, pass, ok := strings.Cut(authority[:at], ":"); ok && pass != "" {
				out = append(out, pass)
				if dec, err := url.PathUnescape(pass); err == nil && dec != pass {
					out = append(out, dec)
				}
			}
		}
		if _, query, ok := strings.Cut(rest, "?"); ok {
			if q, err := url.ParseQuery(query); err == nil {
				for k, vs := range q {
					if strings.HasSuffix(k, "password") {
						out = append(out, vs...)
					}
				}
			}
		}
	}
	return out
}
