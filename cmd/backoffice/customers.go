package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopworks/backoffice/workers/customers"
)

const customersUsage = `usage:
  backoffice customers import FILE [--source S] [--wait]
      upload a CSV file (columns id,name,email,phone,language,timezone,tags,
      email_consent,sms_consent; tags separated by ';') and queue its import;
      --wait polls until it has finished and prints the summary and the
      first rejected rows
  backoffice customers show REF [--events N]
      a customer by id, e-mail or phone, with its newest N events (default 20)
`

func runCustomers(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "customers", customersUsage, args, map[string]func(context.Context, *app, []string) error{
		"import": customersImport,
		"show":   customersShow,
	})
}

// pollInterval is how often --wait asks for the state of an import.
const pollInterval = 500 * time.Millisecond

func customersImport(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("customers import", a)
	source := fs.String("source", "", "consent source recorded for the rows, e.g. import:2026-11-crm")
	wait := fs.Bool("wait", false, "wait until the import has finished and print its summary")
	pos, err := parseInterspersed(fs, a, customersUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(customersUsage, "customers import: want one FILE")
	}
	fail := func(err error) error { return fmt.Errorf("customers import %s: %w", pos[0], err) }
	c, err := a.newClient()
	if err != nil {
		return err
	}
	up, err := uploadImport(ctx, c, pos[0], *source)
	if err != nil {
		return fail(err)
	}
	if !*wait {
		if a.globals.json {
			return printRaw(a.stdout, up.raw)
		}
		fmt.Fprintf(a.stdout, "import %s queued as task %s\nfollow it with: backoffice imports show %s\n", up.ImportID, up.TaskID, up.ImportID)
		return nil
	}
	if !a.globals.json {
		fmt.Fprintf(a.stderr, "import %s queued as task %s; waiting for it to finish\n", up.ImportID, up.TaskID)
	}
	v, raw, err := waitImport(ctx, c, up.ImportID)
	if err != nil {
		return fail(err)
	}
	if a.globals.json {
		err = printRaw(a.stdout, raw)
	} else {
		err = printImport(a.stdout, v)
	}
	if err == nil && v.State == customers.ImportFailed {
		return fail(fmt.Errorf("import %s failed: %s", v.ImportID, orDash(v.Summary.Error)))
	}
	return err
}

// uploaded is the answer to an upload.
type uploaded struct {
	ImportID string `json:"import_id"`
	TaskID   string `json:"task_id"`
	raw      []byte
}

// uploadImport streams file to POST /api/imports.
func uploadImport(ctx context.Context, c *client, file, source string) (uploaded, error) {
	f, err := os.Open(file)
	if err != nil {
		return uploaded{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return uploaded{}, err
	}
	if !st.Mode().IsRegular() {
		return uploaded{}, fmt.Errorf("not a regular file")
	}
	q := url.Values{}
	if source != "" {
		q.Set("source", source)
	}
	// When the file was written: the import dates its consent cells from
	// it, so that an opt-out recorded since is not undone by an old export.
	q.Set("modified", st.ModTime().UTC().Format(time.RFC3339Nano))
	raw, err := c.do(ctx, request{method: http.MethodPost, path: "/api/imports", query: q,
		body: f, size: st.Size(), ctype: "text/csv", upload: true})
	if err != nil {
		return uploaded{}, err
	}
	up := uploaded{raw: raw}
	if err := json.Unmarshal(raw, &up); err != nil {
		return uploaded{}, fmt.Errorf("answer: %w", err)
	}
	return up, nil
}

// waitImport polls an import until it has finished or failed, or its task
// was archived: then nothing will run it any more (an archived task is only
// run again by hand, from the monitor).
func waitImport(ctx context.Context, c *client, id string) (importView, []byte, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		v, raw, err := getImport(ctx, c, id)
		if err != nil {
			return v, nil, err
		}
		if v.State == customers.ImportFinished || v.State == customers.ImportFailed {
			return v, raw, nil
		}
		if v.Task != nil && v.Task.State == "archived" {
			where := ""
			if v.Summary != nil {
				where = fmt.Sprintf(" after %d rows (line %d)", v.Summary.Rows, v.Summary.Line)
			}
			return v, raw, fmt.Errorf("import %s: task %s gave up%s: %s", id, v.Task.ID, where, orDash(v.Task.LastError))
		}
		select {
		case <-ctx.Done():
			return v, nil, fmt.Errorf("interrupted; the import goes on: backoffice imports show %s", id)
		case <-tick.C:
		}
	}
}

func customersShow(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("customers show", a)
	events := fs.Int("events", 20, "how many of the newest timeline events to show (0-500)")
	pos, err := parseInterspersed(fs, a, customersUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(customersUsage, "customers show: want one REF (id, e-mail or phone)")
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	var v struct {
		Customer customers.Customer `json:"customer"`
		Events   []customers.Event  `json:"events"`
	}
	raw, err := c.getJSON(ctx, "/api/customers/"+url.PathEscape(pos[0]), url.Values{"events": {strconv.Itoa(*events)}}, &v)
	if err != nil {
		return fmt.Errorf("customers show %s: %w", pos[0], err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	if err := printCustomer(a.stdout, v.Customer); err != nil {
		return err
	}
	return printEvents(a.stdout, v.Events)
}

func printCustomer(w io.Writer, c customers.Customer) error {
	tb := newTable(w)
	tb.row("ID", c.ID)
	tb.row("NAME", orDash(c.Name))
	tb.row("E-MAIL", orDash(c.Email))
	tb.row("PHONE", orDash(c.Phone))
	tb.row("LANGUAGE", orDash(c.Language))
	tb.row("TIMEZONE", orDash(c.Timezone))
	tb.row("TAGS", orDash(strings.Join(c.Tags, ", ")))
	channels := make([]string, 0, len(c.Consent))
	for ch := range c.Consent {
		channels = append(channels, string(ch))
	}
	slices.Sort(channels)
	for _, ch := range channels {
		cs := c.Consent[customers.Channel(ch)]
		tb.row("CONSENT "+strings.ToUpper(ch), fmt.Sprintf("%s since %s (%s)", cs.Status, stamp(cs.At), orDash(cs.Source)))
	}
	if c.Unknown {
		tb.row("UNKNOWN", "yes: created from an inbound message, not identified yet")
	}
	tb.row("CREATED", stamp(c.CreatedAt))
	tb.row("UPDATED", stamp(c.UpdatedAt))
	return tb.flush()
}

func printEvents(w io.Writer, events []customers.Event) error {
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "\nno events")
		return err
	}
	fmt.Fprintln(w)
	tb := newTable(w)
	tb.row("AT", "KIND", "CHANNEL", "REF", "TEXT")
	for _, e := range events {
		tb.row(stamp(e.At), e.Kind, orDash(e.Channel), orDash(e.Ref), orDash(e.Text))
	}
	return tb.flush()
}
