package email

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// PoolOptions configure a Pool. Zero values get the defaults noted.
type PoolOptions struct {
	// URL is smtp://[user:pass@]host[:port][?tls=mandatory-starttls|starttls|none|tls&auth=plain|login|cram-md5|scram-sha-256&pipelining=on|off]
	// or smtps://... (see parseSMTPURL). Required.
	URL string
	// Size is the most connections open at once, and so the most
	// messages in flight. Default 4.
	Size int
	// HELO is the name sent in EHLO. Default: the machine's host name.
	HELO string
	// DialTimeout bounds connecting, TLS and AUTH. Default 10s.
	DialTimeout time.Duration
	// SendTimeout bounds one message's whole SMTP transaction. Default 30s.
	SendTimeout time.Duration
	// IdleTimeout closes a connection unused this long. Default 30s.
	IdleTimeout time.Duration
	// TLSConfig verifies the server (for example a private CA). Default:
	// system roots, server name from the URL.
	TLSConfig *tls.Config
	// Logger gets connection events at debug level. Default: discard.
	Logger *slog.Logger
}

// Pool sends messages over at most Size SMTP connections, dialled lazily,
// reused across Sends and closed after IdleTimeout unused. A connection
// that failed is closed and replaced; one that went away while idle is
// replaced transparently, before the message's transaction began, so the
// message is never sent twice by the pool. Pool is safe for concurrent use.
type Pool struct {
	target      smtpTarget
	client      *gomail.Client // settings shared by every connection
	tlsConfig   *tls.Config
	dialTimeout time.Duration
	idleTimeout time.Duration
	sendTimeout time.Duration
	pipelining  bool // pipeline each transaction where the server allows
	logger      *slog.Logger
	slots       chan struct{}

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
	nextID uint64

	stop   chan struct{}
	reaped sync.WaitGroup
}

// NewPool checks o and returns a pool. It does not dial: the first Send
// does. Close it when done.
func NewPool(o PoolOptions) (*Pool, error) {
	target, err := parseSMTPURL(o.URL)
	if err != nil {
		return nil, err
	}
	if err := checkPoolOptions(o); err != nil {
		return nil, err
	}
	p := &Pool{
		target:      target,
		tlsConfig:   tlsConfigFor(o.TLSConfig, target.host),
		dialTimeout: cmp.Or(o.DialTimeout, 10*time.Second),
		idleTimeout: cmp.Or(o.IdleTimeout, 30*time.Second),
		sendTimeout: cmp.Or(o.SendTimeout, 30*time.Second),
		pipelining:  !target.lockstep,
		logger:      cmp.Or(o.Logger, slog.New(slog.DiscardHandler)),
		slots:       make(chan struct{}, cmp.Or(o.Size, 4)),
		stop:        make(chan struct{}),
	}
	if p.client, err = gomail.NewClient(target.host, p.clientOptions(o)...); err != nil {
		return nil, fmt.Errorf("email: smtp client: %w", err)
	}
	p.reaped.Add(1)
	go p.reap()
	return p, nil
}

func checkPoolOptions(o PoolOptions) error {
	switch {
	case o.Size < 0:
		return fmt.Errorf("email: pool Size %d: want 1 or more (0 means 4)", o.Size)
	case o.DialTimeout < 0 || o.SendTimeout < 0 || o.IdleTimeout < 0:
		return errors.New("email: pool timeouts: want positive durations (0 means the default)")
	case strings.ContainsFunc(o.HELO, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return fmt.Errorf("email: pool HELO %q: want a host name", o.HELO)
	}
	return nil
}

func tlsConfigFor(base *tls.Config, host string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

func (p *Pool) clientOptions(o PoolOptions) []gomail.Option {
	t := p.target
	opts := []gomail.Option{
		gomail.WithPort(t.port),
		gomail.WithTimeout(p.sendTimeout),
		gomail.WithTLSConfig(p.tlsConfig),
		gomail.WithDialContextFunc(p.dialContext),
		// No NOOP before each message and no RSET after each accepted
		// one: a completed transaction leaves the session ready for the
		// next MAIL FROM (RFC 5321 4.1.1.4), and a connection that went
		// away is detected at MAIL FROM and replaced (see Send): four round
		// trips per message instead of six. After a refused MAIL or RCPT
		// go-mail still sends RSET.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
		gomail.WithSMTPAuth(t.auth),
	}
	switch t.tls {
	case tlsMandatoryStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case tlsStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case tlsNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case tlsImplicit:
		// dialContext does the TLS handshake; WithSSL stops go-mail
		// from trying STARTTLS on top of it.
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if t.user != "" {
		opts = append(opts, gomail.WithUsername(t.user), gomail.WithPassword(t.password))
	}
	if o.HELO != "" {
		opts = append(opts, gomail.WithHELO(o.HELO))
	}
	return opts
}

// dialContext is go-mail's dialer: TCP, wrapped so the pool can abort it,
// then TLS for smtps.
func (p *Pool) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	tcp, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &abortConn{Conn: tcp}
	if slot, ok := ctx.Value(dialSlotKey{}).(*dialSlot); ok {
		slot.set(c)
	}
	if p.target.tls != tlsImplicit {
		return c, nil
	}
	tc := tls.Client(c, p.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return tc, nil
}

// Send delivers m over a pooled connection. It waits for a free connection
// while ctx allows; cancelling ctx aborts the SMTP dialogue. An error is a
// *SendError (or wraps ErrInvalidMessage); IsPermanent classifies it.
func (p *Pool) Send(ctx context.Context, m *Message) error {
	msg, err := build(m, time.Now())
	if err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return &SendError{Text: "waiting for a connection: " + ctx.Err().Error(), Temporary: true, To: m.To, err: ctx.Err()}
	}
	defer func() { <-p.slots }()

	c, err := p.get(ctx)
	if err != nil {
		return connectFailure(err, m.To)
	}
	reused := c.sends > 0
	delivered, err := p.sendOn(ctx, c, msg)
	if err != nil && reused && !c.broken && wentAway(err) {
		// The server closed an idle connection; MAIL FROM failed before
		// any recipient or data: safe to start over on a new one.
		p.logger.Debug("smtp connection went away, redialling", "conn", c.id)
		c.broken = true
		p.discard(c)
		if c, err = p.dial(ctx); err != nil {
			return connectFailure(err, m.To)
		}
		delivered, err = p.sendOn(ctx, c, msg)
	}
	if err != nil && delivered {
		// The server accepted the message (250 to its data) and what
		// go-mail does after that failed (its RSET, were it on). The
		// message is delivered: reporting a failure would have it sent
		// again. The connection is not to be trusted with the next one.
		p.logger.Debug("smtp failure after a delivered message", "conn", c.id, "err", err)
		c.broken, err = true, nil
	}
	p.put(c, err)
	return p.failure(ctx, c, err, m.To)
}

// failure classifies the error of a send on c.
func (p *Pool) failure(ctx context.Context, c *conn, err error, to string) error {
	if err == nil {
		return nil
	}
	if c.broken && ctx.Err() != nil {
		return &SendError{Text: "aborted: " + ctx.Err().Error(), Temporary: true, To: to, err: errors.Join(ctx.Err(), err)}
	}
	return sendFailure(err, to)
}

// sendOn runs one SMTP transaction on c, aborting it when ctx is done.
// delivered reports that the server accepted the message (250 to its
// content), even when err is not nil.
func (p *Pool) sendOn(ctx context.Context, c *conn, msg *gomail.Msg) (delivered bool, err error) {
	if err := ctx.Err(); err != nil {
		c.broken = true
		return false, err
	}
	stop := context.AfterFunc(ctx, c.raw.abort)
	if c.pipelining {
		if err = c.client.UpdateDeadline(p.sendTimeout); err != nil {
			err = &stepError{step: stepMail, err: err}
		} else {
			delivered, err = sendPipelined(c.client, msg)
		}
	} else {
		err = p.client.SendWithSMTPClient(c.client, msg)
		delivered = msg.IsDelivered()
	}
	if !stop() {
		c.broken = true // aborted: the dialogue may be cut anywhere
	}
	c.sends++
	return delivered, err
}

// wentAway reports whether MAIL FROM failed because the connection was
// gone (no reply, or 421 closing).
func wentAway(err error) bool {
	var se *stepError
	if errors.As(err, &se) {
		code := se.code()
		return se.step == stepMail && (code == 0 || code == 421)
	}
	var me *gomail.SendError
	if !errors.As(err, &me) {
		return false
	}
	code := me.ErrorCode()
	return me.Reason == gomail.ErrConnCheck || (me.Reason == gomail.ErrSMTPMailFrom && (code == 0 || code == 421))
}

// reusable reports whether a connection is still in step with the server
// after err: the server refused MAIL or RCPT (and RSET followed) or, in a
// pipelined transaction, refused the message after its content.
func reusable(err error) bool {
	if err == nil {
		return true
	}
	if errors.Is(err, ErrInvalidMessage) {
		return true // refused before the server heard of it
	}
	var se *stepError
	if errors.As(err, &se) {
		code := se.code()
		return !se.outOfStep && (se.step == stepMail || se.step == stepRcpt || se.step == stepEnd) &&
			code >= 400 && code <= 599 && code != 421
	}
	var me *gomail.SendError
	if !errors.As(err, &me) {
		return false
	}
	code := me.ErrorCode()
	return (me.Reason == gomail.ErrSMTPMailFrom || me.Reason == gomail.ErrSMTPRcptTo) &&
		code >= 400 && code <= 599 && code != 421
}
