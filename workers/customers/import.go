package customers

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"
)

// ImportRequest says what Import reads.
type ImportRequest struct {
	// ImportID names the import: its summary and row errors are kept under
	// it, and a second Import with the same id resumes or reports it.
	ImportID string
	// Path is the CSV file.
	Path string
	// Source is the consent source of rows with consent columns; empty
	// means "import:<ImportID>".
	Source string
	// BatchSize is how many rows are written per pipelined batch and saved
	// per checkpoint. Zero means 500.
	BatchSize int
	// Progress, when set, is called after every checkpoint.
	Progress func(ImportSummary)
}

// ErrBadImport is wrapped by the error of an import that cannot succeed as
// it is: the file is missing or unreadable, or its header is wrong. The
// import is marked failed; running it again will not help.
var ErrBadImport = errors.New("bad import")

var importIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Import streams the CSV file req.Path into the store, upserting a customer
// per row, in batches, and keeps a summary under req.ImportID (see
// ImportSummary and ImportErrors).
//
// The file has a header row naming its columns, in any order and case: id
// (required), name, email, phone, language, timezone, tags (separated by
// ';'), email_consent and sms_consent (opted_in, opted_out, yes, no, or empty
// to leave consent unchanged; a consent cell is a decision made when the
// file was last written, or when the import started if that is earlier, so
// a newer stored decision such as an SMS STOP wins). A column the file has
// replaces the stored field, an empty cell clearing it; fields without a
// column are kept. A UTF-8 byte order mark is skipped. A bad row is
// rejected with "line N: field X: reason" and the import goes on.
//
// Progress is checkpointed after every batch: a run that stops (crash,
// cancelled context, Redis error) is resumed by the next Import of the same
// id from its last checkpoint, unless the file changed meanwhile, then it
// starts over. Rows are idempotent upserts, so importing a file twice
// changes nothing the second time. A finished import is only reported.
//
// A missing or unreadable file, a bad header, or a header or row longer
// than 1 MiB (the rows before it are imported) marks the import failed and
// returns an error wrapping ErrBadImport; other errors (Redis) are worth a
// retry.
func (s *Store) Import(ctx context.Context, req ImportRequest) (ImportSummary, error) {
	if !importIDPattern.MatchString(req.ImportID) {
		return ImportSummary{}, fmt.Errorf("import: %w: import id %.70q must be 1-64 letters, digits, '.', '_' or '-'", ErrBadImport, req.ImportID)
	}
	if req.Source == "" {
		req.Source = "import:" + req.ImportID
	}
	if req.BatchSize <= 0 {
		req.BatchSize = 500
	}
	st, err := s.loadImport(ctx, req.ImportID)
	if err != nil {
		return ImportSummary{}, err
	}
	if st.Status == ImportFinished {
		return st.ImportSummary, nil
	}
	f, err := os.Open(req.Path)
	if err != nil {
		return s.refuse(ctx, st, req, fmt.Errorf("open %s: %w", req.Path, unwrapPath(err)))
	}
	defer f.Close()
	cols, dataStart, err := s.prepare(f)
	if err != nil {
		return s.refuse(ctx, st, req, err)
	}
	if st, err = s.begin(ctx, st, req, f, dataStart); err != nil {
		return st.ImportSummary, err
	}
	run := importRun{store: s, req: req, st: st, cols: cols, file: f, decidedAt: st.decidedAt()}
	return run.rows(ctx)
}

// decidedAt is when the consent decisions of an import's file were made:
// when the file was last written, or when the import started if that is
// earlier (a clock off on the machine that wrote it). A decision the store
// holds that is newer, say an SMS STOP that arrived after the file was
// written or while the import runs, is kept.
func (st importState) decidedAt() time.Time {
	at := st.StartedAt
	if m := stamp(time.Unix(0, st.mtime)); st.mtime > 0 && m.Before(at) {
		at = m
	}
	return at
}

// prepare checks that f is a regular file and reads its header.
func (s *Store) prepare(f *os.File) (columns, int64, error) {
	info, err := f.Stat()
	if err != nil {
		return columns{}, 0, fmt.Errorf("stat %s: %w", f.Name(), unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		return columns{}, 0, fmt.Errorf("%s is not a regular file", f.Name())
	}
	cols, start, err := readHeader(f)
	if err != nil {
		return columns{}, 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return cols, start, nil
}

// unwrapPath drops the *PathError around err: our messages name the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// refuse marks the import failed with why and returns why wrapped in
// ErrBadImport (or the Redis error that kept it from being marked).
func (s *Store) refuse(ctx context.Context, st importState, req ImportRequest, why error) (ImportSummary, error) {
	st.File, st.Source = req.Path, req.Source
	if err := s.failImport(ctx, st, why.Error()); err != nil {
		return ImportSummary{}, err
	}
	st.Status, st.Error = ImportFailed, why.Error()
	return st.ImportSummary, fmt.Errorf("import %s: %w: %w", req.ImportID, ErrBadImport, why)
}

// begin resumes the import when a run of it stopped on this same file, and
// starts it afresh otherwise. It returns the state the rows start from.
func (s *Store) begin(ctx context.Context, st importState, req ImportRequest, f *os.File, dataStart int64) (importState, error) {
	info, err := f.Stat()
	if err != nil {
		return st, fmt.Errorf("import %s: stat %s: %w", req.ImportID, req.Path, err)
	}
	size, mtime := info.Size(), info.ModTime().UnixNano()
	st.run = newRunToken()
	if st.Status == ImportRunning && st.File == req.Path && st.size == size && st.mtime == mtime &&
		st.offset >= dataStart && st.offset <= size {
		if err := s.resumeImport(ctx, st); err != nil {
			return st, err
		}
		st.Resumes++
		return st, nil
	}
	st = importState{
		ImportSummary: ImportSummary{ImportID: req.ImportID, Status: ImportRunning, File: req.Path,
			Source: req.Source, StartedAt: s.clock()},
		offset: dataStart, size: size, mtime: mtime, run: st.run,
	}
	return st, s.startImport(ctx, st)
}

// importRun is one run of an import over the rows of its file.
type importRun struct {
	store *Store
	req   ImportRequest
	st    importState
	cols  columns
	file  *os.File
	// decidedAt dates the consent cells of the file (see decidedAt).
	decidedAt time.Time
}

// pendingRow is a row read but not yet written.
type pendingRow struct {
	line int64
	mut  mutation
	err  error // the row is rejected
}

// rows reads the data rows from the checkpoint on, writes them a batch at a
// time and checkpoints after each batch.
func (r *importRun) rows(ctx context.Context) (ImportSummary, error) {
	lineBase, err := linesBefore(r.file, r.st.offset)
	if err != nil {
		return r.st.ImportSummary, r.transient(err)
	}
	cr, lim, err := openRows(r.file, r.st.offset, len(r.cols.names))
	if err != nil {
		return r.st.ImportSummary, r.transient(err)
	}
	start := r.st.offset
	batch := make([]pendingRow, 0, r.req.BatchSize)
	for {
		rowStart := cr.InputOffset()
		lim.startRow(rowStart)
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errRowTooLong) {
			return r.tooLong(ctx, batch, start+rowStart)
		}
		row, err := r.row(cr, rec, err, lineBase)
		if err != nil {
			return r.st.ImportSummary, r.transient(err)
		}
		batch = append(batch, row)
		if len(batch) == cap(batch) {
			if err := r.flush(ctx, batch, start+cr.InputOffset(), ""); err != nil {
				return r.st.ImportSummary, err
			}
			batch = batch[:0]
		}
	}
	if err := r.flush(ctx, batch, start+cr.InputOffset(), ImportFinished); err != nil {
		return r.st.ImportSummary, err
	}
	return r.st.ImportSummary, nil
}

// tooLong ends the import at the row starting at offset, which is longer
// than any valid row: the rows before it are written, then the import is
// marked failed, naming the row's line.
func (r *importRun) tooLong(ctx context.Context, batch []pendingRow, offset int64) (ImportSummary, error) {
	if err := r.flush(ctx, batch, offset, ""); err != nil {
		return r.st.ImportSummary, err
	}
	lines, err := linesBefore(r.file, offset)
	if err != nil {
		return r.st.ImportSummary, r.transient(err)
	}
	why := fmt.Errorf("%s: line %d: the row is %w", r.req.Path, lines+1, errRowTooLong)
	return r.store.refuse(ctx, r.st, r.req, why)
}

// row turns what the csv reader returned into a pending row. The error is
// for a file that can no longer be read.
func (r *importRun) row(cr *csv.Reader, rec []string, readErr error, lineBase int64) (pendingRow, error) {
	var pe *csv.ParseError
	if readErr != nil && !errors.As(readErr, &pe) {
		return pendingRow{}, fmt.Errorf("read %s: %w", r.req.Path, readErr)
	}
	if pe != nil {
		line := lineBase + int64(pe.StartLine)
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return pendingRow{line: line, err: fmt.Errorf("has %d fields, the header has %d", len(rec), len(r.cols.names))}, nil
		}
		return pendingRow{line: line, err: fmt.Errorf("csv: line %d, column %d: %v", lineBase+int64(pe.Line), pe.Column, pe.Err)}, nil
	}
	first, _ := cr.FieldPos(0)
	line := lineBase + int64(first)
	mut, err := r.cols.rowMutation(rec, r.req.Source, r.decidedAt)
	return pendingRow{line: line, mut: mut, err: err}, nil
}

// transient wraps a failure worth a retry.
func (r *importRun) transient(err error) error {
	return fmt.Errorf("import %s: %w", r.req.ImportID, err)
}

// flush writes a batch, counts its outcomes and checkpoints the import at
// offset, the end of the batch's last row; with status set it ends the run.
func (r *importRun) flush(ctx context.Context, batch []pendingRow, offset int64, status string) error {
	if err := ctx.Err(); err != nil {
		return r.transient(err)
	}
	muts := make([]mutation, 0, len(batch))
	for _, row := range batch {
		if row.err == nil {
			muts = append(muts, row.mut)
		}
	}
	outs, err := r.store.apply(ctx, muts)
	if err != nil {
		return r.transient(err)
	}
	var rowErrs []string
	for _, row := range batch {
		err := row.err
		if err == nil {
			var out outcome
			out, outs = outs[0], outs[1:]
			err = out.Err
			r.count(out)
		}
		if err != nil {
			r.st.Rejected++
			rowErrs = append(rowErrs, fmt.Sprintf("line %d: %v", row.line, err))
		}
		r.st.Line = row.line
	}
	r.st.Rows += int64(len(batch))
	r.st.offset = offset
	if err := r.store.checkpoint(ctx, r.st, status, rowErrs); err != nil {
		return err
	}
	r.st.ProgressAt = r.store.clock()
	if status != "" {
		r.st.Status, r.st.FinishedAt = status, r.st.ProgressAt
	}
	if r.req.Progress != nil {
		r.req.Progress(r.st.ImportSummary)
	}
	return nil
}

// count adds a written row's outcome to the counters.
func (r *importRun) count(out outcome) {
	switch {
	case out.Err != nil:
	case out.Created:
		r.st.Imported++
	case out.Changed:
		r.st.Updated++
	default:
		r.st.Unchanged++
	}
}
