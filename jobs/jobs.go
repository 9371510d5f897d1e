// Package jobs is the contract between everything that enqueues work (the
// HTTP API, the CLI through it, the scheduler) and the workers that do it.
//
// Every job kind is a "family:action" string, a wire contract that is never
// renamed in place. Each kind has one args type with a Validate method and a
// Spec in the catalogue that fixes its queue, retry budget, timeout and
// retention. NewTask is the only way a task is built.
package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// Queue names. Priorities are weights for asynq's weighted scheduling.
const (
	QueueCritical  = "critical"  // inbound messages: a customer is waiting
	QueueDefault   = "default"   // everyday back-office work
	QueueCampaigns = "campaigns" // campaign launches and chunks
	QueueBulk      = "bulk"      // imports, archives: big and patient
)

// Queues returns the queue weights the asynq server is configured with.
func Queues() map[string]int {
	return map[string]int{QueueCritical: 6, QueueDefault: 3, QueueCampaigns: 2, QueueBulk: 1}
}

// Args is implemented by the args type of every job kind.
type Args interface {
	// Kind returns the job kind, e.g. "customers:import".
	Kind() string
	// Validate reports the first invalid field as a *FieldError.
	Validate() error
}

// Keyed is implemented by args whose task ID is derived from their content,
// so that enqueueing the same work twice yields asynq.ErrTaskIDConflict
// instead of a second task.
type Keyed interface {
	TaskID() string
}

// Spec describes one job kind: where it runs and how it is retried.
type Spec struct {
	Kind      string
	Queue     string
	MaxRetry  int
	Timeout   time.Duration
	Retention time.Duration // how long a completed task stays visible
	Summary   string        // one line for the README and `backoffice jobs kinds`
	// Internal kinds are queued by the daemon itself only: a signed
	// webhook (an incoming SMS, a delivery report) or a campaign launch
	// (its chunks). The API and schedule files refuse them, so nobody can
	// file an SMS a customer never sent or a delivery Twilio never reported.
	Internal bool
	newArgs  func() Args
}

// FieldError names the field of an args payload that is invalid.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %s: %s", e.Field, e.Msg) }

// Errorf returns a *FieldError for field.
func Errorf(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// ErrUnknownKind is returned for a kind that is not in the catalogue.
var ErrUnknownKind = errors.New("unknown job kind")

// Lookup returns the spec of kind.
func Lookup(kind string) (Spec, bool) {
	for _, s := range catalogue() {
		if s.Kind == kind {
			return s, true
		}
	}
	return Spec{}, false
}

// Kinds returns every spec of the catalogue, sorted by kind.
func Kinds() []Spec {
	specs := catalogue()
	sort.Slice(specs, func(i, j int) bool { return specs[i].Kind < specs[j].Kind })
	return specs
}

// Decode parses a JSON payload for kind strictly (unknown fields are an
// error) and validates it. Errors name the offending field.
func Decode(kind string, payload []byte) (Args, error) {
	spec, ok := Lookup(kind)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	a := spec.newArgs()
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(a); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, describeJSONError(err))
	}
	// dec.More is false before a stray '}' or ']': only the end will do
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: trailing data after the JSON object", kind)
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return a, nil
}

// describeJSONError turns encoding/json's errors into ones that name the field.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &FieldError{Field: typeErr.Field, Msg: fmt.Sprintf("must be %s, not %s", typeErr.Type, typeErr.Value)}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return &FieldError{Field: strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`), Msg: "unknown field"}
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// NewTask validates args and builds its task with the options of its spec:
// queue, retries, timeout, retention and, for Keyed args, the task ID. opts
// are applied after them and win.
func NewTask(a Args, opts ...asynq.Option) (*asynq.Task, error) {
	spec, ok := Lookup(a.Kind())
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, a.Kind())
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Kind, err)
	}
	payload, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("%s: encode args: %w", spec.Kind, err)
	}
	base := []asynq.Option{asynq.Queue(spec.Queue), asynq.MaxRetry(spec.MaxRetry), asynq.Timeout(spec.Timeout)}
	if spec.Retention > 0 {
		base = append(base, asynq.Retention(spec.Retention))
	}
	if k, ok := a.(Keyed); ok {
		base = append(base, asynq.TaskID(k.TaskID()))
	}
	return asynq.NewTask(spec.Kind, payload, append(base, opts...)...), nil
}

// Unmarshal decodes a task's payload into args (whose type must match the
// task's kind) and validates it. Workers wrap its error in asynq.SkipRetry:
// a payload that does not decode today will not decode tomorrow.
func Unmarshal(t *asynq.Task, a Args) error {
	if t.Type() != a.Kind() {
		return fmt.Errorf("task kind %q decoded as %q", t.Type(), a.Kind())
	}
	if err := json.Unmarshal(t.Payload(), a); err != nil {
		return fmt.Errorf("%s: decode payload: %w", t.Type(), err)
	}
	if err := a.Validate(); err != nil {
		return fmt.Errorf("%s: %w", t.Type(), err)
	}
	return nil
}

func spec[A any, PA interface {
	*A
	Args
}](s Spec) Spec {
	s.newArgs = func() Args { return PA(new(A)) }
	return s
}
