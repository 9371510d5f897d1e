package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

const jobsUsage = `usage:
  backoffice jobs show TASK_ID
  backoffice jobs enqueue KIND [JSON | @FILE | @-]   (args default to {})
  backoffice jobs kinds
`

func runJobs(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "jobs", jobsUsage, args, map[string]func(context.Context, *app, []string) error{
		"show":    jobsShow,
		"enqueue": jobsEnqueue,
		"kinds":   jobsKinds,
	})
}

// task is a task as the API shows it.
type task struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	Queue         string          `json:"queue"`
	State         string          `json:"state"`
	Retried       int             `json:"retried"`
	MaxRetry      int             `json:"max_retry"`
	LastError     string          `json:"last_error"`
	LastFailedAt  *time.Time      `json:"last_failed_at"`
	NextProcessAt *time.Time      `json:"next_process_at"`
	CompletedAt   *time.Time      `json:"completed_at"`
	Payload       json.RawMessage `json:"payload"`
}

func jobsShow(ctx context.Context, a *app, args []string) error {
	pos, err := parseInterspersed(newFlagSet("jobs show", a), a, jobsUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(jobsUsage, "jobs show: want one TASK_ID")
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	var t task
	raw, err := c.getJSON(ctx, "/api/jobs/"+url.PathEscape(pos[0]), nil, &t)
	if err != nil {
		return fmt.Errorf("jobs show %s: %w", pos[0], err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	return printTask(a.stdout, t)
}

func printTask(w io.Writer, t task) error {
	tb := newTable(w)
	tb.row("TASK", t.ID)
	tb.row("KIND", t.Kind)
	tb.row("QUEUE", t.Queue)
	tb.row("STATE", t.State)
	tb.row("RETRIED", strconv.Itoa(t.Retried)+" of "+strconv.Itoa(t.MaxRetry))
	tb.row("LAST ERROR", orDash(t.LastError))
	tb.row("LAST FAILED", stampPtr(t.LastFailedAt))
	tb.row("NEXT RUN", stampPtr(t.NextProcessAt))
	tb.row("COMPLETED", stampPtr(t.CompletedAt))
	tb.row("ARGS", string(compactJSON(t.Payload)))
	return tb.flush()
}

func compactJSON(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

func jobsEnqueue(ctx context.Context, a *app, args []string) error {
	pos, err := parseInterspersed(newFlagSet("jobs enqueue", a), a, jobsUsage, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef(jobsUsage, "jobs enqueue: want KIND and optional args (JSON, @FILE or @-)")
	}
	kind := pos[0]
	body, err := argsBody(a, pos[1:])
	if err != nil {
		return fmt.Errorf("jobs enqueue %s: %w", kind, err)
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	raw, err := c.do(ctx, request{method: http.MethodPost, path: "/api/jobs/" + url.PathEscape(kind),
		body: bytes.NewReader(body), size: int64(len(body)), ctype: "application/json"})
	if err != nil {
		return fmt.Errorf("jobs enqueue %s: %w", kind, enqueueError(err))
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	var e struct {
		TaskID string `json:"task_id"`
		Queue  string `json:"queue"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("jobs enqueue %s: answer: %w", kind, err)
	}
	fmt.Fprintf(a.stdout, "queued %s as task %s on queue %s\n", kind, e.TaskID, e.Queue)
	return nil
}

// enqueueError explains the answers of POST /api/jobs/{kind} that need it.
func enqueueError(err error) error {
	switch {
	case isStatus(err, http.StatusNotFound):
		return fmt.Errorf("unknown job kind (backoffice jobs kinds lists them)")
	case isStatus(err, http.StatusConflict):
		ae := err.(*apiError)
		return fmt.Errorf("already queued as task %s (backoffice jobs show %s)", ae.TaskID, ae.TaskID)
	}
	return err
}

// argsBody reads the args: inline JSON, @FILE or @- (stdin); none is {}.
func argsBody(a *app, pos []string) ([]byte, error) {
	if len(pos) == 0 {
		return []byte("{}"), nil
	}
	arg := pos[0]
	switch {
	case arg == "@-":
		return io.ReadAll(io.LimitReader(a.stdin, 1<<20+1))
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
		return b, nil
	}
	return []byte(arg), nil
}

type kind struct {
	Kind      string `json:"kind"`
	Queue     string `json:"queue"`
	MaxRetry  int    `json:"max_retry"`
	Timeout   string `json:"timeout"`
	Retention string `json:"retention"`
	Summary   string `json:"summary"`
	Internal  bool   `json:"internal"` // queued by the daemon only
}

func jobsKinds(ctx context.Context, a *app, args []string) error {
	pos, err := parseInterspersed(newFlagSet("jobs kinds", a), a, jobsUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef(jobsUsage, "jobs kinds: takes no arguments")
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	var out struct {
		Kinds []kind `json:"kinds"`
	}
	raw, err := c.getJSON(ctx, "/api/kinds", nil, &out)
	if err != nil {
		return fmt.Errorf("jobs kinds: %w", err)
	}
	if a.globals.json {
		return printRaw(a.stdout, raw)
	}
	tb := newTable(a.stdout)
	tb.row("KIND", "QUEUE", "RETRIES", "TIMEOUT", "SUMMARY")
	for _, k := range out.Kinds {
		summary := k.Summary
		if k.Internal {
			summary = "(queued by the daemon only) " + summary
		}
		tb.row(k.Kind, k.Queue, strconv.Itoa(k.MaxRetry), k.Timeout, summary)
	}
	return tb.flush()
}
