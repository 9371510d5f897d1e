package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

const sampleCSV = "id,name,email,phone,language,timezone,tags,email_consent,sms_consent\n" +
	"c-1,Jana,jana@example.com,+421905123456,sk,Europe/Bratislava,vip;newsletter,yes,no\n" +
	"c-2,Petr,not-an-email,,cs,,,,\n"

// uploadSample uploads sampleCSV as an operator to path (/api/imports and
// its query), requires 202 and returns the import's id.
func (b *bundle) uploadSample(t *testing.T, path string) string {
	t.Helper()
	code, body := b.callJSON(t, "POST", path, operatorSecret, strings.NewReader(sampleCSV), "Content-Type", "text/csv")
	if code != http.StatusAccepted {
		t.Fatalf("POST %s = %d %v, want 202", path, code, body)
	}
	id, _ := body["import_id"].(string)
	return id
}

// TestImportUploadLandsFileAndTask uploads a CSV, finds the file and the
// task, runs the import the way the worker does and reads the summary.
func TestImportUploadLandsFileAndTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.callJSON(t, "POST", "/api/imports?source=import:crm", operatorSecret,
		strings.NewReader(sampleCSV), "Content-Type", "text/csv; charset=utf-8")
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/imports = %d %v, want 202", code, body)
	}
	id, _ := body["import_id"].(string)
	if body["task_id"] != "customers:import:"+id {
		t.Fatalf("POST /api/imports = %v, want task_id customers:import:<import_id>", body)
	}
	path := filepath.Join(b.dataDir, "imports", id+".csv")
	if got, err := os.ReadFile(path); err != nil || string(got) != sampleCSV {
		t.Fatalf("uploaded file %s = %q, %v; want the CSV sent", path, got, err)
	}
	info, err := b.inspector.GetTaskInfo(jobs.QueueBulk, "customers:import:"+id)
	if err != nil {
		t.Fatalf("task of the import: %v", err)
	}
	var args jobs.CustomersImportArgs
	if err := json.Unmarshal(info.Payload, &args); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jobs.CustomersImportArgs{ImportID: id, Path: path, Source: "import:crm"}, args); diff != "" {
		t.Errorf("task args (-want,+got):\n%s", diff)
	}

	code, body = b.callJSON(t, "GET", "/api/imports/"+id, viewerSecret, nil)
	task, _ := body["task"].(map[string]any)
	if code != http.StatusOK || body["state"] != "queued" || task["state"] != "pending" || body["summary"] != nil {
		t.Errorf("GET /api/imports/%s before the worker = %d %v; want state queued with the pending task", id, code, body)
	}

	if _, err := b.store.Import(t.Context(), customers.ImportRequest{ImportID: id, Path: path, Source: args.Source}); err != nil {
		t.Fatalf("run the import: %v", err)
	}
	code, body = b.callJSON(t, "GET", "/api/imports/"+id, viewerSecret, nil)
	sum, _ := body["summary"].(map[string]any)
	errs, _ := body["errors"].([]any)
	if code != http.StatusOK || body["state"] != "finished" || sum["imported"] != 1.0 || sum["rejected"] != 1.0 {
		t.Fatalf("GET /api/imports/%s after the import = %d %v; want finished, 1 imported, 1 rejected", id, code, body)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0].(string), "line 3: field email") {
		t.Errorf("row errors = %v, want one for line 3, field email", errs)
	}
}

// TestImportArchivedBeforeItStarted: an import whose task gave up (or an
// operator archived it) before the worker wrote anything is not "queued":
// nothing will run it.
func TestImportArchivedBeforeItStarted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.uploadSample(t, "/api/imports")
	if err := b.inspector.ArchiveTask(jobs.QueueBulk, "customers:import:"+id); err != nil {
		t.Fatalf("archive the import's task: %v", err)
	}
	code, body := b.callJSON(t, "GET", "/api/imports/"+id, viewerSecret, nil)
	task, _ := body["task"].(map[string]any)
	if code != http.StatusOK || body["state"] != "archived" || task["state"] != "archived" || body["summary"] != nil {
		t.Errorf("GET /api/imports/%s with its task archived = %d %v; want state archived", id, code, body)
	}
}

func TestImportUploadRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *web.Options) { o.MaxUploadBytes = 64 })
	tests := []struct {
		name, query, ctype, body string
		wantCode                 int
		wantField                string
	}{
		{"not CSV", "", "application/json", sampleCSV[:40], 415, ""},
		{"no content type", "", "", sampleCSV[:40], 415, ""},
		{"empty", "", "text/csv", "", 400, ""},
		{"over the cap", "", "text/csv", sampleCSV, 413, ""},
		{"source too long", "?source=" + strings.Repeat("s", 201), "text/csv", sampleCSV[:40], 400, "source"},
		{"modified not a time", "?modified=yesterday", "text/csv", sampleCSV[:40], 400, "modified"},
	}
	for _, tt := range tests {
		code, body := b.callJSON(t, "POST", "/api/imports"+tt.query, operatorSecret, strings.NewReader(tt.body), "Content-Type", tt.ctype)
		field, _ := body["field"].(string)
		if code != tt.wantCode || field != tt.wantField {
			t.Errorf("%s: POST /api/imports = %d field %q (%v), want %d field %q", tt.name, code, field, body, tt.wantCode, tt.wantField)
		}
	}
	b.noUploadLeft(t, "refused uploads")
}

// noUploadLeft checks that the uploads what refers to left no file and
// queued no job.
func (b *bundle) noUploadLeft(t *testing.T, what string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(b.dataDir, "imports"))
	if len(entries) != 0 {
		t.Errorf("%s left files: %v", what, entries)
	}
	if qs, _ := b.inspector.Queues(); len(qs) != 0 {
		t.Errorf("%s enqueued into %v", what, qs)
	}
}

func TestShowImportRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.callJSON(t, "GET", "/api/imports/20260101T000000Z-00000000", viewerSecret, nil)
	if msg, _ := body["error"].(string); code != http.StatusNotFound || !strings.Contains(msg, "20260101T000000Z-00000000") {
		t.Errorf("GET unknown import = %d %v, want 404 naming it", code, body)
	}
	code, body = b.callJSON(t, "GET", "/api/imports/..hidden", viewerSecret, nil)
	if code != http.StatusBadRequest || body["field"] != "id" {
		t.Errorf("GET invalid import id = %d %v, want 400 field id", code, body)
	}
}

// TestUploadStreamsLargeFile sends a file bigger than any buffer on the
// way, to check that it arrives whole.
func TestUploadStreamsLargeFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var csv bytes.Buffer
	csv.WriteString("id,name\n")
	for csv.Len() < 8<<20 {
		csv.WriteString("c-123456,Someone With A Long Enough Name\n")
	}
	code, body := b.callJSON(t, "POST", "/api/imports", operatorSecret, bytes.NewReader(csv.Bytes()), "Content-Type", "text/csv")
	if code != http.StatusAccepted {
		t.Fatalf("POST 8 MiB = %d %v", code, body)
	}
	got, err := os.ReadFile(filepath.Join(b.dataDir, "imports", body["import_id"].(string)+".csv"))
	if err != nil || !bytes.Equal(got, csv.Bytes()) {
		t.Errorf("stored file: %d bytes, %v; want the %d bytes sent", len(got), err, csv.Len())
	}
}

// TestUploadThatCannotBeStored: when the daemon cannot write the upload (a
// full disk; here a file size limit on the process), that is the daemon's
// 500, logged as an error, and the answer does not show its paths. Not
// parallel: the limit holds for the whole test process while it runs.
func TestUploadThatCannotBeStored(t *testing.T) {
	b := setup(t)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	small := old
	small.Cur = 64 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	body := strings.Repeat("c-1,Someone\n", 20<<10)
	code, answer := b.callJSON(t, "POST", "/api/imports", operatorSecret, strings.NewReader("id,name\n"+body), "Content-Type", "text/csv")
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	msg, _ := answer["error"].(string)
	if code != http.StatusInternalServerError || strings.Contains(msg, b.dataDir) {
		t.Errorf("POST /api/imports that cannot be stored = %d %q; want 500 without the daemon's paths", code, msg)
	}
	if !strings.Contains(b.logs.String(), `"level":"ERROR","msg":"import upload: write"`) {
		t.Errorf("the write failure is not logged as an error:\n%s", b.logs.String())
	}
	b.noUploadLeft(t, "the failed upload")
}

// TestUploadRefusedByItsLength: a body whose Content-Length is over the cap
// is refused at once, before the daemon waits for (and writes) a cap's
// worth of it. The body here stalls after a few bytes, as a slow link of a
// gigabyte would.
func TestUploadRefusedByItsLength(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *web.Options) { o.MaxUploadBytes = 1 << 20 })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("id,name\n"))
		<-ctx.Done() // the transport waits for its body: end it with the test
		pw.CloseWithError(ctx.Err())
	}()
	req, err := http.NewRequestWithContext(ctx, "POST", b.ts.URL+"/api/imports", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 2 << 20
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+operatorSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/imports with Content-Length over the cap: %v; want a 413 at once", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /api/imports with Content-Length over the cap = %d, want 413", resp.StatusCode)
	}
	b.noUploadLeft(t, "the refused upload")
}

// TestImportArchivedMidway: an import left "running" by a task that was
// then archived (a crash or panic on its last attempt, an operator in the
// monitor) is not running: nothing will continue it.
func TestImportArchivedMidway(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.uploadSample(t, "/api/imports")
	ctx, stop := context.WithCancel(t.Context())
	_, err := b.store.Import(ctx, customers.ImportRequest{ImportID: id, Path: filepath.Join(b.dataDir, "imports", id+".csv"),
		BatchSize: 1, Progress: func(customers.ImportSummary) { stop() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import = %v, want it stopped midway", err)
	}
	code, body := b.callJSON(t, "GET", "/api/imports/"+id, viewerSecret, nil)
	if code != http.StatusOK || body["state"] != "running" {
		t.Fatalf("GET /api/imports/%s stopped midway, task pending = %d %v; want running", id, code, body)
	}
	if err := b.inspector.ArchiveTask(jobs.QueueBulk, "customers:import:"+id); err != nil {
		t.Fatalf("archive the import's task: %v", err)
	}
	code, body = b.callJSON(t, "GET", "/api/imports/"+id, viewerSecret, nil)
	sum, _ := body["summary"].(map[string]any)
	if code != http.StatusOK || body["state"] != "archived" || sum["status"] != "running" {
		t.Errorf("GET /api/imports/%s stopped midway, task archived = %d %v; want state archived with the summary kept", id, code, body)
	}
}

// TestImportUploadKeepsNewerOptOut: an export written before a customer
// unsubscribed, uploaded after, must not opt them in again. The upload
// says when the file was written (?modified=, the CLI sends its file's
// time) and the import dates the file's consent cells from it; before,
// they were dated from the upload and outranked the opt-out.
func TestImportUploadKeepsNewerOptOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	if _, err := b.store.Upsert(ctx, customers.Customer{ID: "c-1", Email: "jana@example.com"}); err != nil {
		t.Fatal(err)
	}
	unsubscribed := time.Now().Add(-time.Hour)
	if _, err := b.store.SetConsent(ctx, "c-1", customers.ChannelEmail, customers.OptedOut, "unsubscribe:news", unsubscribed); err != nil {
		t.Fatal(err)
	}
	written := unsubscribed.Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	id := b.uploadSample(t, "/api/imports?source=crm&modified="+written)
	path := filepath.Join(b.dataDir, "imports", id+".csv")
	if _, err := b.store.Import(ctx, customers.ImportRequest{ImportID: id, Path: path, Source: "crm"}); err != nil {
		t.Fatalf("run the import: %v", err)
	}
	c, err := b.store.Get(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Consent[customers.ChannelEmail]; got.Status != customers.OptedOut || got.Source != "unsubscribe:news" {
		t.Errorf("e-mail consent after importing a file written before the opt-out = %+v, want the opt-out kept", got)
	}
}
