package email

import (
	"context"
	"time"
)

// get returns an idle connection, most recently used first, or dials one.
// The caller holds a slot, so at most Size connections exist.
func (p *Pool) get(ctx context.Context) (*conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		if len(p.idle) == 0 {
			p.mu.Unlock()
			return p.dial(ctx)
		}
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		if time.Since(c.lastUsed) < p.idleTimeout {
			return c, nil
		}
		p.discard(c) // the reaper has not got to it yet
	}
}

// dial opens, greets, secures and authenticates a new connection within
// DialTimeout. Cancelling ctx aborts it.
func (p *Pool) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.dialTimeout)
	defer cancel()
	slot := &dialSlot{}
	ctx = context.WithValue(ctx, dialSlotKey{}, slot)
	stop := context.AfterFunc(ctx, slot.abort)

	client, err := p.client.DialToSMTPClientWithContext(ctx)
	aborted := !stop()
	if err == nil && aborted {
		err = context.Cause(ctx)
	}
	if err != nil {
		slot.close() // go-mail leaves it open when the greeting, TLS or AUTH fails
		if aborted {
			err = &abortedError{cause: context.Cause(ctx), err: err}
		}
		return nil, err
	}
	p.mu.Lock()
	p.nextID++
	c := &conn{id: p.nextID, client: client, raw: slot.conn, pipelining: p.pipelining && canPipeline(client)}
	p.mu.Unlock()
	p.logger.Debug("smtp connection opened", "conn", c.id, "server", p.target.addr())
	return c, nil
}

// abortedError is a dial cut short by the context or DialTimeout.
type abortedError struct{ cause, err error }

func (e *abortedError) Error() string   { return e.cause.Error() + ": " + e.err.Error() }
func (e *abortedError) Unwrap() []error { return []error{e.cause, e.err} }

// put returns c to the idle list after a send that left it usable, or
// closes it.
func (p *Pool) put(c *conn, sendErr error) {
	if c.broken || !reusable(sendErr) {
		c.broken = c.broken || sendErr != nil
		p.discard(c)
		return
	}
	c.lastUsed = time.Now()
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		p.discard(c)
	}
}

// discard closes c, with QUIT when it is still healthy.
func (p *Pool) discard(c *conn) {
	if err := c.close(); err != nil {
		p.logger.Debug("smtp connection close", "conn", c.id, "err", err)
	}
	p.logger.Debug("smtp connection closed", "conn", c.id, "sends", c.sends)
}

// reap closes connections idle for longer than IdleTimeout until Close.
func (p *Pool) reap() {
	defer p.reaped.Done()
	t := time.NewTicker(max(p.idleTimeout/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			for _, c := range p.takeIdle(time.Now().Add(-p.idleTimeout)) {
				p.discard(c)
			}
		}
	}
}

// takeIdle removes and returns the idle connections last used before
// cutoff; a zero cutoff takes them all.
func (p *Pool) takeIdle(cutoff time.Time) []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var stale, fresh []*conn
	for _, c := range p.idle {
		if cutoff.IsZero() || c.lastUsed.Before(cutoff) {
			stale = append(stale, c)
		} else {
			fresh = append(fresh, c)
		}
	}
	p.idle = fresh
	return stale
}

// Close closes the idle connections and stops the pool; connections in use
// are closed when their Send returns. Later Sends fail with ErrPoolClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.reaped.Wait()
	for _, c := range p.takeIdle(time.Time{}) {
		p.discard(c)
	}
	return nil
}
