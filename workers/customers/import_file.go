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

// readHeader reads the header row of f from its start, skipping a UTF-8
// byte order mark, and returns the columns and the byte offset where the
// data rows start.
func readHeader(f *os.File) (columns, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return columns{}, 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	br := bufio.NewReader(f)
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
// header, strict quotes, records reused.
func openRows(f *os.File, offset int64, fields int) (*csv.Reader, error) {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	cr := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	cr.FieldsPerRecord = fields
	cr.LazyQuotes = false
	cr.ReuseRecord = true
	return cr, nil
}
