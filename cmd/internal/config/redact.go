package config

import (
	"fmt"
	"io"
	"log/slog"
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
