package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// printRaw writes the API's JSON answer as it came, for --json.
func printRaw(w io.Writer, body []byte) error {
	if _, err := w.Write(body); err != nil {
		return err
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		_, err := io.WriteString(w, "\n")
		return err
	}
	return nil
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)} }

// row writes one line; each cell is made one line of printable text
// (cellText).
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cellText(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// cellText returns c with tabs and line breaks as spaces, and the other
// control characters and the bidirectional controls shown escaped ("\x1b",
// "\u202e"): cells hold what customers wrote, which a terminal must show,
// not obey (clear the screen, set the title, reorder the line).
func cellText(c string) string {
	if !strings.ContainsFunc(c, unprintable) {
		return c
	}
	var b strings.Builder
	for _, r := range c {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x80 && unprintable(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		case unprintable(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unprintable reports the characters cellText does not print as they are:
// C0 and C1 controls, DEL, and the bidirectional embeddings, overrides
// and isolates.
func unprintable(r rune) bool {
	return unicode.IsControl(r) || ('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069')
}

func (t *table) flush() error { return t.tw.Flush() }

// stamp formats a time for tables: UTC, to the second; "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func stampPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t)
}

// orDash shows an empty value as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
