package schedules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/jobs"
)

// goodFile defines one campaign and one job; the broken files of the table
// tests are made from it by replacing one line, so line numbers stay put.
const goodFile = `timezone: Europe/Bratislava
campaigns:
  - name: spring-sale
    cron: "0 9 * * MON"
    channel: email
    template: promo
    audience: {tags: [newsletter], languages: [sk, cs]}
    rate: 50/s
    enabled: true
jobs:
  - name: nightly-import
    cron: "@daily"
    kind: customers:import
    args:
      import_id: "nightly-{run}"
      path: /tmp/customers.csv
    enabled: true
`

// testOptions knows the email templates promo and welcome, the SMS template
// reminder.
func testOptions() Options {
	return Options{HasTemplate: func(name, channel string) bool {
		return (channel == jobs.ChannelEmail && (name == "promo" || name == "welcome")) ||
			(channel == jobs.ChannelSMS && name == "reminder")
	}}
}

// writeDir writes files (name -> content) into a new directory.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, dir, name, content)
	}
	return dir
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceLine returns goodFile with line n (1-based) replaced by repl, which
// may hold several lines or none.
func replaceLine(n int, repl string) string {
	lines := strings.Split(goodFile, "\n")
	if repl == "" {
		return strings.Join(append(lines[:n-1:n-1], lines[n:]...), "\n")
	}
	lines[n-1] = repl
	return strings.Join(lines, "\n")
}

// where is the place and a part of the message of one expected error.
type where struct {
	Line  int
	Field string
	Msg   string // a substring of the message
}

func TestLoadReportsEveryBrokenField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want []where
	}{
		{"rate", replaceLine(8, `    rate: fast`), []where{{8, "campaigns[0].rate", `must look like 50/s, 300/m or 1000/h, got "fast"`}}},
		{"rate as number", replaceLine(8, `    rate: 50`), []where{{8, "campaigns[0].rate", `got "50"`}}},
		{"unknown campaign field", replaceLine(8, "    rate: 50/s\n    colour: red"),
			[]where{{9, "campaigns[0].colour", "unknown field (known: name, cron,"}}},
		{"unknown top-level field", goodFile + "owner: me\n", []where{{18, "owner", "unknown field"}}},
		{"unknown audience field", replaceLine(7, `    audience: {tags: [x], segment: vip}`),
			[]where{{7, "campaigns[0].audience.segment", "unknown field"}}},
		{"unknown args field", replaceLine(16, "      path: /tmp/customers.csv\n      verbose: true"),
			[]where{{17, "jobs[0].args.verbose", "unknown field"}}},
		{"unknown job field", replaceLine(17, "    enabled: true\n    retries: 3"),
			[]where{{18, "jobs[0].retries", "unknown field"}}},
		{"missing template", replaceLine(6, ""), []where{{3, "campaigns[0].template", "is required"}}},
		{"empty template", replaceLine(6, "    template:"), []where{{6, "campaigns[0].template", "is required"}}},
		{"missing enabled", replaceLine(17, ""), []where{{11, "jobs[0].enabled", "is required"}}},
		{"missing timezone", replaceLine(1, ""), []where{{1, "timezone", "is required"}}},
		{"missing cron", replaceLine(12, ""), []where{{11, "jobs[0].cron", "is required"}}},
		{"bad cron", replaceLine(4, `    cron: "0 25 * * *"`), []where{{4, "campaigns[0].cron", "end of range (25) above maximum (23)"}}},
		{"cron with six fields", replaceLine(4, `    cron: "0 0 9 * * MON"`), []where{{4, "campaigns[0].cron", "expected exactly 5 fields"}}},
		{"CRON_TZ alone", replaceLine(4, `    cron: "CRON_TZ=UTC"`), []where{{4, "campaigns[0].cron", "CRON_TZ=UTC needs a schedule after it"}}},
		{"CRON_TZ unknown", replaceLine(4, `    cron: "CRON_TZ=Mars/Olympus 0 9 * * *"`), []where{{4, "campaigns[0].cron", `unknown time zone "Mars/Olympus"`}}},
		{"CRON_TZ empty", replaceLine(4, `    cron: "CRON_TZ= 0 9 * * *"`), []where{{4, "campaigns[0].cron", "needs a zone name"}}},
		{"never fires", replaceLine(4, `    cron: "0 9 30 2 *"`), []where{{4, "campaigns[0].cron", "never fires"}}},
		{"every too short", replaceLine(12, `    cron: "@every 500ms"`), []where{{12, "jobs[0].cron", "at least 1s"}}},
		{"every too long", replaceLine(12, `    cron: "@every 1000000h"`), []where{{12, "jobs[0].cron", "@every takes at most 8784h0m0s (366 days), got 1000000h0m0s"}}},
		{"every just too long", replaceLine(12, `    cron: "@every 8784h1s"`), []where{{12, "jobs[0].cron", "@every takes at most 8784h0m0s (366 days)"}}},
		{"unknown descriptor", replaceLine(12, `    cron: "@fortnightly"`), []where{{12, "jobs[0].cron", "unrecognized descriptor"}}},
		{"bad timezone", replaceLine(1, "timezone: Mars/Olympus"), []where{{1, "timezone", `unknown time zone "Mars/Olympus"`}}},
		{"local timezone", replaceLine(1, "timezone: Local"), []where{{1, "timezone", "must be an IANA zone"}}},
		{"channel", replaceLine(5, "    channel: fax"), []where{{5, "campaigns[0].channel", `must be email or sms, got "fax"`}}},
		{"unknown template", replaceLine(6, "    template: nope"), []where{{6, "campaigns[0].template", `no email template named "nope"`}}},
		{"template of the other channel", replaceLine(6, "    template: reminder"), []where{{6, "campaigns[0].template", `no email template named "reminder"`}}},
		{"unknown kind", replaceLine(13, "    kind: customers:delete"), []where{{13, "jobs[0].kind", `unknown job kind "customers:delete"`}}},
		{"internal kind", replaceLine(13, "    kind: sms:inbound"), []where{{13, "jobs[0].kind", `job kind "sms:inbound" is queued by the daemon itself`}}},
		{"args invalid for kind", replaceLine(16, "      path: customers.csv"), []where{{16, "jobs[0].args.path", "must be an absolute path"}}},
		{"args of the wrong type", replaceLine(16, "      path: [a, b]"), []where{{16, "jobs[0].args.path", "must be string"}}},
		{"args missing a field", replaceLine(15, ""), []where{{14, "jobs[0].args.import_id", "must be 1-64 characters"}}},
		{"args not a mapping", strings.Join(strings.Split(goodFile, "\n")[:13], "\n") + "\n    args: [1, 2]\n    enabled: true\n",
			[]where{{14, "jobs[0].args", "must be a mapping"}}},
		{"audience file missing", replaceLine(7, "    audience: {file: /nonexistent/recipients.csv}"),
			[]where{{7, "campaigns[0].audience.file", "cannot be read"}}},
		{"audience file relative", replaceLine(7, "    audience: {file: recipients.csv}"),
			[]where{{7, "campaigns[0].audience.file", "must be an absolute path"}}},
		{"audience empty", replaceLine(7, "    audience: {languages: [sk]}"), []where{{7, "campaigns[0].audience", "needs tags"}}},
		{"audience both", replaceLine(7, "    audience: {tags: [a], file: /etc/hostname}"), []where{{7, "campaigns[0].audience.file", "cannot be combined with tags"}}},
		{"audience language", replaceLine(7, "    audience: {tags: [a], languages: [Slovak]}"), []where{{7, "campaigns[0].audience.languages[0]", `got "Slovak"`}}},
		{"audience tags not a list", replaceLine(7, "    audience: {tags: newsletter}"),
			[]where{{7, "campaigns[0].audience.tags", "must be a list"}, {7, "campaigns[0].audience", "needs tags"}}},
		{"yaml syntax", replaceLine(12, "    cron: @daily"), []where{{12, "", "invalid YAML: found character that cannot start any token"}}},
		// yaml.v3 names the line where the construct it was reading began.
		{"yaml tab", replaceLine(12, "\tcron: x"), []where{{11, "", "invalid YAML: found a tab character"}}},
		{"yaml on line 1", "timezone: {a: b]\n", []where{{1, "", "invalid YAML"}}},
		// A construct begun on line 1 is reported where the problem is (the
		// end of the file, on line 2).
		{"yaml begun on line 1", "timezone: [UTC\n", []where{{2, "", "invalid YAML: did not find expected ',' or ']'"}}},
		// Parser errors name the line where the construct began, 1-based.
		{"yaml flow sequence", replaceLine(12, "    cron: [x"), []where{{12, "", "invalid YAML: did not find expected ',' or ']'"}}},
		{"yaml flow mapping", replaceLine(7, "    audience: {tags: [x]"), []where{{7, "", "invalid YAML: did not find expected ',' or '}'"}}},
		{"yaml indentation", replaceLine(12, "   cron: x"), []where{{11, "", "invalid YAML: did not find expected '-' indicator"}}},
		{"yaml undefined tag handle", replaceLine(13, "    kind: !x!y customers:import"), []where{{13, "", "invalid YAML: found undefined tag handle"}}},
		{"yaml not UTF-8", replaceLine(6, "    template: pr\xffomo"), []where{{6, "", "invalid YAML: invalid leading UTF-8 octet"}}},
		{"yaml control character", replaceLine(6, "    template: pr\x01omo"), []where{{6, "", "invalid YAML: control characters are not allowed"}}},
		{"yaml unknown alias", replaceLine(6, "    template: *promo"), []where{{6, "", "invalid YAML: unknown anchor 'promo' referenced"}}},
		{"two documents", goodFile + "---\ntimezone: UTC\n", []where{{18, "", "more than one YAML document"}}},
		{"duplicate key", replaceLine(8, "    rate: 50/s\n    rate: 10/s"), []where{{9, "campaigns[0].rate", "given twice (first on line 8)"}}},
		{"bad name", replaceLine(3, "  - name: Spring_Sale"), []where{{3, "campaigns[0].name", `must be 1-63 lower-case letters, digits or '-', got "Spring_Sale"`}}},
		{"duplicate name in a file", replaceLine(11, "  - name: spring-sale"), []where{{11, "jobs[0].name", `duplicate name "spring-sale": also defined at FILE:3`}}},
		{"enabled not a bool", replaceLine(9, "    enabled: yes"), []where{{9, "campaigns[0].enabled", `must be true or false, got "yes"`}}},
		{"max error ratio", replaceLine(9, "    enabled: true\n    max_error_ratio: 2"), []where{{10, "campaigns[0].max_error_ratio", "must be between 0 and 1, got 2"}}},
		{"max error ratio NaN", replaceLine(9, "    enabled: true\n    max_error_ratio: .nan"), []where{{10, "campaigns[0].max_error_ratio", "must be between 0 and 1, got NaN"}}},
		{"max error ratio Inf", replaceLine(9, "    enabled: true\n    max_error_ratio: .inf"), []where{{10, "campaigns[0].max_error_ratio", "must be between 0 and 1, got +Inf"}}},
		{"max error ratio -Inf", replaceLine(9, "    enabled: true\n    max_error_ratio: -.Inf"), []where{{10, "campaigns[0].max_error_ratio", "must be between 0 and 1, got -Inf"}}},
		{"campaign kind under jobs", strings.Join(strings.Split(goodFile, "\n")[:12], "\n") + "\n    kind: campaign:launch\n    args: {campaign: {name: x, channel: email, template: no-such-template}, run: r}\n    enabled: true\n",
			[]where{{13, "jobs[0].kind", `job kind "campaign:launch" cannot be scheduled under jobs: define the campaign under campaigns`}}},
		{"campaign test under jobs", replaceLine(13, "    kind: campaign:test"), []where{{13, "jobs[0].kind", "define the campaign under campaigns"}}},
		{"campaign dryrun under jobs", replaceLine(13, "    kind: campaign:dryrun"), []where{{13, "jobs[0].kind", "define the campaign under campaigns"}}},
		{"max error ratio text", replaceLine(9, "    enabled: true\n    max_error_ratio: high"), []where{{10, "campaigns[0].max_error_ratio", `must be a number, got "high"`}}},
		{"quiet hours on email", replaceLine(9, "    enabled: true\n    quiet_hours: \"21:00-08:00\""), []where{{10, "campaigns[0].quiet_hours", "applies to sms campaigns only"}}},
		{"validity on email", replaceLine(9, "    enabled: true\n    validity: 48h"), []where{{10, "campaigns[0].validity", "applies to sms campaigns only"}}},
		{"campaigns not a list", "timezone: UTC\ncampaigns: {name: x}\n", []where{{2, "campaigns", "must be a list of entries"}}},
		{"entry not a mapping", "timezone: UTC\njobs:\n  - nightly\n", []where{{3, "jobs[0]", `must be a mapping, got "nightly"`}}},
		{"root not a mapping", "- a\n- b\n", []where{{1, "", "must be a mapping, got a list"}}},
		{"every problem of a file", `timezone: UTC
campaigns:
  - name: first
    cron: "@every 1h"
    channel: fax
    template: promo
    audience: {tags: [x]}
    rate: 0/s
    enabled: true
  - name: second
    cron: "@every 1h"
    channel: sms
    template: promo
    audience: {tags: [x]}
    rate: 1/h
    quiet_hours: "25:00-08:00"
    validity: forever
`, []where{{5, "campaigns[0].channel", "must be email or sms"}, {13, "campaigns[1].template", `no sms template named "promo"`},
			{16, "campaigns[1].quiet_hours", `want HH:MM, got "25:00"`}, {17, "campaigns[1].validity", `must be a positive duration such as 48h, got "forever"`},
			{10, "campaigns[1].enabled", "is required"}}},
		{"zero rate", replaceLine(8, "    rate: 0/s"), []where{{8, "campaigns[0].rate", "must be above 0 and at most 10000, got 0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeDir(t, map[string]string{"shop.yaml": tt.file})
			file := filepath.Join(dir, "shop.yaml")
			s, err := Load(dir, testOptions())
			if err == nil {
				t.Fatalf("Load() = %+v, nil; want errors", s)
			}
			checkErrors(t, err, file, tt.want)
		})
	}
}

// checkErrors compares the errors of a Load with want (in any order), the
// message by substring; FILE in a wanted message stands for file.
func checkErrors(t *testing.T, err error, file string, want []where) {
	t.Helper()
	got := Errors(err)
	if len(got) != len(want) {
		t.Fatalf("Load() errors:\n%v\nwant %d errors: %+v", err, len(want), want)
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			msg := strings.ReplaceAll(w.Msg, "FILE", file)
			if !used[i] && g.File == file && g.Line == w.Line && g.Field == w.Field && strings.Contains(g.Msg, msg) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no error %s:%d: %s: ...%s...; got:\n%v", file, w.Line, w.Field, w.Msg, err)
		}
	}
}

func TestLoadGoodFile(t *testing.T) {
	t.Parallel()
	dir := writeDir(t, map[string]string{"shop.yaml": goodFile, "empty.yml": "# nothing yet\n", "notes.txt": "not yaml: [", ".#shop.yaml": "["})
	s, err := Load(dir, testOptions())
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	file := filepath.Join(dir, "shop.yaml")
	wantCampaigns := []CampaignEntry{{
		Campaign: jobs.Campaign{Name: "spring-sale", Channel: "email", Template: "promo",
			Audience:      jobs.Audience{Tags: []string{"newsletter"}, Languages: []string{"sk", "cs"}},
			RatePerSecond: 50, Timezone: "Europe/Bratislava"},
		Cron: "0 9 * * MON", Enabled: true, File: file, Line: 3,
	}}
	wantJobs := []JobEntry{{Name: "nightly-import", Cron: "@daily", Kind: "customers:import",
		Args: json.RawMessage(`{"import_id":"nightly-{run}","path":"/tmp/customers.csv"}`), Enabled: true, File: file, Line: 11}}
	if diff := cmp.Diff(wantCampaigns, s.Campaigns); diff != "" {
		t.Errorf("Campaigns (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff(wantJobs, s.Jobs); diff != "" {
		t.Errorf("Jobs (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "empty.yml"), file}, s.Files); diff != "" {
		t.Errorf("Files (-want,+got):\n%s", diff)
	}
	if c, ok := s.Campaign("spring-sale"); !ok || c.Line != 3 {
		t.Errorf("Campaign(spring-sale) = %+v, %v", c, ok)
	}
	if _, ok := s.Campaign("nightly-import"); ok {
		t.Errorf("Campaign(nightly-import) found a job")
	}
}

func TestLoadSMSCampaignAndRates(t *testing.T) {
	t.Parallel()
	recipients := filepath.Join(t.TempDir(), "pickup.csv")
	writeFile(t, filepath.Dir(recipients), "pickup.csv", "phone\n+421900000000\n")
	dir := writeDir(t, map[string]string{"sms.yaml": `timezone: Europe/Bratislava
campaigns:
  - name: pickup
    cron: "CRON_TZ=Europe/Prague 0 10 * * *"
    channel: sms
    template: reminder
    audience: {file: ` + recipients + `}
    rate: 360/h
    quiet_hours: "21:00-08:00"
    validity: 48h
    max_error_ratio: 0.1
    enabled: false
`})
	s, err := Load(dir, testOptions())
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	want := jobs.Campaign{Name: "pickup", Channel: "sms", Template: "reminder",
		Audience: jobs.Audience{File: recipients}, RatePerSecond: 0.1, Timezone: "Europe/Bratislava",
		QuietHours: "21:00-08:00", Validity: jobs.Duration(48 * time.Hour), MaxErrorRatio: 0.1}
	if diff := cmp.Diff(want, s.Campaigns[0].Campaign); diff != "" {
		t.Errorf("Campaign (-want,+got):\n%s", diff)
	}
	if got := s.Zone("pickup"); got != "Europe/Prague" {
		t.Errorf("Zone(pickup) = %q, want Europe/Prague", got)
	}
}

func TestLoadDuplicateAcrossFiles(t *testing.T) {
	t.Parallel()
	other := "timezone: UTC\njobs:\n  - name: import-b\n    cron: \"@hourly\"\n    kind: customers:import\n" +
		"    args: {import_id: b, path: /tmp/b.csv}\n    enabled: true\n  - name: spring-sale\n    cron: \"@hourly\"\n" +
		"    kind: customers:import\n    args: {import_id: c, path: /tmp/c.csv}\n    enabled: false\n"
	dir := writeDir(t, map[string]string{"a.yaml": goodFile, "b.yaml": other})
	_, err := Load(dir, testOptions())
	checkErrors(t, err, filepath.Join(dir, "b.yaml"), []where{
		{8, "jobs[1].name", `duplicate name "spring-sale": also defined at ` + filepath.Join(dir, "a.yaml") + ":3"},
	})
}

func TestLoadCollectsErrorsOfEveryFile(t *testing.T) {
	t.Parallel()
	renamed := strings.NewReplacer("spring-sale", "summer-sale", "nightly-import", "hourly-import")
	dir := writeDir(t, map[string]string{"a.yaml": replaceLine(8, "    rate: fast"), "b.yml": renamed.Replace(replaceLine(13, "    kind: nope"))})
	_, err := Load(dir, testOptions())
	got := strings.Split(err.Error(), "\n")
	want := []string{
		filepath.Join(dir, "a.yaml") + `:8: campaigns[0].rate: must look like 50/s, 300/m or 1000/h, got "fast"`,
		filepath.Join(dir, "b.yml") + `:13: jobs[0].kind: unknown job kind "nope" (see ` + "`backoffice jobs kinds`)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load() error lines (-want,+got):\n%s", diff)
	}
}

func TestLoadMissingDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := Load(dir, Options{})
	errs := Errors(err)
	if len(errs) != 1 || errs[0].File != dir || !strings.Contains(errs[0].Msg, "cannot read the schedule directory") {
		t.Errorf("Load(missing dir) = %v", err)
	}
}

func TestLoadWithoutTemplateCheck(t *testing.T) {
	t.Parallel()
	dir := writeDir(t, map[string]string{"shop.yaml": replaceLine(6, "    template: anything")})
	if _, err := Load(dir, Options{}); err != nil {
		t.Errorf("Load() with no HasTemplate: %v", err)
	}
}

// TestExampleFileLoads keeps schedules/example.yaml, which `make run` uses,
// valid. It loads a copy in a directory of its own: the README's
// walk-through adds files to ./schedules, and make test must not fail for
// a user who followed it.
func TestExampleFileLoads(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "example.yaml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, testOptions())
	if err != nil {
		t.Fatalf("Load(example.yaml) error:\n%v", err)
	}
	if len(s.Files) != 1 || len(s.Campaigns) == 0 || len(s.Jobs) == 0 {
		t.Errorf("Load(example.yaml) = %d files, %d campaigns, %d jobs; want example.yaml with both kinds", len(s.Files), len(s.Campaigns), len(s.Jobs))
	}
}

func TestParseStandardRecoversPanics(t *testing.T) {
	t.Parallel()
	if _, err := parseStandard("CRON_TZ=UTC"); err == nil || !strings.Contains(err.Error(), "malformed spec") {
		t.Errorf(`parseStandard("CRON_TZ=UTC") = %v, want a malformed spec error`, err)
	}
}

func TestLoadRefusesTooLargeFile(t *testing.T) {
	t.Parallel()
	// Exactly MaxFileSize bytes loads; one more is refused before parsing.
	pad := func(n int) string {
		body := goodFile + "# "
		return body + strings.Repeat("x", n-len(body)-1) + "\n"
	}
	dir := writeDir(t, map[string]string{"ok.yaml": pad(MaxFileSize)})
	if _, err := Load(dir, testOptions()); err != nil {
		t.Fatalf("Load(file of %d bytes) error: %v", MaxFileSize, err)
	}
	dir = writeDir(t, map[string]string{"big.yaml": pad(MaxFileSize + 1)})
	_, err := Load(dir, testOptions())
	want := fmt.Sprintf("too large (%d bytes, at most %d)", MaxFileSize+1, MaxFileSize)
	errs := Errors(err)
	if len(errs) != 1 || errs[0].File != filepath.Join(dir, "big.yaml") || errs[0].Msg != want {
		t.Fatalf("Load(file of %d bytes) = %v, want one error %q", MaxFileSize+1, err, want)
	}
	if got := errs[0].Error(); !strings.HasSuffix(got, "big.yaml: "+want) {
		t.Errorf("error text = %q, want file: %s", got, want)
	}
}

func TestLoadRefusesTooManyEntries(t *testing.T) {
	t.Parallel()
	jobsFile := func(prefix string, n int) string {
		var b strings.Builder
		b.WriteString("timezone: UTC\njobs:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {name: %s%d, cron: \"@daily\", kind: customers:import, args: {import_id: a, path: /a}, enabled: false}\n", prefix, i)
		}
		return b.String()
	}
	// The limit counts the entries of every file; the file that goes over
	// it is reported at its first entry over the limit.
	// (b.yaml's entries are short and would be invalid: they are never checked.)
	var b strings.Builder
	b.WriteString("timezone: UTC\njobs:\n")
	for i := range MaxEntries {
		fmt.Fprintf(&b, "  - {name: b%d}\n", i)
	}
	dir := writeDir(t, map[string]string{"a.yaml": jobsFile("a", 1), "b.yaml": b.String()})
	_, err := Load(dir, testOptions())
	checkErrors(t, err, filepath.Join(dir, "b.yaml"), []where{{3 + MaxEntries - 1, fmt.Sprintf("jobs[%d]", MaxEntries-1), "too many entries: a schedule directory holds at most 10000"}})

	// At the limit, a file loads.
	data := []byte(goodFile + "  - {name: extra, cron: \"@daily\", kind: customers:import, args: {import_id: a, path: /a}, enabled: false}\n")
	if fs, errs := parseFile("f.yaml", data, testOptions(), 3); len(errs) != 0 || len(fs.jobs) != 2 || len(fs.campaigns) != 1 {
		t.Errorf("parseFile(3 entries, budget 3) = %d campaigns, %d jobs, errors %v; want 1, 2, none", len(fs.campaigns), len(fs.jobs), errs)
	}
	if _, errs := parseFile("f.yaml", data, testOptions(), 0); len(errs) != 1 || errs[0].Field != "campaigns[0]" || errs[0].Line != 3 {
		t.Errorf("parseFile(3 entries, budget 0) errors = %v, want campaigns[0] at line 3", errs)
	}
	if _, errs := parseFile("f.yaml", data, testOptions(), 2); len(errs) != 1 || errs[0].Field != "jobs[1]" || errs[0].Line != 18 {
		t.Errorf("parseFile(3 entries, budget 2) errors = %v, want jobs[1] at line 18", errs)
	}
}
