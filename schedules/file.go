package schedules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// fileSet is what one schedule file defines.
type fileSet struct {
	campaigns []CampaignEntry
	jobs      []JobEntry
	specs     map[string]spec
	names     []namedAt // every entry name, in file order
}

// namedAt is where an entry name is defined, for the duplicate check.
type namedAt struct {
	name, field string
	line        int
}

// parseFile parses and validates one schedule file. An empty file (or one
// holding only comments) defines nothing.
func parseFile(file string, data []byte, o Options) (fileSet, []*LoadError) {
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
	for i, n := range p.items(top, "campaigns") {
		ep.campaign(fmt.Sprintf("campaigns[%d]", i), n)
	}
	for i, n := range p.items(top, "jobs") {
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
		line, msg := yamlErrorLine(err)
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

// yamlErrorLine takes the line out of a yaml.v3 syntax error. yaml.v3 omits
// "line N" for problems on the first line, except for anchor errors, which
// never carry one.
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, "invalid YAML: " + m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.Contains(msg, "anchor") || strings.Contains(msg, "aliasing") {
		return 0, "invalid YAML: " + msg
	}
	return 1, "invalid YAML: " + msg
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
