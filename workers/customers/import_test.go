package customers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func writeCSV(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const mixedCSV = "ID,Name,Email,Phone,Language,Timezone,Tags,Email_Consent,SMS_Consent\n" +
	"c-1,Jana Nováková,jana@example.sk,0905 123 456,sk,Europe/Bratislava,vip;newsletter,yes,opted_in\n" +
	"c-2,Petr Novák,petr@example.cz,+420 601 123 456,cs,,newsletter,,no\n" +
	"c-3,Bad Mail,not-an-email,,sk,,,,\n" +
	"c-4,Dup Mail,JANA@example.sk,,sk,,,,\n" +
	"c-5,Bad Phone,,12,sk,,,,\n" +
	"c-6,Bad Lang,,,xx,,,,\n" +
	"c-7,too,few\n" +
	"c-8,\"Multi\nline name\",m@example.pl,+48 512 345 678,pl,,,maybe,\n" +
	",No Id,,,,,,,\n" +
	"c-9,Bad \"quote,,,,,,,\n" +
	"c-10,Bad utf8 \xff,,,,,,,\n" +
	"c-11,Ok,,,en,,,,\n"

var mixedErrors = []string{
	`line 4: field email: "not-an-email" is not a valid e-mail address: missing '@' or angle-addr`,
	`line 5: field email: e-mail address jana@example.sk already belongs to customer c-1`,
	`line 6: field phone: phone number "12": not a valid number`,
	`line 7: field language: must be a two-letter ISO 639-1 code such as sk, cs, pl or en, got "xx"`,
	`line 8: has 3 fields, the header has 9`,
	`line 9: field email_consent: must be opted_in, opted_out, yes, no or empty, got "maybe"`,
	`line 11: field id: is required`,
	`line 12: csv: line 12, column 9: bare " in non-quoted-field`,
	`line 13: field name: is not valid UTF-8`,
}

func TestImportGoodAndBadRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	path := writeCSV(t, mixedCSV)
	sum, err := b.store.Import(ctx, ImportRequest{ImportID: "imp-1", Path: path})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	now := b.clock.Now()
	want := ImportSummary{ImportID: "imp-1", Status: ImportFinished, File: path, Source: "import:imp-1",
		StartedAt: now, FinishedAt: now, ProgressAt: now, Rows: 12, Imported: 3, Rejected: 9, Line: 14}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Fatalf("Import summary (-want,+got):\n%s", diff)
	}
	if stored, err := b.store.ImportSummary(ctx, "imp-1"); err != nil || !cmp.Equal(want, stored) {
		t.Fatalf("ImportSummary = %+v, %v; want %+v", stored, err, want)
	}
	errs, err := b.store.ImportErrors(ctx, "imp-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mixedErrors, errs); diff != "" {
		t.Fatalf("ImportErrors (-want,+got):\n%s", diff)
	}
	if two, _ := b.store.ImportErrors(ctx, "imp-1", 2); !cmp.Equal(mixedErrors[:2], two) {
		t.Errorf("ImportErrors(limit 2) = %q", two)
	}
	c1, err := b.store.Get(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	wantC1 := Customer{ID: "c-1", Name: "Jana Nováková", Email: "jana@example.sk", Phone: "+421905123456", Language: "sk",
		Timezone: "Europe/Bratislava", Tags: []string{"newsletter", "vip"}, CreatedAt: now, UpdatedAt: now,
		Consent: map[Channel]Consent{ChannelEmail: {Status: OptedIn, At: now, Source: "import:imp-1"}, ChannelSMS: {Status: OptedIn, At: now, Source: "import:imp-1"}}}
	if diff := cmp.Diff(wantC1, c1); diff != "" {
		t.Fatalf("c-1 (-want,+got):\n%s", diff)
	}
	if c2, _ := b.store.Get(ctx, "c-2"); c2.Consent[ChannelSMS].Status != OptedOut || len(c2.Consent) != 1 {
		t.Fatalf("c-2 consent = %+v, want only sms opted out", c2.Consent)
	}
	events, _ := b.store.Timeline(ctx, "c-1", 10)

	// The same file again, as another import: nothing changes.
	b.clock.Advance(time.Hour)
	sum2, err := b.store.Import(ctx, ImportRequest{ImportID: "imp-2", Path: path, Source: "crm"})
	if err != nil {
		t.Fatalf("second Import: %v", err)
	}
	if sum2.Rows != 12 || sum2.Imported != 0 || sum2.Updated != 0 || sum2.Unchanged != 3 || sum2.Rejected != 9 {
		t.Fatalf("second import summary = %+v; want 12 rows, 3 unchanged, 9 rejected", sum2)
	}
	if again, _ := b.store.Get(ctx, "c-1"); !cmp.Equal(wantC1, again) {
		t.Fatalf("c-1 changed by a second import of the same file: %+v", again)
	}
	if again, _ := b.store.Timeline(ctx, "c-1", 10); !cmp.Equal(events, again) || len(again) != 2 {
		t.Fatalf("timeline after the second import = %+v; want the same 2 consent events", again)
	}
	// The same import id again only reports.
	sum3, err := b.store.Import(ctx, ImportRequest{ImportID: "imp-1", Path: path})
	if err != nil || !cmp.Equal(want, sum3) {
		t.Fatalf("Import(finished id) = %+v, %v; want the stored summary", sum3, err)
	}
}

func TestImportBOMColumnOrderAndKeptFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1", Name: "Jana", Phone: "+421905123456", Email: "old@example.sk", Language: "sk"})
	path := writeCSV(t, "\xEF\xBB\xBF EMAIL ,Id\r\nnew@example.sk,c-1\r\n,c-2\r\nlater@example.sk,c-2\r\n")
	sum, err := b.store.Import(ctx, ImportRequest{ImportID: "bom", Path: path})
	if err != nil || sum.Rows != 3 || sum.Updated != 2 || sum.Imported != 1 || sum.Rejected != 0 || sum.Line != 4 {
		t.Fatalf("Import = %+v, %v; want 3 rows to line 4: 2 updated, 1 imported", sum, err)
	}
	if got, _ := b.store.Get(ctx, "c-2"); got.Email != "later@example.sk" {
		t.Fatalf("c-2 after two rows in one batch = %+v; want the later row's e-mail", got)
	}
	got, _ := b.store.Get(ctx, "c-1")
	if got.Email != "new@example.sk" || got.Phone != "+421905123456" || got.Name != "Jana" || got.Language != "sk" {
		t.Fatalf("c-1 after import = %+v; want the new e-mail and the other fields kept", got)
	}
	if _, err := b.store.ByEmail(ctx, "old@example.sk"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ByEmail(old) after import: %v, want ErrNotFound", err)
	}
	// An empty cell of a column the file has clears the field.
	path = writeCSV(t, "id,email\nc-1,\n")
	if _, err := b.store.Import(ctx, ImportRequest{ImportID: "clear", Path: path}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.store.Get(ctx, "c-1"); got.Email != "" || got.Phone != "+421905123456" {
		t.Fatalf("c-1 after clearing import = %+v; want no e-mail, phone kept", got)
	}
}

func TestImportRefusesBadFiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	tests := []struct {
		name    string
		content *string // nil: no file
		path    string
		want    string
	}{
		{"missing", nil, filepath.Join(dir, "nope.csv"), "open " + filepath.Join(dir, "nope.csv") + ": no such file or directory"},
		{"directory", nil, dir, "is not a regular file"},
		{"empty", ptr(""), "", "header: the file is empty"},
		{"unknown columns", ptr("id,Foo,email,bar\n"), "", `header: unknown column(s) "foo", "bar"; the known columns are id, name,`},
		{"no id", ptr("name,email\n"), "", "header: column id is required"},
		{"twice", ptr("id,email,EMAIL\n"), "", `header: column "email" appears twice`},
		{"unnamed", ptr("id,,email\n"), "", "header: column 2 has no name"},
		{"bad quote", ptr("id,\"na\"me\n"), "", `header: line 1, column 7: extraneous or missing " in quoted-field`},
	}
	for i, tt := range tests {
		path := tt.path
		if tt.content != nil {
			path = writeCSV(t, *tt.content)
		}
		id := fmt.Sprintf("bad-%d", i)
		_, err := b.store.Import(t.Context(), ImportRequest{ImportID: id, Path: path})
		if !errors.Is(err, ErrBadImport) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Import error = %v; want ErrBadImport containing %q", tt.name, err, tt.want)
			continue
		}
		sum, err := b.store.ImportSummary(t.Context(), id)
		if err != nil || sum.Status != ImportFailed || !strings.Contains(sum.Error, tt.want) || sum.File != path {
			t.Errorf("%s: summary = %+v, %v; want failed with %q", tt.name, sum, err, tt.want)
		}
	}
	if _, err := b.store.ImportSummary(t.Context(), "never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ImportSummary(never) error = %v, want ErrNotFound", err)
	}
}

func ptr[T any](v T) *T { return &v }

// bigCSV returns a file of n data rows; rows whose index is in bad have an
// invalid e-mail address.
func bigCSV(n int, bad func(i int) bool) string {
	var sb strings.Builder
	writeBigCSV(&sb, n, bad)
	return sb.String()
}

// writeBigCSV writes the file bigCSV returns to w.
func writeBigCSV(w io.Writer, n int, bad func(i int) bool) {
	io.WriteString(w, "id,name,email,phone,language,tags,sms_consent\n")
	langs := []string{"sk", "cs", "pl", "en"}
	consent := []string{"yes", "no", ""}
	for i := range n {
		email := fmt.Sprintf("c%d@example.sk", i)
		if bad(i) {
			email = "broken@"
		}
		fmt.Fprintf(w, "c-%d,Customer %d,%s,+4219%08d,%s,t%d;all,%s\n", i, i, email, i, langs[i%4], i%10, consent[i%3])
	}
}

func TestImportResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 5000
	bad := func(i int) bool { return i%1000 == 7 }
	path := writeCSV(t, bigCSV(n, bad))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	checkpoints := 0
	_, err := b.store.Import(ctx, ImportRequest{ImportID: "big", Path: path, Progress: func(ImportSummary) {
		if checkpoints++; checkpoints == 3 {
			cancel() // a crash right after the third checkpoint
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import with the context cancelled midway: error = %v, want context.Canceled", err)
	}
	mid, _ := b.store.ImportSummary(t.Context(), "big")
	if mid.Status != ImportRunning || mid.Rows != 1500 || mid.Line != 1501 {
		t.Fatalf("summary after the stop = %+v; want running at 1500 rows, line 1501", mid)
	}
	var first *ImportSummary
	sum, err := b.store.Import(t.Context(), ImportRequest{ImportID: "big", Path: path, Progress: func(s ImportSummary) {
		if first == nil {
			first = &s
		}
	}})
	if err != nil {
		t.Fatalf("resumed Import: %v", err)
	}
	if first == nil || first.Rows != 2000 {
		t.Fatalf("first checkpoint of the resumed run = %+v; want 2000 rows (resumed after 1500)", first)
	}
	want := ImportSummary{ImportID: "big", Status: ImportFinished, File: path, Source: "import:big",
		Rows: n, Imported: n - 5, Rejected: 5, Line: n + 1, Resumes: 1}
	if diff := cmp.Diff(want, sum, cmpopts.IgnoreFields(ImportSummary{}, "StartedAt", "FinishedAt", "ProgressAt")); diff != "" {
		t.Fatalf("summary after resuming (-want,+got):\n%s", diff)
	}
	errs, _ := b.store.ImportErrors(t.Context(), "big", 0)
	var wantErrs []string
	for i := range n {
		if bad(i) {
			wantErrs = append(wantErrs, fmt.Sprintf(`line %d: field email: "broken@" is not a valid e-mail address: missing '@' or angle-addr`, i+2))
		}
	}
	if diff := cmp.Diff(wantErrs, errs); diff != "" {
		t.Fatalf("ImportErrors after resuming (-want,+got):\n%s", diff)
	}
	if c, _ := b.store.Count(t.Context()); c != n-5 {
		t.Fatalf("Count = %d, want %d", c, n-5)
	}
}

func TestImportStartsOverWhenTheFileChanged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := writeCSV(t, bigCSV(1200, func(int) bool { return false }))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := b.store.Import(ctx, ImportRequest{ImportID: "chg", Path: path, Progress: func(ImportSummary) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import: error = %v, want context.Canceled", err)
	}
	if err := os.WriteFile(path, []byte(bigCSV(700, func(int) bool { return false })), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := b.store.Import(t.Context(), ImportRequest{ImportID: "chg", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 700 || sum.Resumes != 0 || sum.Imported != 200 || sum.Unchanged != 500 {
		t.Fatalf("summary after the file changed = %+v; want a fresh run over 700 rows (500 already there)", sum)
	}
}

func TestImport20kRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 20000
	bad := func(i int) bool { return i%16 == 3 } // 1250 bad rows, more than the 1000 kept
	path := writeCSV(t, bigCSV(n, bad))
	sum, err := b.store.Import(t.Context(), ImportRequest{ImportID: "20k", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != n || sum.Imported != n-1250 || sum.Rejected != 1250 {
		t.Fatalf("summary = %+v; want %d rows, %d imported, 1250 rejected", sum, n, n-1250)
	}
	errs, _ := b.store.ImportErrors(t.Context(), "20k", 0)
	if len(errs) != maxImportErrors || !strings.HasPrefix(errs[0], "line 5: field email:") {
		t.Fatalf("ImportErrors kept %d (first %q); want the first %d, from line 5", len(errs), errs[0], maxImportErrors)
	}
	got, err := b.store.ByPhone(t.Context(), "+421900019999")
	if err != nil || got.ID != "c-19999" || got.Consent[ChannelSMS].Status != OptedOut {
		t.Fatalf("ByPhone(last row) = %+v, %v", got, err)
	}
	vip := 0
	if err := b.store.Scan(t.Context(), Query{Tags: []string{"t3"}, Languages: []string{"en"}}, func(Customer) error { vip++; return nil }); err != nil {
		t.Fatal(err)
	}
	wantVip := 0
	for i := range n {
		if !bad(i) && i%10 == 3 && i%4 == 3 {
			wantVip++
		}
	}
	if vip != wantVip {
		t.Fatalf("Scan(t3, en) after import = %d, want %d", vip, wantVip)
	}
}
