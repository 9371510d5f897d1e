package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestMonitorReadOnlyForViewers: asynqmon is behind our auth, read-only for
// viewers and writable for operators.
func TestMonitorReadOnlyForViewers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, _ := b.callJSON(t, "POST", "/api/jobs/customers:import", operatorSecret,
		strings.NewReader(`{"import_id":"mon-1","path":"/srv/m.csv"}`)); code != http.StatusAccepted {
		t.Fatalf("enqueue = %d", code)
	}
	resp, body := b.call(t, "GET", "/monitor/", viewerSecret, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<html") {
		t.Errorf("GET /monitor/ as viewer = %d, want the asynqmon page", resp.StatusCode)
	}
	resp, body = b.call(t, "GET", "/monitor/api/queues", viewerSecret, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"bulk"`) {
		t.Errorf("GET /monitor/api/queues as viewer = %d %s, want the bulk queue", resp.StatusCode, body)
	}
	pause := "/monitor/api/queues/bulk:pause"
	if resp, _ := b.call(t, "POST", pause, viewerSecret, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s as viewer = %d, want 405 (read-only)", pause, resp.StatusCode)
	}
	if resp, body := b.call(t, "POST", pause, operatorSecret, nil); resp.StatusCode/100 != 2 {
		t.Errorf("POST %s as operator = %d %s, want 2xx", pause, resp.StatusCode, body)
	}
	info, err := b.inspector.GetQueueInfo("bulk")
	if err != nil || !info.Paused {
		t.Errorf("queue bulk after the operator paused it: paused=%v err=%v", info != nil && info.Paused, err)
	}
}

// TestMonitorCannotBeFramed: a page of another origin on the same site (a
// sibling subdomain, another port) gets the SameSite=Strict session cookie
// sent along when it frames the monitor, whose buttons delete and run
// tasks. The browser must refuse to show it framed.
func TestMonitorCannotBeFramed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, _ := b.call(t, "GET", "/monitor/", operatorSecret, nil)
	if xfo, csp := resp.Header.Get("X-Frame-Options"), resp.Header.Get("Content-Security-Policy"); xfo != "DENY" || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("GET /monitor/: X-Frame-Options %q, Content-Security-Policy %q; want DENY and frame-ancestors 'none'", xfo, csp)
	}

	framer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`<!doctype html><title>framer</title><iframe src="` + b.ts.URL + `/monitor/"></iframe>`))
	}))
	t.Cleanup(framer.Close)
	ctx := newBrowser(t)
	signIn(t, ctx, b.ts.URL, operatorSecret)
	if err := chromedp.Do(ctx, chromedp.Navigate(framer.URL)); err != nil {
		t.Fatalf("open the framing page: %v", err)
	}
	frameTree := func(ctx context.Context, tg *chromedp.Target) (*page.FrameTree, error) {
		res, err := cdp.Call(ctx, tg, page.GetFrameTree, cdp.Empty{})
		return res.FrameTree, err
	}
	var got string
	eventually(t, "the browser refuses the framed monitor", func() bool {
		tree := run(t, ctx, frameTree)
		if len(tree.ChildFrames) != 1 {
			return false
		}
		f := tree.ChildFrames[0].Frame
		got = f.URL
		return f.UnreachableURL == b.ts.URL+"/monitor/"
	})
	if !strings.HasPrefix(got, "chrome-error:") {
		t.Errorf("the framed monitor is at %q, want Chromium's error page", got)
	}
}
