package schedules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// fileSet is what one schedule file defines.
type fileSet struct {
	campaigns []CampaignEntry
	jobs      []JobEntry
	specs     map[string]spec
	names     []namedAt // every entry name, in file order
	entries   int       // the items of campaigns and jobs, valid or not
}

// namedAt is where an entry name is defined, for the duplicate check.
type namedAt struct {
	name, field string
	line        int
}

// parseFile parses and validates one schedule file. An empty file (or one
// holding only comments) defines nothing. A file with more than budget
// entries is refused (the directory holds at most MaxEntries) without
// checking them.
func parseFile(file string, data []byte, o Options, budget int) (fileSet, []*LoadError) {
	p := &fileParser{file: file}
	fs := fileSet{specs: map[string]spec{}}
	root, ok := p.document(data)
	if !ok || root == nil {
		return fs, p.errs
	}
	top, ok := p.fields(root, "", "timezone", "campaigns", "jobs")
	if !ok {
		return fs, p.errs
	}
	zone, _ := top.str("timezone", true)
	if zone != "" {
		if err := checkZone(zone); err != nil {
			p.errorf(top.line("timezone"), "timezone", "%v", err)
			zone = "" // entries are still checked, in UTC, without their zone
		}
	}
	ep := entryParser{p: p, o: o, zone: zone, zoneLine: top.line("timezone"), fs: &fs}
	campaigns, jobs := p.items(top, "campaigns"), p.items(top, "jobs")
	fs.entries = len(campaigns) + len(jobs)
	if fs.entries > budget {
		// Report the first entry over the limit.
		k := max(budget, 0)
		n, field := campaigns, "campaigns"
		if k >= len(campaigns) {
			k -= len(campaigns)
			n, field = jobs, "jobs"
		}
		p.errorf(n[k].Line, fmt.Sprintf("%s[%d]", field, k), "too many entries: a schedule directory holds at most %d", MaxEntries)
		return fs, p.errs
	}
	for i, n := range campaigns {
		ep.campaign(fmt.Sprintf("campaigns[%d]", i), n)
	}
	for i, n := range jobs {
		ep.job(fmt.Sprintf("jobs[%d]", i), n)
	}
	return fs, p.errs
}

// document parses data as exactly one YAML document and returns its root
// node, nil for an empty document.
func (p *fileParser) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		line, msg := yamlErrorLine(err, data)
		p.errorf(line, "", "%s", msg)
		return nil, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		p.errorf(next.Line, "", "holds more than one YAML document: put each in its own file")
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner): yaml.v3 reports their line 0-based, and leaves it out when it is
// the first line.
var yamlParserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// yamlErrorLine takes the line out of a yaml.v3 syntax error in data.
// yaml.v3 omits "line N" for problems on the first line, counts the lines
// of parser errors from 0, gives none for bytes that are not UTF-8 or are
// control characters, nor for an alias of an unknown anchor: those lines
// are found in data.
func yamlErrorLine(err error, data []byte) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if yamlParserProblems[m[2]] {
			line++
		}
		return line, "invalid YAML: " + m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	switch {
	case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "control characters"):
		if line := badCharLine(data); line > 0 {
			return line, "invalid YAML: " + msg
		}
	case unknownAnchor.MatchString(msg):
		name := unknownAnchor.FindStringSubmatch(msg)[1]
		alias := regexp.MustCompile(`\*` + regexp.QuoteMeta(name) + `([\s,\]}]|$)`)
		for i, l := range strings.Split(string(data), "\n") {
			if alias.MatchString(l) {
				return i + 1, "invalid YAML: " + msg
			}
		}
		return 0, "invalid YAML: " + msg
	case strings.Contains(msg, "anchor") || strings.Contains(msg, "aliasing"):
		return 0, "invalid YAML: " + msg
	}
	return 1, "invalid YAML: " + msg
}

// badCharLine returns the line of the first byte of data that is not UTF-8
// or is a character YAML does not allow (a control character other than
// tab, line feed, carriage return and NEL), 0 when there is none.
func badCharLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85:
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0xfffe || r == 0xffff:
			return line
		}
		i += size
	}
	return 0
}

// items returns the entries of the list under key, which may be absent.
func (p *fileParser) items(m mapping, key string) []*yaml.Node {
	v, ok := m.get(key, false)
	if !ok {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, key, "must be a list of entries (each starting with '- name:'), got %s", describe(v))
		return nil
	}
	return v.Content
}
