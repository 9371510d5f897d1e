package schedules

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadError is one problem in a schedule file: where it is and what is wrong.
type LoadError struct {
	File  string `json:"file"`            // path of the file, as the directory was given
	Line  int    `json:"line,omitempty"`  // 1-based; 0 when the problem has no line (an unreadable file)
	Field string `json:"field,omitempty"` // path of the field, e.g. "campaigns[2].rate"; may be empty
	Msg   string `json:"message"`
}

// Error formats e as "file:line: field: message".
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// fileParser collects the problems of one schedule file.
type fileParser struct {
	file string
	errs []*LoadError
}

func (p *fileParser) errorf(line int, field, format string, a ...any) {
	p.errs = append(p.errs, &LoadError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
}

// mapping is a YAML mapping whose keys have been checked against the
// fields a place in the file allows.
type mapping struct {
	p        *fileParser
	node     *yaml.Node
	path     string
	vals     map[string]*yaml.Node
	keyLines map[string]int
}

// fields reads n as a mapping of the known keys, reporting unknown keys,
// keys given twice, and n itself when it is not a mapping (ok is false then).
func (p *fileParser) fields(n *yaml.Node, path string, known ...string) (m mapping, ok bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, path, "must be a mapping, got %s", describe(n))
		return mapping{}, false
	}
	m = mapping{p: p, node: n, path: path, vals: map[string]*yaml.Node{}, keyLines: map[string]int{}}
	keyLines := m.keyLines
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		switch {
		case !slices.Contains(known, k.Value):
			p.errorf(k.Line, m.field(k.Value), "unknown field (known: %s)", strings.Join(known, ", "))
		case keyLines[k.Value] != 0:
			p.errorf(k.Line, m.field(k.Value), "given twice (first on line %d)", keyLines[k.Value])
		default:
			keyLines[k.Value] = k.Line
			m.vals[k.Value] = v
		}
	}
	return m, true
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// describe names what n is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case isNull(n):
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (m mapping) field(key string) string {
	if m.path == "" {
		return key
	}
	return m.path + "." + key
}

// get returns the value of key, reporting it as missing when required.
// A null value counts as missing.
func (m mapping) get(key string, required bool) (*yaml.Node, bool) {
	v := m.vals[key]
	if v == nil || isNull(v) {
		if required {
			m.p.errorf(m.line(key), m.field(key), "is required")
		}
		return nil, false
	}
	return v, true
}

// line is the line of key, or of the mapping when key is absent.
func (m mapping) line(key string) int {
	if l := m.keyLines[key]; l != 0 {
		return l
	}
	return m.node.Line
}

// str returns the scalar value of key.
func (m mapping) str(key string, required bool) (string, bool) {
	v, ok := m.get(key, required)
	if !ok {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		m.p.errorf(v.Line, m.field(key), "must be a string, got %s", describe(v))
		return "", false
	}
	return v.Value, true
}

// boolean returns the value of key, which must be true or false.
func (m mapping) boolean(key string, required bool) (bool, bool) {
	v, ok := m.get(key, required)
	if !ok {
		return false, false
	}
	var b bool
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
		m.p.errorf(v.Line, m.field(key), "must be true or false, got %s", describe(v))
		return false, false
	}
	return b, true
}

// number returns the value of key, which must be a YAML int or float.
func (m mapping) number(key string) (float64, bool) {
	v, ok := m.get(key, false)
	if !ok {
		return 0, false
	}
	var f float64
	if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") || v.Decode(&f) != nil {
		m.p.errorf(v.Line, m.field(key), "must be a number, got %s", describe(v))
		return 0, false
	}
	return f, true
}

// list returns the values of key, a list of non-empty strings.
func (m mapping) list(key string) ([]string, bool) {
	v, ok := m.get(key, false)
	if !ok {
		return nil, false
	}
	if v.Kind != yaml.SequenceNode {
		m.p.errorf(v.Line, m.field(key), "must be a list such as [a, b], got %s", describe(v))
		return nil, false
	}
	out := make([]string, 0, len(v.Content))
	for i, item := range v.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode || isNull(item) || strings.TrimSpace(item.Value) == "" {
			m.p.errorf(item.Line, fmt.Sprintf("%s[%d]", m.field(key), i), "must be a non-empty string, got %s", describe(item))
			return nil, false
		}
		out = append(out, item.Value)
	}
	return out, true
}
