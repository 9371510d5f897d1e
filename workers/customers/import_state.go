package customers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The statuses of an import.
const (
	ImportRunning  = "running"
	ImportFinished = "finished"
	ImportFailed   = "failed"
)

// maxImportErrors is how many rejected rows an import keeps.
const maxImportErrors = 1000

// ImportSummary is the progress and outcome of an import, kept in Redis
// under its import id.
type ImportSummary struct {
	ImportID   string    `json:"import_id"`
	Status     string    `json:"status"` // running, finished or failed
	File       string    `json:"file"`
	Source     string    `json:"source"` // consent source of its rows
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	ProgressAt time.Time `json:"progress_at,omitzero"` // last checkpoint
	Rows       int64     `json:"rows"`                 // data rows read so far
	Imported   int64     `json:"imported"`             // customers created
	Updated    int64     `json:"updated"`              // customers changed
	Unchanged  int64     `json:"unchanged"`            // rows that changed nothing
	Rejected   int64     `json:"rejected"`             // bad rows; see ImportErrors
	Line       int64     `json:"line"`                 // line of the last row checkpointed
	Resumes    int64     `json:"resumes"`              // times a retried task resumed it
	Error      string    `json:"error,omitempty"`      // why it failed
}

// importState is the summary plus what a resumed run needs.
type importState struct {
	ImportSummary
	offset int64 // byte offset of the first row not yet checkpointed
	size   int64 // size and modification time of the file when it started
	mtime  int64
	run    string // token of the run that owns it
}

// ImportSummary returns the summary of import id, or ErrNotFound.
func (s *Store) ImportSummary(ctx context.Context, id string) (ImportSummary, error) {
	st, err := s.loadImport(ctx, id)
	if err != nil {
		return ImportSummary{}, err
	}
	if st.Status == "" {
		return ImportSummary{}, fmt.Errorf("import %.70q: %w", id, ErrNotFound)
	}
	return st.ImportSummary, nil
}

// ImportErrors returns up to limit of the rows import id rejected, in file
// order, as "line N: field X: reason" (at most the first 1000 are kept).
// limit <= 0 means all that are kept.
func (s *Store) ImportErrors(ctx context.Context, id string, limit int) ([]string, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	out, err := s.rdb.LRange(ctx, s.keys.importErrors(id), 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("read errors of import %s: %w", id, err)
	}
	return out, nil
}

func (s *Store) loadImport(ctx context.Context, id string) (importState, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.importState(id)).Result()
	if err != nil {
		return importState{}, fmt.Errorf("read import %s: %w", id, err)
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	ms := func(k string) time.Time {
		if m[k] == "" {
			return time.Time{}
		}
		return time.UnixMilli(num(k)).UTC()
	}
	return importState{
		ImportSummary: ImportSummary{ImportID: id, Status: m["status"], File: m["file"], Source: m["source"],
			StartedAt: ms("started"), FinishedAt: ms("finished"), ProgressAt: ms("progress"),
			Rows: num("rows"), Imported: num("imported"), Updated: num("updated"), Unchanged: num("unchanged"),
			Rejected: num("rejected"), Line: num("line"), Resumes: num("resumes"), Error: m["error"]},
		offset: num("offset"), size: num("size"), mtime: num("mtime"), run: m["run"],
	}, nil
}

// startImport resets import st.ImportID to a fresh run owned by st.run.
func (s *Store) startImport(ctx context.Context, st importState) error {
	k := s.keys.importState(st.ImportID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, k, s.keys.importErrors(st.ImportID))
		p.HSet(ctx, k, "status", ImportRunning, "file", st.File, "source", st.Source,
			"started", st.StartedAt.UnixMilli(), "size", st.size, "mtime", st.mtime, "run", st.run,
			"offset", st.offset, "rows", 0, "imported", 0, "updated", 0, "unchanged", 0, "rejected", 0,
			"line", 0, "resumes", 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("start import %s: %w", st.ImportID, err)
	}
	return nil
}

// resumeImport hands import st.ImportID over to the run st.run.
func (s *Store) resumeImport(ctx context.Context, st importState) error {
	k := s.keys.importState(st.ImportID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "run", st.run)
		p.HIncrBy(ctx, k, "resumes", 1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("resume import %s: %w", st.ImportID, err)
	}
	return nil
}

// checkpoint saves st's progress and appends rowErrs; with status set it
// also ends the run.
func (s *Store) checkpoint(ctx context.Context, st importState, status string, rowErrs []string) error {
	now := s.clock().UnixMilli()
	pairs := []any{"rows", st.Rows, "imported", st.Imported, "updated", st.Updated, "unchanged", st.Unchanged,
		"rejected", st.Rejected, "line", st.Line, "offset", st.offset, "progress", now}
	if status != "" {
		pairs = append(pairs, "status", status, "finished", now)
	}
	args := append([]any{st.run, maxImportErrors, len(pairs) / 2}, pairs...)
	for _, e := range rowErrs {
		args = append(args, e)
	}
	cmds, err := s.runScripts(ctx, []scriptCall{{checkpointScript,
		[]string{s.keys.importState(st.ImportID), s.keys.importErrors(st.ImportID)}, args}})
	if err == nil {
		err = cmds[0].Err()
	}
	if err != nil {
		if redis.HasErrorPrefix(err, "LOST") {
			return fmt.Errorf("import %s: %w", st.ImportID, ErrImportTakenOver)
		}
		return fmt.Errorf("save progress of import %s: %w", st.ImportID, err)
	}
	return nil
}

// ErrImportTakenOver is returned by a run of an import that another run of
// the same import (a redelivered task) has taken over.
var ErrImportTakenOver = errors.New("import taken over by another run")

// FailImport marks import id failed with reason, for an operator to see:
// the task that ran it gave up. It does nothing to a finished import.
func (s *Store) FailImport(ctx context.Context, id, reason string) error {
	st, err := s.loadImport(ctx, id)
	if err != nil {
		return err
	}
	if st.Status == ImportFinished {
		return nil
	}
	return s.failImport(ctx, st, reason)
}

// failImport marks the import st failed with reason.
func (s *Store) failImport(ctx context.Context, st importState, reason string) error {
	now := s.clock()
	if st.StartedAt.IsZero() {
		st.StartedAt = now
	}
	err := s.rdb.HSet(ctx, s.keys.importState(st.ImportID), "status", ImportFailed, "error", reason,
		"file", st.File, "source", st.Source, "started", st.StartedAt.UnixMilli(), "finished", now.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("mark import %s failed: %w", st.ImportID, err)
	}
	return nil
}

func newRunToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
