package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/cmd/internal/config"
	"github.com/shopworks/backoffice/jobs"
)

// maxArgsBytes caps the JSON body of POST /api/jobs/{kind}.
const maxArgsBytes = 1 << 20

func (s *Server) registerJobs() {
	s.api("POST /api/jobs/{kind}", config.RoleOperator, s.enqueueJob)
	s.api("GET /api/jobs/{id}", config.RoleViewer, s.showJob)
	s.api("GET /api/kinds", config.RoleViewer, s.listKinds)
}

// enqueued is the answer to a successful enqueue.
type enqueued struct {
	TaskID string `json:"task_id"`
	Kind   string `json:"kind"`
	Queue  string `json:"queue"`
}

// enqueueJob decodes and validates the args of a kind and enqueues its task.
// Internal kinds (an incoming SMS, a delivery report, a campaign chunk) are
// refused: only a signed webhook or a launch queues them.
func (s *Server) enqueueJob(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	if spec, ok := jobs.Lookup(kind); ok && spec.Internal {
		writeError(w, http.StatusForbidden, "job kind %s is queued by the daemon itself (a signed webhook or a campaign launch), not through the API", kind)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxArgsBytes))
	if err != nil {
		writeBodyError(w, err, maxArgsBytes)
		return
	}
	args, err := jobs.Decode(kind, body)
	if err != nil {
		writeDecodeError(w, err)
		return
	}
	s.enqueue(w, r, args)
}

// enqueue builds the task of args, enqueues it and answers 202, or 409 when
// a task with its deterministic ID exists already.
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request, args jobs.Args) {
	info, err := s.enqueueArgs(r, args)
	var conflict *taskConflict
	switch {
	case errors.As(err, &conflict):
		writeJSON(w, http.StatusConflict, map[string]string{
			"error": "a task with this ID exists already", "task_id": conflict.id, "kind": args.Kind(),
		})
	case err != nil:
		s.log.ErrorContext(r.Context(), "enqueue failed", "kind", args.Kind(), "err", err)
		writeError(w, http.StatusServiceUnavailable, "enqueue %s: the queue is not reachable; try again", args.Kind())
	default:
		writeJSON(w, http.StatusAccepted, enqueued{TaskID: info.ID, Kind: info.Type, Queue: info.Queue})
	}
}

// taskConflict is returned by enqueueArgs for asynq.ErrTaskIDConflict.
type taskConflict struct{ id string }

func (e *taskConflict) Error() string { return "task " + e.id + " exists already" }

// enqueueArgs enqueues the task of args and logs who did it.
func (s *Server) enqueueArgs(r *http.Request, args jobs.Args) (*asynq.TaskInfo, error) {
	task, err := jobs.NewTask(args)
	if err != nil {
		return nil, err
	}
	info, err := s.client.EnqueueContext(r.Context(), task)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		id := ""
		if k, ok := args.(jobs.Keyed); ok {
			id = k.TaskID()
		}
		return nil, &taskConflict{id: id}
	}
	if err != nil {
		return nil, err
	}
	c, _ := callerOf(r.Context())
	s.log.InfoContext(r.Context(), "job enqueued", "kind", info.Type, "task_id", info.ID, "queue", info.Queue, "caller", c.Name)
	return info, nil
}

// writeDecodeError answers a jobs.Decode error: 404 for an unknown kind,
// else 400 naming the field when there is one.
func writeDecodeError(w http.ResponseWriter, err error) {
	if errors.Is(err, jobs.ErrUnknownKind) {
		writeError(w, http.StatusNotFound, "%v", err)
		return
	}
	var fe *jobs.FieldError
	if errors.As(err, &fe) {
		writeFieldError(w, fe.Field, err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, "%v", err)
}

// writeBodyError answers a failed body read: 413 over the cap, else 400.
func writeBodyError(w http.ResponseWriter, err error, limit int64) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "request body: larger than %d bytes", limit)
		return
	}
	writeError(w, http.StatusBadRequest, "request body: %v", err)
}

// taskView is a task as GET /api/jobs/{id} shows it.
type taskView struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	Queue         string          `json:"queue"`
	State         string          `json:"state"`
	Retried       int             `json:"retried"`
	MaxRetry      int             `json:"max_retry"`
	LastError     string          `json:"last_error,omitempty"`
	LastFailedAt  *time.Time      `json:"last_failed_at,omitempty"`
	NextProcessAt *time.Time      `json:"next_process_at,omitempty"`
	CompletedAt   *time.Time      `json:"completed_at,omitempty"`
	Payload       json.RawMessage `json:"payload"`
	// Result is what the task wrote as its result (campaign:test and
	// campaign:dryrun write JSON reports); absent when it wrote none.
	Result json.RawMessage `json:"result,omitempty"`
}

func newTaskView(t *asynq.TaskInfo) taskView {
	payload := json.RawMessage(t.Payload)
	if !json.Valid(payload) {
		payload, _ = json.Marshal(string(t.Payload))
	}
	var result json.RawMessage
	if len(t.Result) > 0 {
		if result = json.RawMessage(t.Result); !json.Valid(result) {
			result, _ = json.Marshal(string(t.Result))
		}
	}
	return taskView{
		ID: t.ID, Kind: t.Type, Queue: t.Queue, State: t.State.String(), Retried: t.Retried, MaxRetry: t.MaxRetry,
		LastError: t.LastErr, LastFailedAt: timeOrNil(t.LastFailedAt), NextProcessAt: timeOrNil(t.NextProcessAt),
		CompletedAt: timeOrNil(t.CompletedAt), Payload: payload, Result: result,
	}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *Server) showJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := s.findTask(id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		writeError(w, http.StatusNotFound, "task %q: not found in any queue", id)
	case err != nil:
		s.log.ErrorContext(r.Context(), "task lookup failed", "task_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "task %q: the queue is not reachable; try again", id)
	default:
		writeJSON(w, http.StatusOK, newTaskView(t))
	}
}

// findTask looks for the task id in every queue of the catalogue. It
// returns an error wrapping asynq.ErrTaskNotFound when no queue has it.
func (s *Server) findTask(id string) (*asynq.TaskInfo, error) {
	queues := make([]string, 0, len(jobs.Queues()))
	for q := range jobs.Queues() {
		queues = append(queues, q)
	}
	slices.Sort(queues)
	for _, q := range queues {
		t, err := s.inspector.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		return t, err
	}
	return nil, asynq.ErrTaskNotFound
}

// kindView is one entry of GET /api/kinds.
type kindView struct {
	Kind      string `json:"kind"`
	Queue     string `json:"queue"`
	MaxRetry  int    `json:"max_retry"`
	Timeout   string `json:"timeout"`
	Retention string `json:"retention,omitempty"`
	Summary   string `json:"summary"`
	Internal  bool   `json:"internal,omitempty"` // queued by the daemon only
}

func (s *Server) listKinds(w http.ResponseWriter, r *http.Request) {
	var out []kindView
	for _, k := range jobs.Kinds() {
		v := kindView{Kind: k.Kind, Queue: k.Queue, MaxRetry: k.MaxRetry, Timeout: k.Timeout.String(), Summary: k.Summary, Internal: k.Internal}
		if k.Retention > 0 {
			v.Retention = k.Retention.String()
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"kinds": out})
}
