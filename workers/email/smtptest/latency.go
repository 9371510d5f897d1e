package smtptest

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// latencyConn delays what crosses it by d in each direction, as a network
// with a round-trip time of 2d does, without limiting how much is in
// flight: a client that pipelines its commands pays one round trip for
// them, one that waits for each reply pays one per command.
type latencyConn struct {
	net.Conn
	d time.Duration

	in      chan chunk // from the client, stamped on arrival
	pending []byte     // what Read has left of the current chunk
	readErr error

	mu     sync.Mutex
	closed bool
	out    chan chunk    // to the client, stamped when written
	sent   chan struct{} // closed when everything written was sent
	once   sync.Once
}

type chunk struct {
	b   []byte
	at  time.Time
	err error
}

func newLatencyConn(c net.Conn, d time.Duration) *latencyConn {
	l := &latencyConn{Conn: c, d: d, in: make(chan chunk, 256), out: make(chan chunk, 256), sent: make(chan struct{})}
	go l.receive()
	go l.send()
	return l
}

func (l *latencyConn) receive() {
	defer close(l.in)
	buf := make([]byte, 32<<10)
	for {
		n, err := l.Conn.Read(buf)
		if n > 0 {
			l.in <- chunk{b: bytes.Clone(buf[:n]), at: time.Now()}
		}
		if err != nil {
			l.in <- chunk{err: err, at: time.Now()}
			return
		}
	}
}

// Read returns what the client sent, d after it arrived.
func (l *latencyConn) Read(p []byte) (int, error) {
	if len(l.pending) == 0 {
		if l.readErr != nil {
			return 0, l.readErr
		}
		c, ok := <-l.in
		if !ok {
			return 0, io.EOF
		}
		time.Sleep(time.Until(c.at.Add(l.d)))
		if c.err != nil {
			l.readErr = c.err
			return 0, c.err
		}
		l.pending = c.b
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

// Write queues p for the client, to be sent d from now.
func (l *latencyConn) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, net.ErrClosed
	}
	l.out <- chunk{b: bytes.Clone(p), at: time.Now()}
	return len(p), nil
}

func (l *latencyConn) send() {
	defer close(l.sent)
	for c := range l.out {
		time.Sleep(time.Until(c.at.Add(l.d)))
		if _, err := l.Conn.Write(c.b); err != nil {
			for range l.out { // drop the rest
			}
			return
		}
	}
}

// Close sends what was written (d at most) and closes the connection.
func (l *latencyConn) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.out)
		l.mu.Unlock()
	})
	<-l.sent
	return l.Conn.Close()
}
