package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/shopworks/backoffice/workers/inbox"
)

const inboxUsage = `usage:
  backoffice inbox [--kind message|unmatched] [--limit N]
      customers' messages nobody has answered yet, and input that could not
      be filed (unknown delivery reports, malformed numbers, empty or
      oversized messages), newest first (default 100 of each)
  backoffice inbox resolve ID
      mark an entry as dealt with (needs an operator token)
`

func runInbox(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 && args[0] == "resolve" {
		return inboxResolve(ctx, a, args[1:])
	}
	return inboxList(ctx, a, args)
}

// inboxAnswer is GET /api/inbox.
type inboxAnswer struct {
	Messages  []inbox.Entry    `json:"messages"`
	Unmatched []inbox.Entry    `json:"unmatched"`
	Open      map[string]int64 `json:"open"`
	Counts    map[string]int64 `json:"counts"`
}

func inboxList(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("inbox", a)
	kind := fs.String("kind", "", "only message or unmatched entries")
	limit := fs.Int("limit", 100, "newest entries of each kind to show (1-1000)")
	pos, err := parseInterspersed(fs, a, inboxUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usagef(inboxUsage, "inbox: unexpected argument %q", pos[0])
	case *kind != "" && *kind != "message" && *kind != "unmatched":
		return usagef(inboxUsage, "inbox: --kind: want message or unmatched, got %q", *kind)
	case *limit < 1 || *limit > 1000:
		return usagef(inboxUsage, "inbox: --limit: want 1-1000, got %d", *limit)
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	raw, err := c.do(ctx, request{method: http.MethodGet, path: "/api/inbox", query: q})
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	var v inboxAnswer
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("inbox: answer: %w", err)
	}
	return printInbox(a.stdout, v, *kind)
}

// printInbox writes the open entries as two tables and the counts.
func printInbox(w io.Writer, v inboxAnswer, kind string) error {
	if kind == "" || kind == string(inbox.KindMessage) {
		fmt.Fprintf(w, "Unanswered messages (%d open):\n", v.Open[string(inbox.KindMessage)])
		t := newTable(w)
		t.row("RECEIVED", "ID", "CUSTOMER", "FROM", "NOTE", "TEXT")
		for _, e := range v.Messages {
			t.row(stamp(e.At), e.ID, orDash(e.CustomerID), orDash(e.From), orDash(e.Reason), preview(e))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if kind == "" || kind == string(inbox.KindUnmatched) {
		fmt.Fprintf(w, "\nUnmatched input (%d open):\n", v.Open[string(inbox.KindUnmatched)])
		t := newTable(w)
		t.row("RECEIVED", "ID", "REASON", "FROM", "DETAIL")
		for _, e := range v.Unmatched {
			t.row(stamp(e.At), e.ID, e.Reason, orDash(e.From), cut(orDash(e.Detail), 100))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(v.Counts) > 0 {
		fmt.Fprintln(w, "\nFiled since the start:")
		for _, k := range slices.Sorted(maps.Keys(v.Counts)) {
			fmt.Fprintf(w, "  %-40s %d\n", k, v.Counts[k])
		}
	}
	return nil
}

// preview is the message text of a table row, with its media count.
func preview(e inbox.Entry) string {
	s := cut(e.Body, 80)
	if n := len(e.MediaURLs); n > 0 {
		s = strings.TrimSpace(s + " [" + strconv.Itoa(n) + " media]")
	}
	return orDash(s)
}

// cut shortens s to n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func inboxResolve(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("inbox resolve", a)
	pos, err := parseInterspersed(fs, a, inboxUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(inboxUsage, "inbox resolve: want one ID")
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	raw, err := c.do(ctx, request{method: http.MethodPost, path: "/api/inbox/" + url.PathEscape(pos[0]) + "/resolve"})
	if err != nil {
		return fmt.Errorf("inbox resolve %s: %w", pos[0], err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	var e inbox.Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("inbox resolve %s: answer: %w", pos[0], err)
	}
	fmt.Fprintf(a.stdout, "%s resolved by %s at %s\n", e.ID, orDash(e.ResolvedBy), stampPtr(e.ResolvedAt))
	return nil
}
