package campaigns

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
)

// Bounds on what a dry run keeps, whatever the size of the audience.
const (
	// DryRunInlineFailures is how many render failures a report lists in
	// Failures; the failures file under DataDir holds all of them.
	DryRunInlineFailures = 100
	// DryRunFilesKept is how many failures files a campaign keeps under
	// DataDir/dryruns: a dry run deletes the older ones.
	DryRunFilesKept = 10
	// maxReportKeys bounds the keys of a report's maps that the recipients'
	// data decides (languages, kinds of failure); the rest are counted
	// under otherKey, so a hostile audience cannot bloat the report.
	maxReportKeys = 64
	otherKey      = "other"
)

// dryRunDir is the folder of DataDir the failures files are written to.
const dryRunDir = "dryruns"

// dryRunFileHeader is the first line of a failures file.
const dryRunFileHeader = "recipient\tlanguage\terror\n"

// SMSReport is what an SMS campaign's messages would cost.
type SMSReport struct {
	// Encodings counts the rendered messages by encoding:
	// templates.EncodingGSM7 ("GSM-7") or templates.EncodingUCS2 ("UCS-2").
	Encodings map[string]int64 `json:"encodings"`
	// SegmentsTotal is the segments of every rendered message: what the
	// run would be billed for.
	SegmentsTotal int64 `json:"segments_total"`
	// SegmentsMax is the segments of the longest message.
	SegmentsMax int `json:"segments_max"`
	// Samples is, per template language, how the sample message in the
	// report's Samples is sent.
	Samples map[string]SMSSample `json:"samples,omitempty"`
}

// SMSSample is how one message is sent (see templates.Segments).
type SMSSample struct {
	Encoding string `json:"encoding"`
	Segments int    `json:"segments"`
	Chars    int    `json:"chars"` // septets for GSM-7, UTF-16 code units for UCS-2
}

// add counts one message of template language lang as rendered (m
// carries the segments the template set counted); sample says it is the
// language's sample.
func (s *SMSReport) add(lang string, m templates.SMS, sample bool) {
	s.Encodings[m.Encoding]++
	s.SegmentsTotal += int64(m.Segments)
	s.SegmentsMax = max(s.SegmentsMax, m.Segments)
	if sample {
		s.Samples[lang] = SMSSample{Encoding: m.Encoding, Segments: m.Segments, Chars: m.Chars}
	}
}

// countKey adds one to m[k], or to m[otherKey] when m holds maxReportKeys
// keys already and k is not one of them.
func countKey(m map[string]int64, k string) {
	if _, ok := m[k]; !ok && len(m) >= maxReportKeys {
		k = otherKey
	}
	m[k]++
}

// failureLog collects a dry run's render failures: it counts them, keeps
// the first DryRunInlineFailures lines and streams every one to a file
// under dir, created at the first failure ("" dir writes no file).
type failureLog struct {
	dir      string
	campaign string
	now      time.Time

	total   int64
	inline  []string
	byError map[string]int64

	file *os.File
	w    *bufio.Writer
}

// add records that rendering for recipient id, who speaks lang, failed
// with err.
func (l *failureLog) add(id, lang string, err error) error {
	msg := oneLine(err.Error())
	l.total++
	if l.byError == nil {
		l.byError = map[string]int64{}
	}
	countKey(l.byError, lang+": "+msg)
	if len(l.inline) < DryRunInlineFailures {
		l.inline = append(l.inline, "recipient "+id+": "+msg)
	}
	if l.dir == "" {
		return nil
	}
	if l.file == nil {
		if err := l.create(); err != nil {
			return err
		}
	}
	if _, err := l.w.WriteString(tsvField(id) + "\t" + tsvField(lang) + "\t" + tsvField(err.Error()) + "\n"); err != nil {
		return fmt.Errorf("write failures file %s: %w", l.file.Name(), err)
	}
	return nil
}

// create opens a new failures file, <campaign>-<UTC time>-<random>.tsv.
func (l *failureLog) create() error {
	if err := os.MkdirAll(l.dir, 0o750); err != nil {
		return fmt.Errorf("failures file: %w", err)
	}
	f, err := os.CreateTemp(l.dir, safeFileName(l.campaign)+"-"+l.now.UTC().Format("20060102T150405Z")+"-*.tsv")
	if err != nil {
		return fmt.Errorf("failures file: %w", err)
	}
	l.file, l.w = f, bufio.NewWriterSize(f, 64<<10)
	if _, err := l.w.WriteString(dryRunFileHeader); err != nil {
		return fmt.Errorf("write failures file %s: %w", f.Name(), err)
	}
	return nil
}

// finish completes the file, if any, and returns its path ("" without
// one).
func (l *failureLog) finish() (string, error) {
	if l.file == nil {
		return "", nil
	}
	path := l.file.Name()
	err := l.w.Flush()
	if cerr := l.file.Close(); err == nil {
		err = cerr
	}
	l.file = nil
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("write failures file %s: %w", path, err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, nil
}

// abort removes the file of a dry run that did not complete.
func (l *failureLog) abort() {
	if l.file != nil {
		path := l.file.Name()
		_ = l.file.Close()
		_ = os.Remove(path)
		l.file = nil
	}
}

// report copies what the log collected into rep.
func (l *failureLog) report(rep *DryRunReport) {
	rep.FailuresTotal = l.total
	rep.Failures = l.inline
	rep.FailuresByError = l.byError
}

// dryRunFilePattern matches the names create gives, after "<campaign>-".
var dryRunFilePattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9]+\.tsv$`)

// pruneFailureFiles deletes the older failures files of campaign in dir,
// keeping current and the DryRunFilesKept-1 newest others. It only logs
// what it cannot delete: the dry run itself succeeded.
func pruneFailureFiles(dir, campaign, current string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("dry run: list failures files", "dir", dir, "err", err)
		return
	}
	prefix := safeFileName(campaign) + "-"
	var names []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && e.Name() != filepath.Base(current) && e.Type().IsRegular() && dryRunFilePattern.MatchString(rest) {
			names = append(names, e.Name())
		}
	}
	if len(names) < DryRunFilesKept {
		return
	}
	slices.Sort(names) // the UTC time sorts them oldest first
	for _, name := range names[:len(names)-(DryRunFilesKept-1)] {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("dry run: delete old failures file", "file", filepath.Join(dir, name), "err", err)
		}
	}
}

// safeFileName is campaign as a file name: campaign names are validated
// (jobs.ValidName) before a dry run, this is a second line of defence.
func safeFileName(campaign string) string {
	if name := filepath.Base(campaign); jobs.ValidName(name) {
		return name
	}
	return "campaign"
}

// tsvField is s on one line, without tabs or control characters.
func tsvField(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
