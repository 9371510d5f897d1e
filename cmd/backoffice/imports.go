package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/shopworks/backoffice/workers/customers"
)

const importsUsage = `usage:
  backoffice imports show ID   an import's state, counts and first rejected rows
`

func runImports(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "imports", importsUsage, args, map[string]func(context.Context, *app, []string) error{
		"show": importsShow,
	})
}

// importView is an import as GET /api/imports/{id} shows it.
type importView struct {
	ImportID string                   `json:"import_id"`
	State    string                   `json:"state"`
	Summary  *customers.ImportSummary `json:"summary"`
	Errors   []string                 `json:"errors"`
	Task     *task                    `json:"task"`
}

func getImport(ctx context.Context, c *client, id string) (importView, []byte, error) {
	var v importView
	raw, err := c.getJSON(ctx, "/api/imports/"+url.PathEscape(id), nil, &v)
	return v, raw, err
}

func importsShow(ctx context.Context, a *app, args []string) error {
	pos, err := parseInterspersed(newFlagSet("imports show", a), a, importsUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(importsUsage, "imports show: want one ID")
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	v, raw, err := getImport(ctx, c, pos[0])
	if err != nil {
		return fmt.Errorf("imports show %s: %w", pos[0], err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	return printImport(a.stdout, v)
}

// printImport prints the summary, then the rejected rows, one a line, as
// the import recorded them ("line N: field X: reason").
func printImport(w io.Writer, v importView) error {
	tb := newTable(w)
	tb.row("IMPORT", v.ImportID)
	tb.row("STATE", v.State)
	if v.Task != nil {
		tb.row("TASK", v.Task.ID+" ("+v.Task.State+")")
	}
	if s := v.Summary; s != nil {
		n := func(i int64) string { return strconv.FormatInt(i, 10) }
		tb.row("FILE", s.File)
		tb.row("SOURCE", orDash(s.Source))
		tb.row("STARTED", stamp(s.StartedAt))
		tb.row("FINISHED", stamp(s.FinishedAt))
		tb.row("ROWS", n(s.Rows))
		tb.row("IMPORTED", n(s.Imported))
		tb.row("UPDATED", n(s.Updated))
		tb.row("UNCHANGED", n(s.Unchanged))
		tb.row("REJECTED", n(s.Rejected))
		if s.Resumes > 0 {
			tb.row("RESUMED", n(s.Resumes)+" times")
		}
		if s.Error != "" {
			tb.row("ERROR", s.Error)
		}
	}
	if err := tb.flush(); err != nil {
		return err
	}
	if len(v.Errors) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nrejected rows:")
	for _, e := range v.Errors {
		fmt.Fprintln(w, "  "+e)
	}
	if v.Summary != nil && v.Summary.Rejected > int64(len(v.Errors)) {
		fmt.Fprintf(w, "  ... and %d more (the first %d are shown)\n", v.Summary.Rejected-int64(len(v.Errors)), len(v.Errors))
	}
	return nil
}
