package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// importErrorsShown is how many row errors GET /api/imports/{id} returns.
const importErrorsShown = 100

func (s *Server) registerImports() {
	s.api("POST /api/imports", config.RoleOperator, s.uploadImport)
	s.api("GET /api/imports/{id}", config.RoleViewer, s.showImport)
}

// importsDir is where uploads are stored, one <import id>.csv each.
func (s *Server) importsDir() string { return filepath.Join(s.dataDir, "imports") }

// newImportID returns a fresh import ID: UTC time, then random hex, so that
// IDs sort by upload time.
func (s *Server) newImportID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return s.now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// uploadImport stores the CSV body under DataDir/imports and enqueues its
// customers:import task. The import itself runs in a worker.
func (s *Server) uploadImport(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" {
		writeError(w, http.StatusUnsupportedMediaType, "request body: Content-Type must be text/csv, got %q", r.Header.Get("Content-Type"))
		return
	}
	id := s.newImportID()
	args := jobs.CustomersImportArgs{ImportID: id, Path: filepath.Join(s.importsDir(), id+".csv"), Source: r.URL.Query().Get("source")}
	if err := args.Validate(); err != nil { // before reading a gigabyte
		writeDecodeError(w, err)
		return
	}
	if r.ContentLength > s.maxUpload { // not after a gigabyte of it
		writeError(w, http.StatusRequestEntityTooLarge, "request body: larger than %d bytes", s.maxUpload)
		return
	}
	modified, err := uploadModified(r, s.now())
	if err != nil {
		writeFieldError(w, "modified", err.Error())
		return
	}
	if err := s.storeUpload(w, r, args.Path, modified); err != nil {
		return
	}
	info, err := s.enqueueArgs(r, args)
	if err != nil {
		_ = os.Remove(args.Path) // nothing will read it
		s.log.ErrorContext(r.Context(), "import enqueue failed", "import_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "import %s: the queue is not reachable; try again", id)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"import_id": id, "task_id": info.ID})
}

// uploadModified reads ?modified=, when the uploaded file was last written
// on the client (RFC 3339; the CLI sends its file's). The import dates the
// file's consent cells from the stored file's time, which for an upload
// would otherwise be the upload's: an old export uploaded now would then
// outrank an opt-out recorded after the export was written. A time in the
// future counts as now; zero means none was given.
func uploadModified(r *http.Request, now time.Time) (time.Time, error) {
	v := r.URL.Query().Get("modified")
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("modified: want an RFC 3339 time such as 2026-12-01T18:53:24Z, got %.40q", v)
	}
	if t.After(now) {
		t = now
	}
	return t, nil
}

// storeUpload streams the body to a temporary file next to path and renames
// it into place once complete and synced, dated modified unless that is
// zero. On failure it answers the request itself and returns the error.
func (s *Server) storeUpload(w http.ResponseWriter, r *http.Request, path string, modified time.Time) error {
	fail := func(status int, err error) error {
		writeError(w, status, "%v", err)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		s.log.ErrorContext(r.Context(), "import upload: create dir", "err", err)
		return fail(http.StatusInternalServerError, errors.New("import upload: cannot store the file"))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".upload-*.tmp")
	if err != nil {
		s.log.ErrorContext(r.Context(), "import upload: create file", "err", err)
		return fail(http.StatusInternalServerError, errors.New("import upload: cannot store the file"))
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	body := &readSide{r: http.MaxBytesReader(w, r.Body, s.maxUpload)}
	n, err := io.Copy(tmp, body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(body.err, &tooBig):
		return fail(http.StatusRequestEntityTooLarge, fmt.Errorf("request body: larger than %d bytes", s.maxUpload))
	case body.err != nil:
		s.log.WarnContext(r.Context(), "import upload: read", "err", body.err)
		return fail(http.StatusBadRequest, fmt.Errorf("request body: %w", body.err))
	case err != nil: // the disk, not the client: a full disk is the daemon's problem
		s.log.ErrorContext(r.Context(), "import upload: write", "err", err)
		return fail(http.StatusInternalServerError, errors.New("import upload: cannot store the file"))
	case n == 0:
		return fail(http.StatusBadRequest, errors.New("request body: empty; send the CSV file"))
	}
	if !modified.IsZero() {
		if err := os.Chtimes(tmp.Name(), modified, modified); err != nil {
			s.log.ErrorContext(r.Context(), "import upload: set the file's time", "err", err)
			return fail(http.StatusInternalServerError, errors.New("import upload: cannot store the file"))
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		s.log.ErrorContext(r.Context(), "import upload: rename", "err", err)
		return fail(http.StatusInternalServerError, errors.New("import upload: cannot store the file"))
	}
	return nil
}

// readSide remembers the error of the reader it wraps (other than EOF), so
// that a failed copy tells the client's side from the disk's.
type readSide struct {
	r   io.Reader
	err error
}

func (rs *readSide) Read(p []byte) (int, error) {
	n, err := rs.r.Read(p)
	if err != nil && err != io.EOF {
		rs.err = err
	}
	return n, err
}

// validImportID reports whether id is an import ID the jobs contract accepts.
func validImportID(id string) bool {
	return jobs.CustomersImportArgs{ImportID: id, Path: "/"}.Validate() == nil
}

// importView is an import as GET /api/imports/{id} shows it. Before the
// worker starts, Summary is nil and State is "queued". State is "archived"
// when its task was archived (it gave up, or an operator archived it)
// before the import finished: then nothing will run it any more.
type importView struct {
	ImportID string                   `json:"import_id"`
	State    string                   `json:"state"`
	Summary  *customers.ImportSummary `json:"summary,omitempty"`
	Errors   []string                 `json:"errors"`
	Task     *taskView                `json:"task,omitempty"`
}

func (s *Server) showImport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validImportID(id) {
		writeFieldError(w, "id", fmt.Sprintf("import %q: not a valid import ID", id))
		return
	}
	v, err := s.importStatus(r, id)
	switch {
	case errors.Is(err, customers.ErrNotFound):
		writeError(w, http.StatusNotFound, "import %q: not found", id)
	case err != nil:
		s.storeError(w, r, "import "+id, err)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// importStatus reads an import's summary, first row errors and task.
func (s *Server) importStatus(r *http.Request, id string) (importView, error) {
	v := importView{ImportID: id, Errors: []string{}}
	task, err := s.importTask(id)
	if err != nil {
		return v, err
	}
	v.Task = task
	sum, err := s.customers.ImportSummary(r.Context(), id)
	if errors.Is(err, customers.ErrNotFound) {
		if task == nil {
			return v, err
		}
		v.State = "queued"
		if task.State == asynq.TaskStateArchived.String() {
			v.State = "archived"
		}
		return v, nil
	}
	if err != nil {
		return v, err
	}
	v.Summary, v.State = &sum, sum.Status
	if sum.Status == customers.ImportRunning && task != nil && task.State == asynq.TaskStateArchived.String() {
		v.State = "archived" // the summary says how far it got
	}
	errs, err := s.customers.ImportErrors(r.Context(), id, importErrorsShown)
	if err != nil {
		return v, err
	}
	v.Errors = append(v.Errors, errs...)
	return v, nil
}

// importTask returns the customers:import task of an import, or nil when
// asynq no longer (or never) had it.
func (s *Server) importTask(id string) (*taskView, error) {
	spec, _ := jobs.Lookup(jobs.KindCustomersImport)
	t, err := s.inspector.GetTaskInfo(spec.Queue, jobs.CustomersImportArgs{ImportID: id}.TaskID())
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := newTaskView(t)
	return &v, nil
}
