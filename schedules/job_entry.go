package schedules

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"gopkg.in/yaml.v3"
)

// RunPlaceholder, inside a string of a job entry's args, is replaced by the
// run id of each tick ("20261122T0900Z"), e.g. import_id: "nightly-{run}".
const RunPlaceholder = "{run}"

var jobFields = []string{"name", "cron", "kind", "args", "enabled"}

// job parses one entry of jobs; path is e.g. "jobs[0]".
func (ep entryParser) job(path string, n *yaml.Node) {
	m, ok := ep.p.fields(n, path, jobFields...)
	if !ok {
		return
	}
	before := len(ep.p.errs)
	e := JobEntry{File: ep.p.file, Line: m.node.Line}
	e.Name = ep.name(m)
	s, hasSpec := ep.cron(m)
	e.Cron = s.expr
	e.Enabled, _ = m.boolean("enabled", true)
	e.Kind, _ = m.str("kind", true)
	if e.Kind != "" {
		switch spec, ok := jobs.Lookup(e.Kind); {
		case !ok:
			ep.p.errorf(m.line("kind"), m.field("kind"), "unknown job kind %q (see `backoffice jobs kinds`)", e.Kind)
			e.Kind = ""
		case spec.Internal:
			ep.p.errorf(m.line("kind"), m.field("kind"), "job kind %q is queued by the daemon itself (a signed webhook or a campaign launch), not by a schedule", e.Kind)
			e.Kind = ""
		case strings.HasPrefix(e.Kind, "campaign:"):
			// Their args carry a whole campaign whose template and audience
			// only a campaign entry checks.
			ep.p.errorf(m.line("kind"), m.field("kind"), "job kind %q cannot be scheduled under jobs: define the campaign under campaigns (a campaign entry launches it on its cron)", e.Kind)
			e.Kind = ""
		}
	}
	e.Args = ep.args(m)
	if e.Kind != "" && e.Args != nil {
		ep.checkArgs(m, e.Kind, e.Args)
	}
	if len(ep.p.errs) > before || ep.zone == "" {
		return
	}
	ep.fs.jobs = append(ep.fs.jobs, e)
	if hasSpec {
		ep.fs.specs[e.Name] = s.spec
	}
}

// args converts the args mapping (absent means {}) to JSON.
func (ep entryParser) args(m mapping) json.RawMessage {
	v, ok := m.get("args", false)
	if !ok {
		return json.RawMessage("{}")
	}
	if v.Kind != yaml.MappingNode {
		ep.p.errorf(v.Line, m.field("args"), "must be a mapping of the kind's fields, got %s", describe(v))
		return nil
	}
	var generic any
	if err := v.Decode(&generic); err != nil {
		ep.p.errorf(v.Line, m.field("args"), "%v", err)
		return nil
	}
	b, err := json.Marshal(generic)
	if err != nil {
		ep.p.errorf(v.Line, m.field("args"), "cannot be turned into JSON (keys must be strings): %v", err)
		return nil
	}
	return b
}

// checkArgs validates args for kind as a tick would build them, reporting
// an invalid field at its line.
func (ep entryParser) checkArgs(m mapping, kind string, args json.RawMessage) {
	sample := runID(time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC), true)
	_, err := jobs.Decode(kind, withRun(args, sample))
	if err == nil {
		return
	}
	var fe *jobs.FieldError
	if !errors.As(err, &fe) {
		ep.p.errorf(m.line("args"), m.field("args"), "%v", err)
		return
	}
	line := m.line("args")
	top, _, _ := strings.Cut(fe.Field, ".")
	if am := resolve(m.vals["args"]); am != nil && am.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(am.Content); i += 2 {
			if am.Content[i].Value == top {
				line = am.Content[i].Line
			}
		}
	}
	ep.p.errorf(line, m.field("args")+"."+fe.Field, "%s", fe.Msg)
}

// withRun replaces RunPlaceholder in args by run. Run ids are letters and
// digits only, so the result is still valid JSON.
func withRun(args json.RawMessage, run string) []byte {
	return bytes.ReplaceAll(args, []byte(RunPlaceholder), []byte(run))
}

// name parses and checks the name of an entry.
func (ep entryParser) name(m mapping) string {
	name, ok := m.str("name", true)
	if !ok {
		return ""
	}
	if !jobs.ValidName(name) {
		ep.p.errorf(m.line("name"), m.field("name"), "must be 1-63 lower-case letters, digits or '-', got %q", name)
		return ""
	}
	ep.fs.names = append(ep.fs.names, namedAt{name: name, field: m.field("name"), line: m.line("name")})
	return name
}

// parsedCron is an entry's cron expression as written and as parsed.
type parsedCron struct {
	expr string
	spec spec
}

func (ep entryParser) cron(m mapping) (parsedCron, bool) {
	expr, ok := m.str("cron", true)
	if !ok {
		return parsedCron{}, false
	}
	zone := ep.zone
	if zone == "" {
		zone = "UTC"
	}
	s, err := parseCron(expr, zone)
	if err != nil {
		ep.p.errorf(m.line("cron"), m.field("cron"), "%v", err)
		return parsedCron{expr: expr}, false
	}
	return parsedCron{expr: expr, spec: s}, true
}
