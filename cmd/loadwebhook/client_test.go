package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is an httptest server that counts the connections it accepts.
type rawServer struct {
	*httptest.Server
	conns atomic.Int64
}

func newRawServer(t *testing.T, h http.HandlerFunc) *rawServer {
	s := &rawServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *rawServer) addr() string { return strings.TrimPrefix(s.URL, "http://") }

// post is a whole POST request of body to path.
func post(path, body string) []byte {
	return []byte("POST " + path + " HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// TestRawConnStatuses sends requests answered with various statuses and
// bodies over one connection: each status comes back, each body is skipped
// whole, so the connection stays in step and is never redialled.
func TestRawConnStatuses(t *testing.T) {
	t.Parallel()
	s := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		if r.ContentLength != 3 {
			status = http.StatusLengthRequired
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(strings.Repeat("x", size)))
	})
	c := newRawConn(s.addr())
	defer c.close()
	for _, tc := range []struct{ status, size int }{
		{200, 0}, {200, 61}, {403, 10}, {503, 20}, {204, 0}, {304, 0}, {200, 200_000}, {418, 5}, {200, 4095}, {200, 4097},
	} {
		path := "/hook?status=" + strconv.Itoa(tc.status) + "&size=" + strconv.Itoa(tc.size)
		if got := c.do(t.Context(), post(path, "a=b")); got != tc.status {
			t.Errorf("status %d with a %d-byte body: got %d", tc.status, tc.size, got)
		}
	}
	if c.dials != 1 || s.conns.Load() != 1 {
		t.Errorf("%d dials, server saw %d connections; want one, kept alive", c.dials, s.conns.Load())
	}
}

// TestRawConnKeepAlive sends many requests over one connection and checks
// the server read each body whole.
func TestRawConnKeepAlive(t *testing.T) {
	t.Parallel()
	var bodies atomic.Int64
	s := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		var buf strings.Builder
		if _, err := bufio.NewReader(r.Body).WriteTo(&buf); err != nil || buf.String() != "From=%2B421905000001&Body=hi" {
			http.Error(w, "bad body "+buf.String(), http.StatusBadRequest)
			return
		}
		bodies.Add(1)
		_, _ = w.Write([]byte(emptyAnswer))
	})
	c := newRawConn(s.addr())
	defer c.close()
	req := post("/webhooks/twilio/sms", "From=%2B421905000001&Body=hi")
	const n = 2000
	for i := range n {
		if got := c.do(t.Context(), req); got != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, got)
		}
	}
	if bodies.Load() != n || c.dials != 1 || s.conns.Load() != 1 {
		t.Errorf("%d requests: server read %d bodies over %d connections, %d dials; want all over one", n, bodies.Load(), s.conns.Load(), c.dials)
	}
}

const emptyAnswer = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// TestRawConnClose checks that an answer with "Connection: close" is read,
// and the next request goes over a new connection.
func TestRawConnClose(t *testing.T) {
	t.Parallel()
	s := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = w.Write([]byte(emptyAnswer))
	})
	c := newRawConn(s.addr())
	defer c.close()
	for i, path := range []string{"/close", "/close", "/keep", "/keep", "/close", "/keep"} {
		if got := c.do(t.Context(), post(path, "")); got != http.StatusOK {
			t.Errorf("request %d to %s: status %d, want 200", i, path, got)
		}
	}
	// a new connection after each of the 3 closes
	if c.dials != 4 || s.conns.Load() != 4 {
		t.Errorf("%d dials, server saw %d connections; want 4: the first, one after each close", c.dials, s.conns.Load())
	}
}

// TestRawConnNoAnswer checks the requests that get no usable answer: the
// server drops the connection, answers without a length, or does not
// answer within the timeout. Each is status 0 and the next request dials
// again and succeeds.
func TestRawConnNoAnswer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/drop":
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		case "/chunked":
			_, _ = w.Write([]byte("part"))
			_ = http.NewResponseController(w).Flush() // no Content-Length now
		case "/garbage":
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = buf.WriteString("SMTP/2.0 hello\r\n\r\n")
				_ = buf.Flush()
				_ = conn.Close()
			}
		case "/stall":
			<-release
		}
		_, _ = w.Write([]byte(emptyAnswer))
	})
	t.Cleanup(func() { close(release) }) // before s.Close, which waits for handlers
	c := newRawConn(s.addr())
	defer c.close()
	for i, path := range []string{"/drop", "/chunked", "/garbage", "/stall"} {
		if path == "/stall" {
			c.timeout = 100 * time.Millisecond
		}
		if got := c.do(t.Context(), post(path, "")); got != 0 {
			t.Errorf("%s: status %d, want 0 (no answer)", path, got)
		}
		c.timeout = requestTimeout
		if got := c.do(t.Context(), post("/ok", "")); got != http.StatusOK {
			t.Errorf("the request after %s: status %d, want 200", path, got)
		}
		if want := i + 2; c.dials != want {
			t.Errorf("after %s: %d dials, want %d (a new connection for the request after it)", path, c.dials, want)
		}
	}
}

// TestRawConnCancel checks that cancelling the context ends a request in
// flight with status 0.
func TestRawConnCancel(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}), make(chan struct{})
	s := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-arrived; cancel() }()
	c := newRawConn(s.addr())
	if got := c.do(ctx, post("/stall", "")); got != 0 {
		t.Errorf("cancelled request: status %d, want 0", got)
	}
	if c.conn != nil {
		t.Error("cancelled request: connection kept, want it closed")
	}
	if got := c.do(ctx, post("/stall", "")); got != 0 || c.dials != 1 {
		t.Errorf("request on a cancelled context: status %d after %d dials, want 0 without dialling", got, c.dials)
	}
}

func TestReadResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer string
		status       int
		keepAlive    bool
		wantErr      bool
	}{
		{"keep-alive", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 200, true, false},
		{"no reason phrase", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", 503, true, false},
		{"bare LF", "HTTP/1.1 403 Forbidden\ncontent-length: 2\n\nno", 403, true, false},
		{"close", "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", 200, false, false},
		{"close in a list", "HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n", 200, false, false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, false, false},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, true, false},
		{"100 Continue first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 201, true, false},
		{"204 without length", "HTTP/1.1 204 No Content\r\n\r\n", 204, true, false},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 200, true, false},
		{"no length", "HTTP/1.1 200 OK\r\n\r\nabc", 0, false, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0, false, true},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0, false, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, false, true},
		{"HTTP/2", "HTTP/2 200\r\nContent-Length: 0\r\n\r\n", 0, false, true},
		{"letters for status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", 0, false, true},
		{"long status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", 0, false, true},
		{"header without colon", "HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n", 0, false, true},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, false, true},
		{"headers cut short", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", 0, false, true},
		{"nothing", "", 0, false, true},
	} {
		// A good answer twice: after the first, the reader must be at the second.
		in := tc.answer
		if !tc.wantErr {
			in += tc.answer
		}
		r := bufio.NewReader(strings.NewReader(in))
		for i := range 2 {
			status, keepAlive, err := readResponse(r)
			if status != tc.status || keepAlive != tc.keepAlive || (err != nil) != tc.wantErr {
				t.Errorf("%s, answer %d: readResponse = %d, keep-alive %v, %v; want %d, %v, error %v",
					tc.name, i+1, status, keepAlive, err, tc.status, tc.keepAlive, tc.wantErr)
			}
			if tc.wantErr {
				break
			}
		}
	}
}
