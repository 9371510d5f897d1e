package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/redistest"
)

// Tokens of the end-to-end daemon.
const (
	e2eOperator = "e2e-operator-secret-0123456789"
	e2eViewer   = "e2e-viewer-secret-0123456789ab"
)

// e2eCSV has two good rows and three bad ones (lines 4, 5 and 6).
const e2eCSV = `id,name,email,phone,language,timezone,tags,email_consent,sms_consent
c-1,Jana Nováková,jana@example.com,+421905123456,sk,Europe/Bratislava,vip;newsletter,yes,no
c-2,Petr Svoboda,petr@example.cz,+420601123456,cs,Europe/Prague,,yes,
c-3,Bad Mail,not-an-email,,en,,,,
c-4,Bad Phone,bad@example.com,12,en,,,,
c-5,Bad Zone,zone@example.com,,en,Mars/Olympus,,,
`

// TestEndToEnd builds both binaries, runs the daemon on a real Redis as a
// subprocess and drives it with the CLI the way an operator would.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	bin := buildBinaries(t)
	d := startDaemon(t, bin)
	cli := func(token string, args ...string) cliResult { return runCLI(t, bin, d.url, token, args...) }

	csvFile := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(csvFile, []byte(e2eCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(e2eOperator, "customers", "import", csvFile, "--source", "import:e2e", "--wait")
	r.wantCode(t, 0)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^STATE +finished$`),
		regexp.MustCompile(`(?m)^ROWS +5$`),
		regexp.MustCompile(`(?m)^IMPORTED +2$`),
		regexp.MustCompile(`(?m)^REJECTED +3$`),
		regexp.MustCompile(`(?m)^SOURCE +import:e2e$`),
		regexp.MustCompile(`(?m)^  line 4: field email: `),
		regexp.MustCompile(`(?m)^  line 5: field phone: `),
		regexp.MustCompile(`(?m)^  line 6: field timezone: `),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("customers import --wait output lacks %s:\n%s", want, r.stdout)
		}
	}
	importID := regexp.MustCompile(`(?m)^IMPORT +(\S+)$`).FindStringSubmatch(r.stdout)
	if importID == nil {
		t.Fatalf("customers import --wait printed no import id:\n%s", r.stdout)
	}

	for _, ref := range []string{"jana@example.com", "+421905123456", "0905 123 456", "c-1"} {
		r := cli(e2eOperator, "customers", "show", ref)
		r.wantCode(t, 0)
		for _, want := range []string{"Jana Nováková", "jana@example.com", "+421905123456", "newsletter, vip", "opted_in"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("customers show %s lacks %q:\n%s", ref, want, r.stdout)
			}
		}
	}

	r = cli(e2eViewer, "jobs", "show", "customers:import:"+importID[1])
	r.wantCode(t, 0)
	if !regexp.MustCompile(`(?m)^STATE +completed$`).MatchString(r.stdout) {
		t.Errorf("jobs show of the import task is not completed:\n%s", r.stdout)
	}

	checkJSONOutput(t, cli)
	checkFailures(t, cli)

	d.stop(t)
	logs := d.logs.String()
	if !strings.Contains(logs, `"caller":"ops"`) || !strings.Contains(logs, `"caller":"viewer"`) {
		t.Errorf("the daemon's request log lines do not name the callers' tokens")
	}
	for _, secret := range []string{e2eOperator, e2eViewer} {
		if strings.Contains(logs, secret) {
			t.Errorf("the daemon's output contains a token secret")
		}
	}
}

// checkJSONOutput checks that --json prints the API's JSON, before or after
// the command.
func checkJSONOutput(t *testing.T, cli func(string, ...string) cliResult) {
	t.Helper()
	var shown struct {
		Customer struct {
			ID   string   `json:"id"`
			Tags []string `json:"tags"`
		} `json:"customer"`
	}
	r := cli(e2eViewer, "--json", "customers", "show", "petr@example.cz")
	r.wantCode(t, 0)
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown.Customer.ID != "c-2" {
		t.Errorf("--json customers show = %+v, %v; want customer c-2:\n%s", shown, err, r.stdout)
	}
	var kinds struct {
		Kinds []struct {
			Kind string `json:"kind"`
		} `json:"kinds"`
	}
	r = cli(e2eViewer, "jobs", "kinds", "--json")
	r.wantCode(t, 0)
	if err := json.Unmarshal([]byte(r.stdout), &kinds); err != nil || len(kinds.Kinds) == 0 {
		t.Errorf("jobs kinds --json = %+v, %v:\n%s", kinds, err, r.stdout)
	}
}

// checkFailures checks that failures are one line on stderr with the right
// exit status.
func checkFailures(t *testing.T, cli func(string, ...string) cliResult) {
	t.Helper()
	tests := []struct {
		name     string
		token    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"wrong token", "wrong-secret-0123456789abcdef", []string{"customers", "show", "c-1"}, 1,
			"backoffice: customers show c-1: the daemon refused the API token from BACKOFFICE_TOKEN: set BACKOFFICE_TOKEN or --token-file to a valid token"},
		{"unknown customer", e2eViewer, []string{"customers", "show", "nobody@example.com"}, 1,
			"backoffice: customers show nobody@example.com: not found"},
		{"viewer enqueues", e2eViewer, []string{"jobs", "enqueue", "customers:import", `{"import_id":"x","path":"/x.csv"}`}, 1,
			`backoffice: jobs enqueue customers:import: token "viewer" is a viewer; this needs an operator token (set BACKOFFICE_TOKEN or --token-file to one)`},
		{"bad args", e2eOperator, []string{"jobs", "enqueue", "customers:import", `{"import_id":"x","path":"x.csv"}`}, 1,
			`backoffice: jobs enqueue customers:import: customers:import: field path: must be an absolute path on the daemon's disk, got "x.csv"`},
		{"usage", e2eViewer, []string{"customers", "show"}, 2, "backoffice: customers show: want one REF (id, e-mail or phone)"},
	}
	for _, tt := range tests {
		r := cli(tt.token, tt.args...)
		if r.code != tt.wantCode {
			t.Errorf("%s: exit status %d, want %d; stderr:\n%s", tt.name, r.code, tt.wantCode, r.stderr)
		}
		if first, _, _ := strings.Cut(r.stderr, "\n"); first != tt.wantErr {
			t.Errorf("%s: stderr first line\n  %s\nwant\n  %s", tt.name, first, tt.wantErr)
		}
		if tt.wantCode == 1 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: stderr has more than one line:\n%s", tt.name, r.stderr)
		}
	}
}

// buildBinaries builds backofficed and backoffice into a temp dir.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-o", dir+string(filepath.Separator),
		"github.com/shopworks/backoffice/cmd/backofficed", "github.com/shopworks/backoffice/cmd/backoffice")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// e2eDaemon is a backofficed subprocess.
type e2eDaemon struct {
	cmd    *exec.Cmd
	url    string
	logs   *lockedBuffer
	exited chan error
	once   sync.Once
}

// startDaemon starts backofficed on a fresh redis-server and an ephemeral
// port, and waits until /readyz answers 200.
func startDaemon(t *testing.T, bin string) *e2eDaemon {
	t.Helper()
	return startDaemonEnv(t, bin, daemonEnv(t, redistest.Start(t).URL(), nil))
}

// daemonEnv is the environment of a daemon on redisURL with an ephemeral
// port and fresh data and schedule dirs; extra adds or overrides variables.
// Start several daemons with one environment to share their dirs.
func daemonEnv(t *testing.T, redisURL string, extra map[string]string) []string {
	t.Helper()
	vars := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": t.TempDir(),
		"BACKOFFICE_REDIS_URL":          redisURL,
		"BACKOFFICE_HTTP_ADDR":          "127.0.0.1:0",
		"BACKOFFICE_DATA_DIR":           t.TempDir(),
		"BACKOFFICE_SCHEDULES_DIR":      t.TempDir(),
		"BACKOFFICE_API_TOKENS":         "ops:operator:" + e2eOperator + ",viewer:viewer:" + e2eViewer,
		"BACKOFFICE_UNSUBSCRIBE_SECRET": "e2e-unsubscribe-secret-0123456789abcdef",
		"BACKOFFICE_SHUTDOWN_TIMEOUT":   "5s",
	}
	maps.Copy(vars, extra)
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// startDaemonEnv starts backofficed with env (see daemonEnv) and waits
// until /readyz answers 200. It is killed in t.Cleanup if still running.
func startDaemonEnv(t *testing.T, bin string, env []string) *e2eDaemon {
	t.Helper()
	d := &e2eDaemon{logs: &lockedBuffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(filepath.Join(bin, "backofficed"))
	d.cmd.Env, d.cmd.Stdout, d.cmd.Stderr = env, d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start backofficed: %v", err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.once.Do(func() { _ = d.cmd.Process.Kill(); <-d.exited })
		if t.Failed() {
			t.Logf("backofficed output:\n%s", d.logs.String())
		}
	})
	d.url = "http://" + d.waitAddr(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(d.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("backofficed: /readyz not 200 within 30s (last error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAddr reads the listen address from the daemon's start-up log line.
func (d *e2eDaemon) waitAddr(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(d.logs.String()))
		for sc.Scan() {
			var rec struct {
				Msg      string `json:"msg"`
				HTTPAddr string `json:"http_addr"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "backofficed starting" && rec.HTTPAddr != "" {
				return rec.HTTPAddr
			}
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			t.Fatalf("backofficed exited at start: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("backofficed logged no listen address within 30s")
	return ""
}

// stop sends SIGTERM and checks that the daemon exits 0.
func (d *e2eDaemon) stop(t *testing.T) {
	t.Helper()
	d.once.Do(func() {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		select {
		case err := <-d.exited:
			if err != nil {
				t.Errorf("backofficed after SIGTERM: %v, want exit status 0", err)
			}
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("backofficed did not exit within 30s of SIGTERM")
		}
	})
}

// cliResult is what one run of the CLI printed.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r cliResult) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("backoffice %s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
}

// runCLI runs backoffice against url with token in BACKOFFICE_TOKEN, from a
// temp dir (so no ./var/operator.token is picked up).
func runCLI(t *testing.T, bin, url, token string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "backoffice"), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "BACKOFFICE_URL=" + url, "BACKOFFICE_TOKEN=" + token}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("backoffice %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// lockedBuffer collects a subprocess's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
