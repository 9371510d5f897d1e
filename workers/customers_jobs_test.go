package workers

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/redistest"
)

func writeImportFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCustomersImportOnRealServer(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	store := customers.New(rdb, "bo:", customers.Options{DefaultRegion: "SK"})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 2, Queues: jobs.Queues(), LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	Register(mux, Deps{Redis: rdb, KeyPrefix: "bo:", Logger: slog.New(slog.DiscardHandler), Customers: store})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	client := asynq.NewClientFromRedisClient(rdb)
	inspector := asynq.NewInspectorFromRedisClient(rdb)

	var csv strings.Builder
	csv.WriteString("id,email,phone,sms_consent\n")
	for i := range 1200 {
		fmt.Fprintf(&csv, "c-%d,c%d@example.sk,0905%06d,yes\n", i, i, i)
	}
	csv.WriteString("c-bad,nope,,\n")
	good := jobs.CustomersImportArgs{ImportID: "crm-1", Path: writeImportFile(t, csv.String()), Source: "crm"}
	bad := jobs.CustomersImportArgs{ImportID: "crm-2", Path: filepath.Join(t.TempDir(), "missing.csv")}
	for _, a := range []jobs.CustomersImportArgs{good, bad} {
		task, err := jobs.NewTask(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.EnqueueContext(t.Context(), task); err != nil {
			t.Fatalf("enqueue %s: %v", a.ImportID, err)
		}
	}
	sum := waitImport(t, store, "crm-1")
	if sum.Status != customers.ImportFinished || sum.Rows != 1201 || sum.Imported != 1200 || sum.Rejected != 1 {
		t.Fatalf("import crm-1 = %+v; want finished, 1201 rows, 1200 imported, 1 rejected", sum)
	}
	c, err := store.ByPhone(t.Context(), "0905000042")
	if err != nil || c.ID != "c-42" || c.Consent[customers.ChannelSMS].Source != "crm" {
		t.Fatalf("ByPhone after import = %+v, %v", c, err)
	}
	failed := waitImport(t, store, "crm-2")
	if failed.Status != customers.ImportFailed || failed.Error == "" {
		t.Fatalf("import crm-2 = %+v; want failed with a reason", failed)
	}
	// The missing file was not retried: the task went straight to the archive.
	waitFor(t, "the failed import task to be archived", func() bool {
		ti, err := inspector.GetTaskInfo(jobs.QueueBulk, bad.TaskID())
		return err == nil && ti.State == asynq.TaskStateArchived && ti.Retried == 0
	})
	// The same import id cannot be queued twice while its task is kept.
	task, _ := jobs.NewTask(good)
	if _, err := client.EnqueueContext(t.Context(), task); !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Fatalf("enqueue crm-1 again: error = %v, want asynq.ErrTaskIDConflict", err)
	}
}

// waitImport polls an import until it is no longer running.
func waitImport(t *testing.T, store *customers.Store, id string) customers.ImportSummary {
	t.Helper()
	var sum customers.ImportSummary
	waitFor(t, "import "+id+" to end", func() bool {
		var err error
		sum, err = store.ImportSummary(t.Context(), id)
		return err == nil && sum.Status != customers.ImportRunning
	})
	return sum
}

func TestCustomersImportProcessTask(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := customers.New(rdb, "bo:", customers.Options{})
	h := &customersImport{store: store}
	path := writeImportFile(t, "id,name\nc-1,Jana\n")

	task, err := jobs.NewTask(jobs.CustomersImportArgs{ImportID: "one", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(t.Context(), task); err != nil {
		t.Fatalf("ProcessTask(good file): %v", err)
	}
	if c, err := store.Get(t.Context(), "c-1"); err != nil || c.Name != "Jana" {
		t.Fatalf("Get(c-1) after the task = %+v, %v", c, err)
	}
	tests := []struct {
		name      string
		task      *asynq.Task
		skipRetry bool
	}{
		{"undecodable payload", asynq.NewTask(jobs.KindCustomersImport, []byte(`{"import_id":"x","path":"relative.csv"}`)), true},
		{"bad header", mustTask(t, jobs.CustomersImportArgs{ImportID: "hdr", Path: writeImportFile(t, "name,shoe_size\n")}), true},
	}
	for _, tt := range tests {
		err := h.ProcessTask(t.Context(), tt.task)
		if err == nil || errors.Is(err, asynq.SkipRetry) != tt.skipRetry {
			t.Errorf("%s: ProcessTask error = %v; want one with SkipRetry %v", tt.name, err, tt.skipRetry)
		}
	}
	// Redis down: a transient error, worth a retry.
	srv.Stop()
	err = h.ProcessTask(t.Context(), mustTask(t, jobs.CustomersImportArgs{ImportID: "two", Path: path}))
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask with Redis down: error = %v; want a retryable error", err)
	}
	if err := (&customersImport{}).ProcessTask(t.Context(), task); !errors.Is(err, errNoCustomers) {
		t.Fatalf("ProcessTask without a store: error = %v, want errNoCustomers", err)
	}
}

func mustTask(t *testing.T, a jobs.Args) *asynq.Task {
	t.Helper()
	task, err := jobs.NewTask(a)
	if err != nil {
		t.Fatal(err)
	}
	return task
}
