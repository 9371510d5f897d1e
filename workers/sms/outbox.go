package sms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Outbox is the SMS sink used when no Twilio credentials are configured:
// each message becomes one JSON line appended to <dir>/sms.jsonl.
//
// Each Send opens the file with O_APPEND, writes its line in one write
// call (so lines from concurrent senders and daemons never interleave) and
// fsyncs before returning: a message reported sent survives a crash. The
// SID is derived from Ref, so a retried message gets the same SID and
// readers can drop the duplicate line.
type Outbox struct {
	path string
	now  func() time.Time
	mu   sync.Mutex // one writer at a time within the process
}

// OutboxLine is one line of sms.jsonl.
type OutboxLine struct {
	SID            string    `json:"sid"`
	Ref            string    `json:"ref"`
	To             string    `json:"to"`
	Body           string    `json:"body"`
	StatusCallback string    `json:"status_callback,omitempty"`
	Status         string    `json:"status"`
	DateCreated    time.Time `json:"date_created"`
}

// OutboxFile is the name of the outbox file inside its directory.
const OutboxFile = "sms.jsonl"

// NewOutbox returns an outbox appending to <dir>/sms.jsonl, creating dir.
func NewOutbox(dir string) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("sms: outbox dir: required")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sms: outbox dir: %w", err)
	}
	return &Outbox{path: filepath.Join(dir, OutboxFile), now: time.Now}, nil
}

// OutboxSID returns the SID the outbox gives the message with ref: "OB"
// and the first 32 hex digits of SHA-256(ref).
func OutboxSID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "OB" + hex.EncodeToString(sum[:])[:32]
}

// Send appends m as one line. Ref is required: it is the message's
// identity.
func (o *Outbox) Send(ctx context.Context, m Message) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err := m.validate(); err != nil {
		return Result{}, err
	}
	if m.Ref == "" {
		return Result{}, outboundInvalid("Ref", "required by the outbox")
	}
	line := OutboxLine{
		SID: OutboxSID(m.Ref), Ref: m.Ref, To: m.To, Body: m.Body,
		StatusCallback: m.StatusCallback, Status: "queued", DateCreated: o.now().UTC(),
	}
	b, err := json.Marshal(line)
	if err != nil {
		return Result{}, fmt.Errorf("sms: outbox: %w", err)
	}
	if err := o.appendLine(append(b, '\n')); err != nil {
		return Result{}, err
	}
	return Result{SID: line.SID, Status: line.Status}, nil
}

func (o *Outbox) appendLine(b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sms: outbox: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("sms: outbox: append %s: %w", OutboxFile, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sms: outbox: sync %s: %w", OutboxFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sms: outbox: close %s: %w", OutboxFile, err)
	}
	return nil
}
