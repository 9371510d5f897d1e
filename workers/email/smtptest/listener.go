package smtptest

import (
	"net"
	"sync"
	"time"
)

// trackingListener numbers and remembers the connections it accepts, so
// the server can count them and close them all.
type trackingListener struct {
	net.Listener
	latency time.Duration // Options.Latency
	mu      sync.Mutex
	total   int
	open    map[net.Conn]bool
}

// trackedConn is an accepted connection that unregisters itself on Close.
type trackedConn struct {
	net.Conn
	id    int
	l     *trackingListener
	close sync.Once
}

// Accept accepts and registers a connection.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.latency > 0 {
		c = newLatencyConn(c, l.latency)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	tc := &trackedConn{Conn: c, id: l.total, l: l}
	l.open[tc] = true
	return tc, nil
}

// Close closes the connection once and unregisters it.
func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.close.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

func (l *trackingListener) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *trackingListener) openCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.open))
	for c := range l.open {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
