package sms

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
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
// drop. Last, it records whether a failed request may have reached Twilio
// (inDoubt).
type callTransport struct {
	ctx     context.Context
	base    http.RoundTripper
	apiURL  *url.URL // nil: leave twilio-go's URL alone
	status  int
	retryAt string
	// inDoubt: the request was written in full and no response arrived.
	inDoubt bool
	// wrote is set by the trace when the current attempt's request was
	// written in full; http.Transport writes from its own goroutine.
	wrote atomic.Bool
}

// RoundTrip sends a copy of req bound to the call's context.
func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{
		// http.Transport retries a POST on another connection only when
		// nothing of it was written; start each attempt afresh.
		GetConn: func(string) { t.wrote.Store(false) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			t.wrote.Store(info.Err == nil)
		},
	}
	r := req.Clone(httptrace.WithClientTrace(t.ctx, trace))
	if t.apiURL != nil {
		r.URL.Scheme, r.URL.Host, r.Host = t.apiURL.Scheme, t.apiURL.Host, ""
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		// WroteRequest reports the request written into the connection's
		// buffer, before the flush; a failed write to the socket means
		// Twilio never got the whole request.
		t.inDoubt = t.wrote.Load() && !socketWriteFailed(err)
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

// socketWriteFailed reports whether err is a failed write to the
// connection.
func socketWriteFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write"
}
