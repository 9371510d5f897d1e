package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopworks/backoffice/workers/customers"
)

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "usage: backoffice [--json] [--url URL] [--token-file FILE] COMMAND ..."},
		{[]string{"nope"}, `backoffice: unknown command "nope"`},
		{[]string{"customers"}, "backoffice: customers: which subcommand?"},
		{[]string{"customers", "delete"}, "backoffice: customers delete: unknown subcommand (want import, show)"},
		{[]string{"customers", "show"}, "backoffice: customers show: want one REF (id, e-mail or phone)"},
		{[]string{"customers", "show", "a", "b"}, "backoffice: customers show: want one REF (id, e-mail or phone)"},
		{[]string{"customers", "show", "a", "--events"}, "flag needs an argument: -events"},
		{[]string{"customers", "import"}, "backoffice: customers import: want one FILE"},
		{[]string{"imports", "show"}, "backoffice: imports show: want one ID"},
		{[]string{"jobs", "show"}, "backoffice: jobs show: want one TASK_ID"},
		{[]string{"jobs", "enqueue"}, "backoffice: jobs enqueue: want KIND and optional args (JSON, @FILE or @-)"},
		{[]string{"jobs", "kinds", "extra"}, "backoffice: jobs kinds: takes no arguments"},
		{[]string{"version", "extra"}, "backoffice: version: takes no arguments"},
	}
	for _, tt := range tests {
		r := runCLI(t, "http://127.0.0.1:1", "", "", tt.args...)
		if r.code != 2 || r.firstErr() != tt.wantErr {
			t.Errorf("backoffice %s = exit %d, stderr %q; want exit 2, %q", strings.Join(tt.args, " "), r.code, r.firstErr(), tt.wantErr)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", "", "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "backoffice ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("backoffice version = %d %q", r.code, r.stdout)
	}
}

func TestJobsCommands(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	op := func(stdin string, args ...string) cliResult { return runCLI(t, api.url, testOperator, stdin, args...) }

	r := op("", "jobs", "kinds")
	if r.code != 0 || !regexp.MustCompile(`(?m)^KIND +QUEUE +RETRIES +TIMEOUT +SUMMARY$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^customers:import +bulk +5 +2h0m0s +stream a CSV`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^sms:inbound +critical +25 +1m0s +\(queued by the daemon only\) file an incoming SMS`).MatchString(r.stdout) {
		t.Errorf("jobs kinds = %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	argsFile := filepath.Join(t.TempDir(), "args.json")
	if err := os.WriteFile(argsFile, []byte(`{"import_id":"from-file","path":"/srv/a.csv"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	enqueues := []struct {
		name, arg, stdin, id string
	}{
		{"inline", `{"import_id":"inline","path":"/srv/a.csv"}`, "", "inline"},
		{"file", "@" + argsFile, "", "from-file"},
		{"stdin", "@-", `{"import_id":"from-stdin","path":"/srv/a.csv"}`, "from-stdin"},
	}
	for _, e := range enqueues {
		r := op(e.stdin, "jobs", "enqueue", "customers:import", e.arg)
		want := fmt.Sprintf("queued customers:import as task customers:import:%s on queue bulk\n", e.id)
		if r.code != 0 || r.stdout != want {
			t.Errorf("%s: jobs enqueue = %d %q %q, want %q", e.name, r.code, r.stdout, r.stderr, want)
		}
	}

	failures := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"jobs", "enqueue", "customers:import", `{"import_id":"inline","path":"/srv/b.csv"}`},
			"backoffice: jobs enqueue customers:import: already queued as task customers:import:inline (backoffice jobs show customers:import:inline)"},
		{[]string{"jobs", "enqueue", "no:such"}, "backoffice: jobs enqueue no:such: unknown job kind (backoffice jobs kinds lists them)"},
		{[]string{"jobs", "enqueue", "customers:import", `{"path":"/a"}`},
			"backoffice: jobs enqueue customers:import: customers:import: field import_id: must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"},
		{[]string{"jobs", "enqueue", "customers:import", "@/no/such/file"},
			"backoffice: jobs enqueue customers:import: args: open /no/such/file: no such file or directory"},
		{[]string{"jobs", "show", "customers:import:nope"}, "backoffice: jobs show customers:import:nope: not found"},
	}
	for _, f := range failures {
		r := op("", f.args...)
		if r.code != 1 || r.stderr != f.wantErr+"\n" {
			t.Errorf("backoffice %s = exit %d, stderr %q; want exit 1, %q", strings.Join(f.args, " "), r.code, r.stderr, f.wantErr)
		}
	}

	r = op("", "jobs", "show", "customers:import:inline")
	for _, want := range []string{`(?m)^STATE +pending$`, `(?m)^RETRIED +0 of 5$`, `(?m)^ARGS +\{"import_id":"inline","path":"/srv/a.csv"\}$`} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("jobs show lacks %s:\n%s", want, r.stdout)
		}
	}
	var shown map[string]any
	r = op("", "--json", "jobs", "show", "customers:import:inline")
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown["state"] != "pending" {
		t.Errorf("--json jobs show = %v, %v:\n%s", shown, err, r.stdout)
	}
}

func TestCustomersShow(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	if _, err := api.store.Upsert(ctx, customers.Customer{ID: "c-7", Name: "Ewa Kowalska", Email: "ewa@example.pl",
		Phone: "+48601234567", Language: "pl", Tags: []string{"vip", "b2b"},
		Consent: map[customers.Channel]customers.Consent{customers.ChannelEmail: {Status: customers.OptedIn, At: at, Source: "import:crm"}}}); err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{"first", "second\twith tab"} {
		if _, _, err := api.store.AddEvent(ctx, "c-7", customers.Event{At: at.Add(time.Duration(i) * time.Hour), Kind: "sms.in", Channel: "sms", Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, api.url, testViewer, "", "customers", "show", "ewa@example.pl", "--events", "1")
	if r.code != 0 {
		t.Fatalf("customers show = %d %s", r.code, r.stderr)
	}
	want := []string{
		"ID             c-7",
		"NAME           Ewa Kowalska",
		"E-MAIL         ewa@example.pl",
		"PHONE          +48601234567",
		"LANGUAGE       pl",
		"TIMEZONE       -",
		"TAGS           b2b, vip",
		"CONSENT EMAIL  opted_in since 2026-11-02 09:30:00Z (import:crm)",
	}
	lines := strings.Split(r.stdout, "\n")
	if diff := cmp.Diff(want, lines[:len(want)]); diff != "" {
		t.Errorf("customers show (-want,+got):\n%s\nfull output:\n%s", diff, r.stdout)
	}
	if !regexp.MustCompile(`(?m)^2026-11-02 10:30:00Z +sms\.in +sms +- +second with tab$`).MatchString(r.stdout) || strings.Contains(r.stdout, "first") {
		t.Errorf("customers show --events 1 should list only the newest event:\n%s", r.stdout)
	}

	r = runCLI(t, api.url, testViewer, "", "customers", "show", "nobody@example.com")
	if r.code != 1 || r.stderr != "backoffice: customers show nobody@example.com: not found\n" {
		t.Errorf("customers show unknown = %d %q", r.code, r.stderr)
	}
	r = runCLI(t, api.url, testViewer, "", "customers", "show", "c-7", "--events", "900")
	if r.code != 1 || !strings.Contains(r.stderr, "events: want a whole number from 0 to 500") {
		t.Errorf("customers show --events 900 = %d %q", r.code, r.stderr)
	}
}

// TestCustomersImportWait uploads a file with --wait while a stand-in for
// the worker runs the import once the file lands.
func TestCustomersImportWait(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	csv := filepath.Join(t.TempDir(), "c.csv")
	content := "id,name,email\nc-1,Jana,jana@example.com\nc-2,Petr,not-an-email\n"
	if err := os.WriteFile(csv, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	worker := make(chan error, 1)
	go func() { worker <- runUploadedImport(t, api) }()
	r := runCLI(t, api.url, testOperator, "", "customers", "import", csv, "--source", "import:test", "--wait")
	if err := <-worker; err != nil {
		t.Fatalf("worker stand-in: %v", err)
	}
	if r.code != 0 {
		t.Fatalf("customers import --wait = %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{`(?m)^STATE +finished$`, `(?m)^ROWS +2$`, `(?m)^IMPORTED +1$`, `(?m)^REJECTED +1$`,
		`(?m)^SOURCE +import:test$`, `(?m)^  line 3: field email: `} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("customers import --wait lacks %s:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "waiting for it to finish") {
		t.Errorf("customers import --wait stderr = %q, want a progress note", r.stderr)
	}
}

// runUploadedImport waits for the one upload of api and imports it the way
// the customers:import worker does.
func runUploadedImport(t *testing.T, api *apiBundle) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(api.dataDir, "imports", "*.csv"))
		if len(files) == 1 {
			id := strings.TrimSuffix(filepath.Base(files[0]), ".csv")
			_, err := api.store.Import(t.Context(), customers.ImportRequest{ImportID: id, Path: files[0], Source: "import:test"})
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no upload within 20s")
}

func TestImportsShowQueued(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	csv := filepath.Join(t.TempDir(), "c.csv")
	if err := os.WriteFile(csv, []byte("id\nc-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, api.url, testOperator, "", "--json", "customers", "import", csv)
	var up struct {
		ImportID string `json:"import_id"`
		TaskID   string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &up); r.code != 0 || err != nil || up.ImportID == "" {
		t.Fatalf("--json customers import = %d %v %q %q", r.code, err, r.stdout, r.stderr)
	}
	r = runCLI(t, api.url, testViewer, "", "imports", "show", up.ImportID)
	for _, want := range []string{`(?m)^IMPORT +` + up.ImportID + `$`, `(?m)^STATE +queued$`, `(?m)^TASK +customers:import:` + up.ImportID + ` \(pending\)$`} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("imports show lacks %s:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = runCLI(t, api.url, testViewer, "", "imports", "show", "20200101T000000Z-deadbeef")
	if r.code != 1 || r.stderr != "backoffice: imports show 20200101T000000Z-deadbeef: not found\n" {
		t.Errorf("imports show unknown = %d %q", r.code, r.stderr)
	}
}

func TestAuthFailuresSayWhatToDo(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testViewer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no token", map[string]string{}, []string{"jobs", "kinds"}, 1,
			"backoffice: jobs kinds: no API token: set BACKOFFICE_TOKEN or pass --token-file (make run writes ./var/operator.token)"},
		{"wrong token", map[string]string{"BACKOFFICE_TOKEN": "wrong-0123456789abcdef"}, []string{"jobs", "kinds"}, 1,
			"backoffice: jobs kinds: the daemon refused the API token from BACKOFFICE_TOKEN: set BACKOFFICE_TOKEN or --token-file to a valid token"},
		{"viewer enqueues", map[string]string{"BACKOFFICE_TOKEN": testViewer}, []string{"jobs", "enqueue", "customers:import"}, 1,
			`backoffice: jobs enqueue customers:import: token "watcher" is a viewer; this needs an operator token (set BACKOFFICE_TOKEN or --token-file to one)`},
		{"operator enqueues an internal kind", map[string]string{"BACKOFFICE_TOKEN": testOperator}, []string{"jobs", "enqueue", "sms:inbound"}, 1,
			"backoffice: jobs enqueue sms:inbound: job kind sms:inbound is queued by the daemon itself (a signed webhook or a campaign launch), not through the API"},
		{"token file wins", map[string]string{"BACKOFFICE_TOKEN": "wrong-0123456789abcdef"}, []string{"--token-file", tokenFile, "jobs", "kinds"}, 0, ""},
		{"token file after the command", map[string]string{}, []string{"jobs", "kinds", "--token-file", tokenFile}, 0, ""},
		{"missing token file", map[string]string{}, []string{"jobs", "kinds", "--token-file", "/no/such"}, 1,
			"backoffice: token file: open /no/such: no such file or directory"},
		{"unreachable", map[string]string{"BACKOFFICE_URL": "http://127.0.0.1:1"}, []string{"jobs", "kinds"}, 1,
			"backoffice: jobs kinds: cannot reach the daemon at http://127.0.0.1:1 (is backofficed running? set BACKOFFICE_URL): dial tcp 127.0.0.1:1: connect: connection refused"},
		{"bad url", map[string]string{"BACKOFFICE_URL": "ftp://x"}, []string{"jobs", "kinds"}, 1,
			`backoffice: daemon URL "ftp://x": want http(s)://host:port (BACKOFFICE_URL or --url)`},
	}
	for _, tt := range tests {
		env := map[string]string{"BACKOFFICE_URL": api.url}
		for k, v := range tt.env {
			env[k] = v
		}
		r := runCLIEnv(t, env, "", tt.args...)
		if r.code != tt.wantCode || strings.TrimSuffix(r.stderr, "\n") != tt.wantErr {
			t.Errorf("%s: exit %d stderr %q; want %d %q", tt.name, r.code, r.stderr, tt.wantCode, tt.wantErr)
		}
	}
}

// TestDefaultTokenFile: without BACKOFFICE_TOKEN, ./var/operator.token (what
// make run writes) is used. t.Chdir keeps this test out of parallel ones.
func TestDefaultTokenFile(t *testing.T) {
	api := startAPI(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "var"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "var", "operator.token"), []byte(testOperator+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	r := runCLIEnv(t, map[string]string{"BACKOFFICE_URL": api.url}, "", "jobs", "enqueue", "customers:import", `{"import_id":"d","path":"/d.csv"}`)
	if r.code != 0 {
		t.Errorf("jobs enqueue with ./var/operator.token = %d %q", r.code, r.stderr)
	}
}

// TestRedirectsAreRefused: the API never redirects, so a redirect is an
// error, not an answer to follow with the token.
func TestRedirectsAreRefused(t *testing.T) {
	t.Parallel()
	// The real API: ServeMux cleans /api/customers/. and redirects.
	api := startAPI(t)
	r := runCLI(t, api.url, testOperator, "", "--json", "customers", "show", ".")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "the daemon answered a redirect to "+api.url+"/api/customers") {
		t.Errorf("customers show . = exit %d, stdout %q, stderr %q; want exit 1 and a redirect error", r.code, r.stdout, r.stderr)
	}

	// A server that redirects everything: the target is never asked.
	var followed atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Add(1)
			_, _ = io.WriteString(w, `{"campaigns":[]}`)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	}))
	t.Cleanup(ts.Close)
	r = runCLI(t, ts.URL, testOperator, "", "--json", "campaign", "list")
	want := "backoffice: campaign list: the daemon answered a redirect to " + ts.URL + "/elsewhere (HTTP 301)"
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, want) || followed.Load() != 0 {
		t.Errorf("campaign list on a redirecting server = exit %d, stdout %q, stderr %q, followed %d; want exit 1, %q",
			r.code, r.stdout, r.stderr, followed.Load(), want)
	}
}

// TestDaemonURLPasswordIsNotPrinted: a bad daemon URL is explained without
// the password it may hold.
func TestDaemonURLPasswordIsNotPrinted(t *testing.T) {
	t.Parallel()
	const password = "S3cretPassw0rd"
	tests := []struct {
		url, wantErr string
	}{
		{"ftp://admin:" + password + "@h", `backoffice: daemon URL "ftp://admin:xxxxx@h": want http(s)://host:port (BACKOFFICE_URL or --url)`},
		{"http://admin:" + password + "@h:port", "backoffice: daemon URL: not a valid URL: want http(s)://host:port (BACKOFFICE_URL or --url)"},
		{"http://admin:" + password + "%zz@h", "backoffice: daemon URL: not a valid URL: want http(s)://host:port (BACKOFFICE_URL or --url)"},
	}
	for _, tt := range tests {
		for _, args := range [][]string{{"--url", tt.url, "campaign", "list"}, {"campaign", "list"}} {
			r := runCLIEnv(t, map[string]string{"BACKOFFICE_URL": tt.url}, "", args...)
			if r.code != 1 || strings.Contains(r.stdout+r.stderr, password) || strings.TrimSuffix(r.stderr, "\n") != tt.wantErr {
				t.Errorf("backoffice %q = exit %d, stderr %q; want exit 1, %q and no password", args, r.code, r.stderr, tt.wantErr)
			}
		}
	}
}

// An import whose task was archived after the import had started (the
// daemon died or the task panicked on its last attempt, or an operator
// archived it) will never finish: --wait says so instead of polling for
// ever.
func TestCustomersImportWaitStopsWhenTheTaskIsArchivedMidway(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	csv := filepath.Join(t.TempDir(), "c.csv")
	if err := os.WriteFile(csv, []byte("id\nc-1\nc-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, api.url, testOperator, "", "--json", "customers", "import", csv)
	var up struct {
		ImportID string `json:"import_id"`
		TaskID   string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &up); r.code != 0 || err != nil {
		t.Fatalf("--json customers import = %d %v %q %q", r.code, err, r.stdout, r.stderr)
	}
	// The worker stops after the first row, leaving the import running.
	ctx, stop := context.WithCancel(t.Context())
	path := filepath.Join(api.dataDir, "imports", up.ImportID+".csv")
	_, err := api.store.Import(ctx, customers.ImportRequest{ImportID: up.ImportID, Path: path, BatchSize: 1,
		Progress: func(customers.ImportSummary) { stop() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import = %v, want it stopped midway", err)
	}
	if err := api.inspector.ArchiveTask("bulk", up.TaskID); err != nil {
		t.Fatal(err)
	}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		getenv: func(k string) string {
			return map[string]string{"BACKOFFICE_URL": api.url, "BACKOFFICE_TOKEN": testViewer}[k]
		}}
	c, err := a.newClient()
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, _, err = waitImport(wctx, c, up.ImportID)
	if err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("waitImport on an import whose task is archived = %v; want it to say the task gave up", err)
	}
}

// TestCustomersImportSendsFileTime: the upload carries the file's time,
// and the stored file has it, so that the import dates the file's consent
// cells from when the file was written rather than from the upload.
func TestCustomersImportSendsFileTime(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	csv := filepath.Join(t.TempDir(), "c.csv")
	if err := os.WriteFile(csv, []byte("id,email_consent\nc-1,yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	written := time.Date(2026, 11, 2, 9, 30, 0, 123456789, time.UTC)
	if err := os.Chtimes(csv, written, written); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, api.url, testOperator, "", "--json", "customers", "import", csv)
	var up struct {
		ImportID string `json:"import_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &up); r.code != 0 || err != nil || up.ImportID == "" {
		t.Fatalf("--json customers import = %d %v %q %q", r.code, err, r.stdout, r.stderr)
	}
	info, err := os.Stat(filepath.Join(api.dataDir, "imports", up.ImportID+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !info.ModTime().Equal(written) {
		t.Errorf("stored upload dated %v, want the file's time %v", info.ModTime().UTC(), written)
	}
}
