package campaigns

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopworks/backoffice/jobs"
)

// Limits on audience files: a row breaking them is skipped as invalid_row;
// a line, or a record (a quoted field may span lines), longer than
// maxLineBytes stops the launch, naming the line where it starts.
const (
	maxFileColumns = 64
	maxFieldChars  = 1000
	maxLineBytes   = 1 << 20
)

// utf8BOM starts the files some tools write (PowerShell's Export-Csv,
// Excel's "CSV UTF-8").
const utf8BOM = "\xEF\xBB\xBF"

// skipBOM positions file at its first byte after a leading UTF-8 byte-order
// mark, and returns the mark's length (0 without one): the CSV reader must
// not see it, or a quoted first header is "a bare quote".
func skipBOM(file io.ReadSeeker) (int64, error) {
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	buf := make([]byte, len(utf8BOM))
	n, err := io.ReadFull(file, buf)
	if n == len(utf8BOM) && string(buf) == utf8BOM {
		return int64(n), nil
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, err
	}
	_, err = file.Seek(0, io.SeekStart)
	return 0, err
}

// fileRecipient is one recipient read from an audience file. It is stored
// in the run's data hash, so a chunk sends without the file.
type fileRecipient struct {
	Line     int               `json:"l"`
	Email    string            `json:"e,omitempty"`
	Phone    string            `json:"p,omitempty"`
	Name     string            `json:"n,omitempty"`
	Language string            `json:"g,omitempty"`
	Timezone string            `json:"z,omitempty"`
	Extra    map[string]string `json:"x,omitempty"`
}

// fileAudience reads a campaign's audience from a CSV file with a header
// row: email, phone, name, language and timezone are known columns (the
// channel's address column is required, the others optional); every other
// column is passed to the template as .Extra.<header>.
type fileAudience struct {
	path    string
	channel string
	region  string // default region for phone numbers without +country
}

var languagePattern = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$`)

// header is the column layout of an audience file.
type header struct {
	col   map[string]int // known column -> index
	extra map[int]string // index -> extra field name
	width int
	end   int64 // offset just after the header record (and a byte-order mark)
}

// readHeader reads the header record at the start of file.
func (f fileAudience) readHeader(file io.ReadSeeker) (header, error) {
	bom, err := skipBOM(file)
	if err != nil {
		return header{}, fmt.Errorf("audience file %s: %w", f.path, err)
	}
	r := csv.NewReader(&lineLimit{r: file})
	rec, err := r.Read()
	if err != nil {
		return header{}, fmt.Errorf("audience file %s: line 1: read header: %w", f.path, err)
	}
	h := header{col: map[string]int{}, extra: map[int]string{}, width: len(rec), end: bom + r.InputOffset()}
	if len(rec) > maxFileColumns {
		return header{}, fmt.Errorf("audience file %s: line 1: %d columns, at most %d", f.path, len(rec), maxFileColumns)
	}
	seen := map[string]bool{}
	for i, name := range rec {
		if i == 0 {
			name = strings.TrimPrefix(name, "\uFEFF")
		}
		name = strings.TrimSpace(name)
		key := strings.ToLower(name)
		switch {
		case name == "":
			return header{}, fmt.Errorf("audience file %s: line 1: column %d has no name", f.path, i+1)
		case seen[key]:
			return header{}, fmt.Errorf("audience file %s: line 1: column %q appears twice", f.path, name)
		}
		seen[key] = true
		switch key {
		case "email", "phone", "name", "language", "timezone":
			h.col[key] = i
		default:
			h.extra[i] = name
		}
	}
	addr := "email"
	if f.channel == jobs.ChannelSMS {
		addr = "phone"
	}
	if _, ok := h.col[addr]; !ok {
		return header{}, fmt.Errorf("audience file %s: line 1: a %s campaign needs a %q column", f.path, f.channel, addr)
	}
	return h, nil
}

// fileCheckpoint is where a launch resumes in an audience file. The size
// and modification time detect a file changed between two attempts.
type fileCheckpoint struct {
	size, mtime, offset int64
	set                 bool
}

// String is the stored form; "" for the zero value (nothing to store).
func (c fileCheckpoint) String() string {
	if !c.set {
		return ""
	}
	return fmt.Sprintf("file:%d:%d:%d", c.size, c.mtime, c.offset)
}

func parseFileCheckpoint(s string) (fileCheckpoint, error) {
	c := fileCheckpoint{set: true}
	if _, err := fmt.Sscanf(s, "file:%d:%d:%d", &c.size, &c.mtime, &c.offset); err != nil {
		return c, fmt.Errorf("bad checkpoint %q: %w", s, err)
	}
	return c, nil
}

// each calls emit for every row after the checkpoint resume ("" for the
// start), with the checkpoint that resumes after that row.
func (f fileAudience) each(ctx context.Context, resume string, emit func(candidate) error) error {
	file, err := os.Open(f.path)
	if err != nil {
		return permanent(fmt.Errorf("audience file %s: %w", f.path, err))
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return fmt.Errorf("audience file %s: %w", f.path, err)
	}
	h, err := f.readHeader(file)
	if err != nil {
		return permanent(err)
	}
	ck := fileCheckpoint{size: info.Size(), mtime: info.ModTime().UnixNano(), set: true}
	firstLine := 2
	if resume != "" {
		prev, err := parseFileCheckpoint(resume)
		if err != nil {
			return permanent(fmt.Errorf("audience file %s: %w", f.path, err))
		}
		if prev.size != ck.size || prev.mtime != ck.mtime {
			return permanent(fmt.Errorf("audience file %s: changed while the launch was planning (size or modification time differ): restore it or launch a new run", f.path))
		}
		ck.offset = prev.offset
		if firstLine, err = lineAt(file, ck.offset); err != nil {
			return fmt.Errorf("audience file %s: %w", f.path, err)
		}
	} else {
		ck.offset = h.end
	}
	if _, err := file.Seek(ck.offset, io.SeekStart); err != nil {
		return fmt.Errorf("audience file %s: %w", f.path, err)
	}
	return f.rows(ctx, file, h, ck, firstLine, emit)
}

func (f fileAudience) rows(ctx context.Context, file io.ReadSeeker, h header, ck fileCheckpoint, firstLine int, emit func(candidate) error) error {
	start := ck.offset
	limit := &lineLimit{r: file}
	r := csv.NewReader(limit)
	r.FieldsPerRecord = h.width
	r.ReuseRecord = true
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		limit.recordStart = r.InputOffset()
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		var long *tooLong
		if errors.As(err, &long) {
			if line, lerr := lineAt(file, start+long.offset); lerr == nil {
				return permanent(fmt.Errorf("audience file %s: line %d: %w", f.path, line, err))
			}
		}
		if err != nil && !errors.As(err, &pe) {
			return permanent(fmt.Errorf("audience file %s: %w", f.path, err))
		}
		ck.offset = start + r.InputOffset()
		var c candidate
		if pe != nil {
			c = candidate{line: firstLine + pe.StartLine - 1, reason: ReasonInvalidRow + ": " + pe.Err.Error()}
		} else {
			line, _ := r.FieldPos(0)
			c = f.candidate(h, rec, firstLine+line-1)
		}
		c.resume = ck
		if err := emit(c); err != nil {
			return err
		}
	}
}

// candidate validates one row.
func (f fileAudience) candidate(h header, rec []string, line int) candidate {
	get := func(col string) string {
		if i, ok := h.col[col]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for i, v := range rec {
		if utf8.RuneCountInString(v) > maxFieldChars || !utf8.ValidString(v) {
			return candidate{line: line, reason: fmt.Sprintf("%s: column %d: not UTF-8 or longer than %d characters", ReasonInvalidRow, i+1, maxFieldChars)}
		}
	}
	fr := fileRecipient{Line: line, Name: get("name"), Language: get("language"), Timezone: get("timezone")}
	if fr.Language != "" && !languagePattern.MatchString(fr.Language) {
		return candidate{line: line, reason: fmt.Sprintf("%s: column language: %q is not a language code", ReasonInvalidRow, fr.Language)}
	}
	if fr.Timezone != "" {
		if _, err := time.LoadLocation(fr.Timezone); err != nil {
			return candidate{line: line, reason: fmt.Sprintf("%s: column timezone: %q is not an IANA zone", ReasonInvalidRow, fr.Timezone)}
		}
	}
	var id string
	var err error
	if f.channel == jobs.ChannelSMS {
		if get("phone") == "" {
			return candidate{line: line, reason: ReasonNoAddress}
		}
		fr.Phone, err = normalPhone(get("phone"), f.region)
		id = fr.Phone
	} else {
		if get("email") == "" {
			return candidate{line: line, reason: ReasonNoAddress}
		}
		fr.Email, err = normalEmail(get("email"))
		id = strings.ToLower(fr.Email)
	}
	if err != nil {
		return candidate{line: line, reason: ReasonInvalidAddress + ": " + err.Error()}
	}
	for i, name := range h.extra {
		if fr.Extra == nil {
			fr.Extra = make(map[string]string, len(h.extra))
		}
		fr.Extra[name] = rec[i]
	}
	data, _ := json.Marshal(fr)
	return candidate{id: id, data: string(data), line: line}
}

// lineAt returns the line number of the byte at offset (1 + newlines before it).
func lineAt(file io.ReadSeeker, offset int64) (int, error) {
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	line, left := 1, offset
	for left > 0 {
		n, err := file.Read(buf[:min(int64(len(buf)), left)])
		line += bytes.Count(buf[:n], []byte{'\n'})
		left -= int64(n)
		if err != nil && left > 0 {
			return 0, fmt.Errorf("checkpoint offset %d beyond the end: %w", offset, err)
		}
	}
	return line, nil
}

// lineLimit fails a read when a line, or the record being read, grows
// beyond maxLineBytes, so a hostile file cannot make the CSV reader buffer
// without bound: an unclosed quote would otherwise make one field of the
// rest of the file.
type lineLimit struct {
	r       io.Reader
	current int   // bytes of the current line
	read    int64 // bytes read in all
	// recordStart is where the record being read starts, as the CSV
	// reader's InputOffset (the reader sets it before each record).
	recordStart int64
}

// tooLong is a line or record over maxLineBytes starting at offset (from
// where the lineLimit started reading).
type tooLong struct {
	offset int64
	what   string
}

func (e *tooLong) Error() string {
	return fmt.Sprintf("%s is longer than %d bytes", e.what, maxLineBytes)
}

func (l *lineLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		l.current = n - 1 - i
	} else {
		l.current += n
	}
	switch {
	case l.current > maxLineBytes:
		return 0, &tooLong{offset: l.recordStart, what: "a line"}
	case l.read-l.recordStart > maxLineBytes+int64(len(p)):
		// the record has been read up to here (len(p): the CSV reader's
		// read-ahead) and still has not ended: an unclosed quote
		return 0, &tooLong{offset: l.recordStart, what: "a record (a quoted field not closed?)"}
	}
	return n, err
}
