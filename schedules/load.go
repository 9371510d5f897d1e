// Package schedules loads, validates and runs the operators' schedule files:
// campaigns and recurring jobs as cron entries, in YAML files of one
// directory. A directory is validated as a whole before any of it is used;
// every daemon runs the entries, and a tick becomes one job whose task ID
// is derived from the entry and the scheduled time, so N daemons enqueue it
// once.
package schedules

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Options are the collaborators Load checks entries against.
type Options struct {
	// HasTemplate reports whether the template set has a template name for
	// channel ("email" or "sms"). Nil skips the check.
	HasTemplate func(name, channel string) bool
}

// Load reads every *.yaml and *.yml file of dir (not its subdirectories;
// hidden files are skipped) and validates them as a whole. The error is an
// errors.Join of a *LoadError for each problem found, sorted by file and
// line; Errors takes them apart.
func Load(dir string, o Options) (*Set, error) {
	files, err := listFiles(dir)
	if err != nil {
		return nil, errors.Join(&LoadError{File: dir, Msg: err.Error()})
	}
	s := &Set{specs: map[string]spec{}}
	var errs []*LoadError
	firstAt := map[string]string{} // entry name -> "file:line" where it is first defined
	entries := 0                   // entries of the files so far
	for _, f := range files {
		s.Files = append(s.Files, f.path)
		data, err := readFile(f.path)
		if err != nil {
			errs = append(errs, &LoadError{File: f.path, Msg: err.Error()})
			continue
		}
		fs, ferrs := parseFile(f.path, data, o, MaxEntries-entries)
		errs = append(errs, ferrs...)
		entries += fs.entries
		for _, n := range fs.names {
			if at, dup := firstAt[n.name]; dup {
				errs = append(errs, &LoadError{File: f.path, Line: n.line, Field: n.field,
					Msg: fmt.Sprintf("duplicate name %q: also defined at %s", n.name, at)})
				continue
			}
			firstAt[n.name] = fmt.Sprintf("%s:%d", f.path, n.line)
		}
		s.Campaigns = append(s.Campaigns, fs.campaigns...)
		s.Jobs = append(s.Jobs, fs.jobs...)
		for name, sp := range fs.specs {
			s.specs[name] = sp
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *LoadError) int {
			return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
		})
		joined := make([]error, len(errs))
		for i, e := range errs {
			joined[i] = e
		}
		return nil, errors.Join(joined...)
	}
	return s, nil
}

// MaxFileSize is the largest schedule file Load accepts, in bytes: a file
// is refused before it is parsed, so that a runaway file cannot hold the
// runner for seconds and gigabytes.
const MaxFileSize = 1 << 20

// MaxEntries is the most entries (campaigns and jobs) a directory may hold.
const MaxEntries = 10000

// readFile reads a schedule file of at most MaxFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", err)
	}
	if len(data) > MaxFileSize {
		size := int64(len(data))
		if fi, err := f.Stat(); err == nil && fi.Size() > size {
			size = fi.Size()
		}
		return nil, fmt.Errorf("too large (%d bytes, at most %d)", size, MaxFileSize)
	}
	return data, nil
}

// Errors returns the *LoadError values of an error returned by Load (or
// of an error wrapping it).
func Errors(err error) []*LoadError {
	switch e := err.(type) {
	case nil:
		return nil
	case *LoadError:
		return []*LoadError{e}
	case interface{ Unwrap() []error }:
		var out []*LoadError
		for _, inner := range e.Unwrap() {
			out = append(out, Errors(inner)...)
		}
		return out
	}
	return Errors(errors.Unwrap(err))
}

// scheduleFile is one schedule file of a directory.
type scheduleFile struct {
	path    string
	size    int64
	modTime int64 // UnixNano
}

// listFiles returns the schedule files of dir, sorted by name. Symbolic
// links are followed (a Kubernetes ConfigMap mounts files as links).
func listFiles(dir string) ([]scheduleFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read the schedule directory: %w", err)
	}
	var files []scheduleFile
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read schedule file: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, scheduleFile{path: path, size: fi.Size(), modTime: fi.ModTime().UnixNano()})
	}
	return files, nil
}
