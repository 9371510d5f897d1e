package customers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// maxRowBytes caps the header and each row of an import file. A valid row
// is a few KiB at most; the csv reader holds a whole row in memory (several
// times over), so a longer one is refused before it is read whole.
const maxRowBytes = 1 << 20

// errRowTooLong is returned by a rowLimiter for a row over maxRowBytes.
var errRowTooLong = errors.New("longer than 1 MiB")

// rowLimiter reads r, but no further than maxRowBytes past the start of
// the row being read (set by startRow): beyond it, it returns errRowTooLong.
type rowLimiter struct {
	r     io.Reader
	pos   int64 // bytes read so far
	limit int64
}

func newRowLimiter(r io.Reader) *rowLimiter {
	l := &rowLimiter{r: r}
	l.startRow(0)
	return l
}

// startRow allows the row that starts at offset off (counted as pos is) to
// be read.
func (l *rowLimiter) startRow(off int64) { l.limit = off + maxRowBytes + 1 }

func (l *rowLimiter) Read(p []byte) (int, error) {
	rest := l.limit - l.pos
	if rest <= 0 {
		return 0, errRowTooLong
	}
	if int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.pos += int64(n)
	return n, err
}

// readHeader reads the header row of f from its start, skipping a UTF-8
// byte order mark, and returns the columns and the byte offset where the
// data rows start.
func readHeader(f *os.File) (columns, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return columns{}, 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	br := bufio.NewReader(newRowLimiter(f))
	var skip int64
	if head, _ := br.Peek(len(utf8BOM)); bytes.Equal(head, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
		skip = int64(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	rec, err := cr.Read()
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return columns{}, 0, fmt.Errorf("header: the file is empty")
	case errors.As(err, &pe):
		return columns{}, 0, fmt.Errorf("header: line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	case errors.Is(err, errRowTooLong):
		return columns{}, 0, fmt.Errorf("header: %w", err)
	case err != nil:
		return columns{}, 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	cols, err := parseHeader(rec)
	if err != nil {
		return columns{}, 0, err
	}
	return cols, skip + cr.InputOffset(), nil
}

// linesBefore counts the line breaks in the first n bytes of f: the csv
// line number of the byte at offset n, minus one.
func linesBefore(f *os.File, n int64) (int64, error) {
	r := io.NewSectionReader(f, 0, n)
	var lines int64
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		lines += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", f.Name(), err)
		}
	}
}

// openRows positions a csv reader on f at offset, where a data row starts,
// with the reader settings of every import: fields per record fixed by the
// header, strict quotes, records reused. Before each Read, the caller
// passes the reader's InputOffset to the limiter's startRow.
func openRows(f *os.File, offset int64, fields int) (*csv.Reader, *rowLimiter, error) {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	lim := newRowLimiter(f)
	cr := csv.NewReader(bufio.NewReaderSize(lim, 64<<10))
	cr.FieldsPerRecord = fields
	cr.LazyQuotes = false
	cr.ReuseRecord = true
	return cr, lim, nil
}
