package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// requestTimeout bounds one request, from writing it to the end of the
// answer.
const requestTimeout = 30 * time.Second

// rawConn is one keep-alive HTTP/1.1 connection, used by one worker at a
// time, as wrk does: the worker writes a whole request with one Write and
// reads the answer with a bufio.Reader it keeps. It costs none of the
// per-request goroutine handoffs and header maps of net/http's client.
// After an error, or an answer with "Connection: close", the connection is
// closed and the next request dials again.
type rawConn struct {
	addr    string // host:port
	timeout time.Duration
	conn    net.Conn
	r       *bufio.Reader
	stop    func() bool // unregisters the close on ctx's end
	dials   int
}

func newRawConn(addr string) *rawConn { return &rawConn{addr: addr, timeout: requestTimeout} }

// do sends req, a whole HTTP/1.1 request, and returns the answer's status
// once its body has been read and thrown away: 0 when no well-formed answer
// came (the connection is then closed). Cancelling ctx closes the
// connection, which ends a request in flight.
func (c *rawConn) do(ctx context.Context, req []byte) int {
	if c.conn == nil {
		if err := c.dial(ctx); err != nil {
			return 0
		}
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		c.close()
		return 0
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return 0
	}
	status, keepAlive, err := readResponse(c.r)
	if err != nil {
		c.close()
		return 0
	}
	if !keepAlive {
		c.close()
	}
	return status
}

func (c *rawConn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: c.timeout} // TCP_NODELAY is Go's default
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.dials++
	c.conn = conn
	if c.r == nil {
		c.r = bufio.NewReaderSize(conn, 4096)
	} else {
		c.r.Reset(conn)
	}
	c.stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
	return nil
}

// close closes the connection, if one is open.
func (c *rawConn) close() {
	if c.conn == nil {
		return
	}
	c.stop()
	_ = c.conn.Close()
	c.conn = nil
}

var (
	errMalformed = errors.New("malformed HTTP/1.x answer")
	errNoLength  = errors.New("answer without Content-Length")
)

// readResponse reads one HTTP/1.x answer from r, skipping interim 1xx
// answers, and discards its body. The answer must give its length in
// Content-Length (the daemon's short answers all do), unless it has no
// body (204, 304). keepAlive says whether the connection may carry the
// next request: not after "Connection: close", nor from an HTTP/1.0 server
// that did not say "Connection: keep-alive".
func readResponse(r *bufio.Reader) (status int, keepAlive bool, err error) {
	for {
		st, keep, length, err := readHead(r)
		if err != nil {
			return 0, false, err
		}
		switch {
		case st >= 100 && st < 200 && st != 101:
			continue // 100 Continue, 103 Early Hints: the answer follows
		case st == 101 || st == 204 || st == 304:
			length = 0
		case length < 0:
			return 0, false, errNoLength
		}
		if _, err := r.Discard(int(length)); err != nil {
			return 0, false, err
		}
		return st, keep, nil
	}
}

// readHead reads an answer's status line and headers; length is -1 when
// there is no Content-Length.
func readHead(r *bufio.Reader) (status int, keepAlive bool, length int64, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, false, 0, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(line[12] != ' ' && line[12] != '\r' && line[12] != '\n') {
		return 0, false, 0, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, false, 0, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		status = 10*status + int(d-'0')
	}
	keepAlive = line[7] != '0'
	length = -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, false, 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return status, keepAlive, length, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, 0, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseLength(value)
			if !ok || (length >= 0 && n != length) {
				return 0, false, 0, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Connection")):
			switch {
			case hasToken(value, "close"):
				keepAlive = false
			case hasToken(value, "keep-alive"):
				keepAlive = true
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, 0, fmt.Errorf("%w (Transfer-Encoding %q)", errNoLength, value)
		}
	}
}

// parseLength parses a Content-Length: decimal digits, at most 18.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range v {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = 10*n + int64(d-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v holds token, in any
// case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}
