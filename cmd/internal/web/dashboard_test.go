package web_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shopworks/backoffice/workers/customers"
)

// chromium is the Debian package `chromium`; `make test` installs it.
const chromium = "/usr/bin/chromium"

// newBrowser starts a headless Chromium with a fresh profile, stopped when
// the test ends, and returns a context for its actions bounded to a minute.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found (Debian package chromium; make test installs it): %v", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser; no timeout on this call
		t.Fatalf("start chromium: %v", err)
	}
	stepCtx, cancelSteps := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelSteps)
	return stepCtx
}

// TestDashboardInBrowser logs in through the form in Chromium, reads the
// queues and recent imports tables, and keeps a screenshot.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for range 2 {
		code, up := b.callJSON(t, "POST", "/api/imports", operatorSecret, strings.NewReader(sampleCSV), "Content-Type", "text/csv")
		if code != http.StatusAccepted {
			t.Fatalf("upload = %d %v", code, up)
		}
		ids = append(ids, up["import_id"].(string))
	}
	done := customers.ImportRequest{ImportID: ids[0], Path: filepath.Join(b.dataDir, "imports", ids[0]+".csv")}
	if _, err := b.store.Import(t.Context(), done); err != nil {
		t.Fatalf("run import %s: %v", ids[0], err)
	}
	ctx := newBrowser(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(b.ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token-0123456789"),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if err != nil {
		t.Fatalf("login with a wrong token: %v", err)
	}
	if msg := run(t, ctx, chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, "not valid") {
		t.Errorf("login error = %q, want it to say the token is not valid", msg)
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), operatorSecret),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("queues")),
	)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if title := run(t, ctx, chromedp.Title()); title != "Back office" {
		t.Errorf("page title = %q, want Back office", title)
	}
	queues := run(t, ctx, chromedp.Text(chromedp.ID("queues")))
	for _, q := range []string{"critical", "default", "campaigns", "bulk"} {
		if !strings.Contains(queues, q) {
			t.Errorf("queues table lacks queue %s:\n%s", q, queues)
		}
	}
	imports := run(t, ctx, chromedp.Text(chromedp.ID("imports")))
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(ids[0] + `\s+finished\s+2\s+1\s+0\s+1\s`), // rows, imported, updated, rejected
		regexp.MustCompile(ids[1] + `\s+queued\s+not started`),
	} {
		if !want.MatchString(imports) {
			t.Errorf("recent imports table lacks %s:\n%s", want, imports)
		}
	}

	shot := run(t, ctx, chromedp.FullScreenshot(100))
	png := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(png, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("BACKOFFICE_KEEP_SCREENSHOT"); keep != "" {
		_ = os.WriteFile(keep, shot, 0o600) // for a person to look at
	}
	if len(shot) < 8 || string(shot[1:4]) != "PNG" {
		t.Errorf("screenshot %s is not a PNG (%d bytes)", png, len(shot))
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(b.ts.URL+"/monitor/"), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if title := run(t, ctx, chromedp.Title()); !strings.Contains(strings.ToLower(title), "asynq") {
		t.Errorf("monitor page title = %q, want asynqmon's", title)
	}
}

// run runs one browser action that returns a value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}
