package customers

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The columns an import file may have, in the order the docs list them.
var importColumns = []string{"id", "name", "email", "phone", "language", "timezone", "tags", "email_consent", "sms_consent"}

// columns maps the columns of an import file to their positions.
type columns struct {
	names []string       // as in the header, lower case
	at    map[string]int // known column -> position
}

// parseHeader checks the header row: every column known, none twice, id
// present. Names are matched without regard to case or surrounding space.
func parseHeader(rec []string) (columns, error) {
	c := columns{names: make([]string, len(rec)), at: make(map[string]int, len(rec))}
	var unknown []string
	for i, raw := range rec {
		if !utf8.ValidString(raw) {
			return columns{}, fmt.Errorf("header: column %d: name is not valid UTF-8", i+1)
		}
		name := strings.ToLower(strings.TrimSpace(raw))
		switch {
		case name == "":
			return columns{}, fmt.Errorf("header: column %d has no name", i+1)
		case !slices.Contains(importColumns, name):
			unknown = append(unknown, fmt.Sprintf("%.40q", name))
			continue
		}
		if _, dup := c.at[name]; dup {
			return columns{}, fmt.Errorf("header: column %q appears twice", name)
		}
		c.names[i], c.at[name] = name, i
	}
	if len(unknown) > 0 {
		return columns{}, fmt.Errorf("header: unknown column(s) %s; the known columns are %s",
			strings.Join(unknown, ", "), strings.Join(importColumns, ", "))
	}
	if _, ok := c.at["id"]; !ok {
		return columns{}, fmt.Errorf("header: column id is required (columns: %s)", strings.Join(c.names, ", "))
	}
	return c, nil
}

// get returns the value of column name in rec, and whether the file has it.
func (c columns) get(rec []string, name string) (string, bool) {
	i, ok := c.at[name]
	if !ok {
		return "", false
	}
	return rec[i], true
}

// rowMutation turns one data row into the change it asks for: the columns
// the file has replace the stored fields (an empty cell clears it), the
// others are kept; a consent cell that is empty leaves consent unchanged,
// the others are decisions made at at: older than a stored one, they are
// ignored.
func (c columns) rowMutation(rec []string, source string, at time.Time) (mutation, error) {
	for i, v := range rec {
		if !utf8.ValidString(v) {
			return mutation{}, fieldErr(c.names[i], "is not valid UTF-8")
		}
	}
	id, _ := c.get(rec, "id")
	id = strings.TrimSpace(id)
	if id == "" {
		return mutation{}, fieldErr("id", "is required")
	}
	if !ValidID(id) {
		return mutation{}, fieldErr("id", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got %.70q", id)
	}
	consent := make(map[Channel]Consent)
	for _, ch := range []Channel{ChannelEmail, ChannelSMS} {
		col := string(ch) + "_consent"
		v, _ := c.get(rec, col)
		st, set, err := parseConsentCell(v)
		if err != nil {
			return mutation{}, fieldErr(col, "%v", err)
		}
		if set {
			consent[ch] = Consent{Status: st, At: at, Source: source}
		}
	}
	vals := slices.Clone(rec) // the reader reuses rec; its strings are fresh
	return mutation{id: id, fn: func(cur Customer, exists bool) (Customer, error) {
		next := cur
		if !exists {
			next = Customer{ID: id}
		}
		next.Unknown = false
		c.applyCells(&next, vals)
		next.Consent = overlayConsent(next.Consent, consent)
		return next, nil
	}}, nil
}

// applyCells sets the fields of cust the file has columns for.
func (c columns) applyCells(cust *Customer, rec []string) {
	for name, i := range c.at {
		v := rec[i]
		switch name {
		case "name":
			cust.Name = v
		case "email":
			cust.Email = v
		case "phone":
			cust.Phone = v
		case "language":
			cust.Language = v
		case "timezone":
			cust.Timezone = v
		case "tags":
			cust.Tags = strings.Split(v, ";") // empty parts are dropped by normalize
		}
	}
}

// parseConsentCell reads an email_consent or sms_consent cell.
func parseConsentCell(v string) (ConsentStatus, bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return "", false, nil
	case "opted_in", "yes":
		return OptedIn, true, nil
	case "opted_out", "no":
		return OptedOut, true, nil
	}
	return "", false, fmt.Errorf("must be opted_in, opted_out, yes, no or empty, got %.40q", v)
}
