package campaigns

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/customers"
)

// withTemplates loads the shipped templates plus the override files
// (path under the override dir -> content) and gives them to the engine.
// fallback "" has no fallback language.
func withTemplates(t testing.TB, fallback string, files map[string]string) func(*Config) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, err := templates.Load(templates.Options{Dir: dir, FallbackLanguage: fallback,
		Shop: templates.ShopData{Name: "Shop", URL: "https://shop.example"}})
	if err != nil {
		t.Fatalf("templates.Load: %v", err)
	}
	return func(c *Config) { c.Templates = set }
}

// failureRow is one line of a failures file.
type failureRow struct{ recipient, language, err string }

// readFailures reads a failures file, checking its header.
func readFailures(t *testing.T, path string) []failureRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("failures file: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if lines[0] != strings.TrimSuffix(dryRunFileHeader, "\n") {
		t.Fatalf("failures file %s: header %q", path, lines[0])
	}
	var rows []failureRow
	for i, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			t.Fatalf("failures file %s: line %d: %d fields in %q, want 3", path, i+2, len(f), l)
		}
		rows = append(rows, failureRow{f[0], f[1], f[2]})
	}
	return rows
}

// dryRunFiles lists the failures files in the bundle's data dir.
func (b *bundle) dryRunFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(b.dir, dryRunDir))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestDryRunReportsEveryRenderFailure: a Slovak template that needs a
// field customers do not have fails for every Slovak customer; each one
// is in the failures file with the field, the first ones inline.
func TestDryRunReportsEveryRenderFailure(t *testing.T) {
	t.Parallel()
	b := setup(t, withTemplates(t, "en", map[string]string{
		"promo/sk.email.tmpl": `{{define "subject"}}Zľava pre vás{{end}}
{{define "text"}}Váš kód: {{.Extra.coupon}} {{.UnsubscribeURL}}{{end}}
{{define "html"}}<p>Váš kód: {{.Extra.coupon}}</p>{{end}}`,
	}))
	ctx := t.Context()
	const failing, passing = 130, 20
	var want []string
	for i := range failing {
		id := fmt.Sprintf("sk%03d", i)
		want = append(want, id)
		b.addCustomers(t, customers.Customer{ID: id, Email: id + "@example.sk", Language: "sk", Tags: []string{"n"}})
	}
	for i := range passing {
		lang := []string{"cs", "de"}[i%2] // de falls back to en
		b.addCustomers(t, customers.Customer{ID: fmt.Sprintf("ok%02d", i), Email: fmt.Sprintf("ok%02d@example.sk", i), Language: lang, Tags: []string{"n"}})
	}
	b.addCustomers(t, customers.Customer{ID: "skout", Email: "out@example.sk", Language: "sk", Tags: []string{"n"}, Consent: optedOut(customers.ChannelEmail)})

	rep, err := b.engine.DryRun(ctx, emailCampaign("coupons", jobs.Audience{Tags: []string{"n"}}))
	if err != nil {
		t.Fatal(err)
	}
	const wantErr = "template promo (sk, email): missing field Extra.coupon"
	if rep.Recipients != failing+passing || rep.Rendered != failing+passing || rep.FailuresTotal != failing {
		t.Errorf("recipients %d, rendered %d, failures %d; want %d, %d, %d", rep.Recipients, rep.Rendered, rep.FailuresTotal, failing+passing, failing+passing, failing)
	}
	if diff := cmp.Diff(map[string]int64{"sk: " + wantErr: failing}, rep.FailuresByError); diff != "" {
		t.Errorf("failures by error (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int64{"sk": failing, "cs": passing / 2, "en": passing / 2}, rep.Languages); diff != "" {
		t.Errorf("languages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int64{ReasonOptedOut: 1}, rep.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if len(rep.Failures) != DryRunInlineFailures {
		t.Errorf("%d inline failures, want the first %d", len(rep.Failures), DryRunInlineFailures)
	}
	for _, f := range rep.Failures {
		id, msg, _ := strings.Cut(strings.TrimPrefix(f, "recipient "), ": ")
		if !slices.Contains(want, id) || msg != wantErr {
			t.Errorf("inline failure %q, want a Slovak recipient and %q", f, wantErr)
		}
	}

	if dir := filepath.Join(b.dir, dryRunDir); filepath.Dir(rep.FailuresFile) != dir || !strings.HasPrefix(filepath.Base(rep.FailuresFile), "coupons-20261123T120000Z-") {
		t.Errorf("failures file %q, want coupons-20261123T120000Z-*.tsv in %s", rep.FailuresFile, dir)
	}
	rows := readFailures(t, rep.FailuresFile)
	var got []string
	for _, r := range rows {
		got = append(got, r.recipient)
		if r.language != "sk" || r.err != wantErr {
			t.Errorf("failures file row %+v, want language sk and %q", r, wantErr)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recipients in the failures file (-want +got):\n%s", diff)
	}

	// the report as the CLI and the API read it
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"campaign", "recipients", "skipped", "languages", "rendered", "failures", "failures_total", "failures_by_error", "failures_file", "samples", "estimated_duration"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("report JSON has no %q: %s", k, raw)
		}
	}
	if _, ok := fields["sms"]; ok {
		t.Errorf("e-mail report JSON has sms: %s", raw)
	}

	// an audience without failures writes no file
	before := b.dryRunFiles(t)
	rep, err = b.engine.DryRun(ctx, emailCampaign("clean", jobs.Audience{Tags: []string{"n"}, Languages: []string{"cs"}}))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recipients != passing/2 || rep.FailuresTotal != 0 || rep.FailuresFile != "" || rep.Failures != nil || rep.FailuresByError != nil {
		t.Errorf("clean dry run = %+v, want %d recipients and no failures", rep, passing/2)
	}
	if after := b.dryRunFiles(t); !slices.Equal(before, after) {
		t.Errorf("clean dry run changed the failures files: %v -> %v", before, after)
	}
}

// TestDryRunWithoutDataDir reports the failures without a file.
func TestDryRunWithoutDataDir(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.DataDir = "" })
	b.addCustomers(t, customers.Customer{ID: "a", Email: "a@example.sk", Language: "sk", Tags: []string{"n"}})
	camp := emailCampaign("nodir", jobs.Audience{Tags: []string{"n"}})
	camp.Template = "no-such-template"
	rep, err := b.engine.DryRun(t.Context(), camp)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FailuresTotal != 1 || len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0], "recipient a: template no-such-template") || rep.FailuresFile != "" {
		t.Errorf("dry run without a data dir = %+v", rep)
	}
	if files := b.dryRunFiles(t); files != nil {
		t.Errorf("files written: %v", files)
	}
}

// TestDryRunSMSSegments: Slovak, Polish and Czech letters make a message
// UCS-2, plain English stays GSM-7, and the segments are counted per
// recipient (a long name adds a segment, a name with diacritics turns an
// English message into UCS-2).
func TestDryRunSMSSegments(t *testing.T) {
	t.Parallel()
	b := setup(t, withTemplates(t, "en", map[string]string{
		"flash/sk.sms.tmpl": "Ahoj {{.Customer.FirstName}}, jarný výpredaj: zľava 30 % s kódom JAR30.",
		"flash/pl.sms.tmpl": "Cześć {{.Customer.FirstName}}, wiosenna wyprzedaż: 30% zniżki z kodem WIOSNA30.",
		"flash/en.sms.tmpl": "Hi {{.Customer.FirstName}}, spring sale: 30% off with code SPRING30.",
	}))
	b.writeFile(t, "flash.csv", "phone,name,language\n"+
		"+421905000001,Ján Novák,sk\n"+ // UCS-2, 51 units: 1 segment
		"+421905000002,Maximiliána-Alexandra-Bernadeta Kováčová,sk\n"+ // UCS-2, 79 units: 2 segments of 67
		"+421905000003,John Smith,en\n"+ // GSM-7, 49 septets: 1 segment
		"+421905000004,Ľubomír Hrach,en\n"+ // the name makes it UCS-2, 52 units: 1 segment
		"+421905000005,Łukasz Nowak,pl\n"+ // UCS-2, 62 units: 1 segment
		"+421905000006,Jiří Dvořák,cs\n") // en fallback, "ř" makes it UCS-2, 49 units: 1 segment
	camp := smsCampaign("flash", jobs.Audience{File: "flash.csv"})
	camp.Template = "flash"
	rep, err := b.engine.DryRun(t.Context(), camp)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recipients != 6 || rep.Rendered != 6 || rep.FailuresTotal != 0 {
		t.Errorf("recipients %d, rendered %d, failures %d (%v); want 6, 6, 0", rep.Recipients, rep.Rendered, rep.FailuresTotal, rep.Failures)
	}
	want := &SMSReport{
		Encodings:     map[string]int64{templates.EncodingUCS2: 5, templates.EncodingGSM7: 1},
		SegmentsTotal: 7,
		SegmentsMax:   2,
		Samples: map[string]SMSSample{ // the first recipient of each template language
			"sk": {Encoding: "UCS-2", Segments: 1, Chars: 51},
			"en": {Encoding: "GSM-7", Segments: 1, Chars: 49},
			"pl": {Encoding: "UCS-2", Segments: 1, Chars: 62},
		},
	}
	if diff := cmp.Diff(want, rep.SMS); diff != "" {
		t.Errorf("SMS report (-want +got):\n%s", diff)
	}
	wantSamples := map[string]string{
		"sk": "Ahoj Ján, jarný výpredaj: zľava 30 % s kódom JAR30.",
		"en": "Hi John, spring sale: 30% off with code SPRING30.",
		"pl": "Cześć Łukasz, wiosenna wyprzedaż: 30% zniżki z kodem WIOSNA30.",
	}
	if diff := cmp.Diff(wantSamples, rep.Samples); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"encodings":{"GSM-7":1,"UCS-2":5}`, `"segments_total":7`, `"segments_max":2`, `"sk":{"encoding":"UCS-2","segments":1,"chars":51}`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("report JSON %s lacks %s", raw, s)
		}
	}
}

// TestDryRunRendersEveryRecipient: a file audience larger than the old
// render limit of 10,000 is rendered in full; the rows whose offer is
// empty fail ("subject: renders empty"), wherever they are in the file.
func TestDryRunRendersEveryRecipient(t *testing.T) {
	t.Parallel()
	b := setup(t, withTemplates(t, "en", map[string]string{
		"offer/en.email.tmpl": `{{define "subject"}}{{.Extra.offer}}{{end}}
{{define "text"}}{{.Extra.offer}} {{.UnsubscribeURL}}{{end}}
{{define "html"}}<p>{{.Extra.offer}}</p>{{end}}`,
	}))
	const rows = 10_500
	var file strings.Builder
	file.WriteString("email,offer\n")
	var want []string
	for i := range rows {
		offer := fmt.Sprintf("Offer %d", i)
		if i%70 == 0 || i >= rows-5 {
			offer = ""
			want = append(want, fmt.Sprintf("r%05d@example.sk", i))
		}
		fmt.Fprintf(&file, "r%05d@example.sk,%s\n", i, offer)
	}
	b.writeFile(t, "big.csv", file.String())
	camp := emailCampaign("big", jobs.Audience{File: "big.csv"})
	camp.Template = "offer"
	rep, err := b.engine.DryRun(t.Context(), camp)
	if err != nil {
		t.Fatal(err)
	}
	// a failed recipient counts under their own language, none in this file
	if rep.Recipients != rows || rep.Rendered != rows || rep.Languages["en"] != rows-int64(len(want)) || rep.Languages[""] != int64(len(want)) {
		t.Errorf("recipients %d, rendered %d, languages %v; want %d, %d of which %d failed", rep.Recipients, rep.Rendered, rep.Languages, rows, rows, len(want))
	}
	const wantErr = "template offer (en, email): subject: renders empty"
	if rep.FailuresTotal != int64(len(want)) || rep.FailuresByError[": "+wantErr] != int64(len(want)) {
		t.Errorf("failures %d, by error %v; want %d of %q", rep.FailuresTotal, rep.FailuresByError, len(want), wantErr)
	}
	var got []string
	for _, r := range readFailures(t, rep.FailuresFile) {
		got = append(got, r.recipient)
		if r.err != wantErr {
			t.Errorf("failures file row %+v, want %q", r, wantErr)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" { // in file order
		t.Errorf("recipients in the failures file (-want +got):\n%s", diff)
	}
}

func TestPruneFailureFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var spring []string
	for i := range DryRunFilesKept + 3 {
		spring = append(spring, fmt.Sprintf("spring-202611%02dT120000Z-%d.tsv", i+1, 100+i))
	}
	others := []string{
		"spring-sale-20261101T120000Z-1.tsv", // another campaign
		"spring-notes.txt",                   // not a failures file
		"spring-20261101T120000Z-x.tsv",      // not a name create gives
	}
	current := "spring-20261101T120000Z-99.tsv" // written now under a clock that says otherwise
	for _, name := range append(append(slices.Clone(spring), others...), current) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pruneFailureFiles(dir, "spring", filepath.Join(dir, current), slog.New(slog.DiscardHandler))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := append(append(slices.Clone(spring[len(spring)-(DryRunFilesKept-1):]), others...), current)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files after pruning (-want +got):\n%s", diff)
	}
}

func TestFailureLogBounds(t *testing.T) {
	t.Parallel()
	l := failureLog{}
	for i := range maxReportKeys + 10 {
		if err := l.add(fmt.Sprintf("r%d", i), fmt.Sprintf("l%d", i), fmt.Errorf("bad\tthing\n%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if l.total != maxReportKeys+10 || len(l.byError) != maxReportKeys+1 || l.byError[otherKey] != 10 {
		t.Errorf("total %d, %d keys, other %d; want %d, %d, 10", l.total, len(l.byError), l.byError[otherKey], maxReportKeys+10, maxReportKeys+1)
	}
	if l.inline[0] != "recipient r0: bad thing 0" {
		t.Errorf("inline[0] = %q", l.inline[0])
	}
	for in, want := range map[string]string{
		"a\tb\nc\r\u2028d\x00e": "a b c d e",
		"  ján  ":               "ján",
	} {
		if got := tsvField(in); got != want {
			t.Errorf("tsvField(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"spring-sale": "spring-sale", "..": "campaign", "Spring Sale": "campaign", "a/b": "b", "": "campaign"} {
		if got := safeFileName(in); got != want {
			t.Errorf("safeFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
