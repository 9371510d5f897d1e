package sms

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
)

// maxResponseBody is the most of a Twilio response kept; Messages API
// answers are a few KiB.
const maxResponseBody = 1 << 20

// callTransport is the RoundTripper of one Send. twilio-go builds its
// requests with context.Background(), so this is where the request gets
// the caller's context (cancellation, deadline). It also points the request
// at another API base URL when one is configured, reads the whole response
// body so the connection can be reused (twilio-go leaves error bodies
// unclosed) and keeps the status and Retry-After, which twilio-go's errors
// drop.
type callTransport struct {
	ctx     context.Context
	base    http.RoundTripper
	apiURL  *url.URL // nil: leave twilio-go's URL alone
	status  int
	retryAt string
}

// RoundTrip sends a copy of req bound to the call's context.
func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(t.ctx)
	if t.apiURL != nil {
		r.URL.Scheme, r.URL.Host, r.Host = t.apiURL.Scheme, t.apiURL.Host, ""
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	t.status, t.retryAt = resp.StatusCode, resp.Header.Get("Retry-After")
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}
