package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Connection reuse. Opening an SMTP session costs a TCP handshake, the
// greeting, EHLO (and STARTTLS and AUTH where configured), and QUIT at the
// end: on loopback that was more than half of send-otp's CPU, in kycgate and
// in the receiving server. poolTransport keeps sessions that just delivered
// a message open for the next one, as mail submission agents do.
const (
	// defaultMaxIdle bounds the sessions kept open between messages.
	defaultMaxIdle = 16
	// poolIdleTimeout closes a session nobody used for this long, well
	// before servers drop idle clients (RFC 5321 §4.5.3.2.7 asks them to
	// wait at least five minutes; relays often wait less).
	poolIdleTimeout = 15 * time.Second
	// maxMsgsPerConn starts a fresh session after this many messages; some
	// relays limit messages per session.
	maxMsgsPerConn = 100
)

// poolTransport delivers over reused sessions. A session is used by one
// delivery at a time and goes back to the pool only after a message it
// carried was accepted; any failure closes it, an unconfirmed one (see
// transaction) included. A reused session the server has meanwhile closed
// fails at MAIL FROM, before any transaction started: the delivery then
// moves to a fresh session at once, within the same attempt, so a stale
// pooled session never costs the caller a retry. Nothing that fails once the
// message data went out is ever tried again.
type poolTransport struct {
	d       *dialTransport // endpoint, options and dialer for new sessions
	maxIdle int

	mu     sync.Mutex
	idle   []*session // most recently used last
	closed bool
}

// session is one open SMTP session and the go-mail client that opened it
// (a client per session: go-mail's clients are not safe to share).
type session struct {
	client *gomail.Client
	sc     *smtp.Client
	conn   net.Conn
	msgs   int
	used   time.Time
}

// newTransport picks the transport cfg asks for: reused sessions unless
// MaxIdleSessions is -1.
func newTransport(ep Endpoint, tlsConf *tls.Config, cfg Config) transport {
	d := newDialTransport(ep, tlsConf, cfg.Timeout)
	if cfg.MaxIdleSessions < 0 {
		return d
	}
	return newPoolTransport(d, cfg.MaxIdleSessions)
}

func newPoolTransport(d *dialTransport, maxIdle int) *poolTransport {
	if maxIdle <= 0 {
		maxIdle = defaultMaxIdle
	}
	return &poolTransport{d: d, maxIdle: maxIdle}
}

func (p *poolTransport) deliver(ctx context.Context, msg *gomail.Msg) error {
	for {
		s := p.take()
		reused := s != nil
		if !reused {
			var err error
			if s, err = p.open(ctx); err != nil {
				return err
			}
		}
		err := s.send(ctx, msg, p.d.step, p.d.replyWait)
		if err == nil {
			p.put(s)
			return nil
		}
		// The session's state is unknown after a failure: drop the
		// connection without a QUIT that could only wait.
		_ = s.conn.Close()
		if reused && ctx.Err() == nil && stale(err) {
			continue
		}
		return err
	}
}

// stale reports whether a reused session failed before its transaction
// began (the session check or MAIL FROM): the server most likely closed
// it while it sat in the pool, and nothing was sent.
func stale(err error) bool {
	var te *txError
	return errors.As(err, &te) && (te.step == stepMail || te.step == stepConn)
}

// open dials a new session, honouring ctx as dialTransport does.
func (p *poolTransport) open(ctx context.Context) (*session, error) {
	s := &session{}
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		c, err := p.d.dialer(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		s.conn = c
		stop = context.AfterFunc(ctx, func() { _ = c.Close() })
		return c, nil
	}
	opts := make([]gomail.Option, 0, len(p.d.opts)+1)
	opts = append(append(opts, p.d.opts...), gomail.WithDialContextFunc(dial))
	client, err := gomail.NewClient(p.d.ep.Host, opts...)
	if err != nil {
		return nil, err
	}
	s.client = client
	s.sc, err = client.DialToSMTPClientWithContext(ctx)
	if stop != nil && !stop() && err == nil {
		err = context.Cause(ctx) // ctx ended during the greeting and closed the connection
	}
	if err != nil {
		// go-mail leaves the connection open when EHLO, STARTTLS or AUTH
		// fail; closing it here is idempotent otherwise.
		if s.conn != nil {
			_ = s.conn.Close()
		}
		return nil, err
	}
	return s, nil
}

// send carries one message (see transaction for its deadlines); ctx ending
// closes the connection, which makes the pending read or write fail at once.
func (s *session) send(ctx context.Context, msg *gomail.Msg, step, replyWait time.Duration) error {
	stop := context.AfterFunc(ctx, func() { _ = s.conn.Close() })
	err := transaction(ctx, s.sc, msg, step, replyWait)
	if !stop() && err == nil {
		// ctx ended just as the message went through: the connection is
		// closed, so the session cannot be reused; the message was sent.
		s.msgs = maxMsgsPerConn
	}
	s.msgs++
	s.used = time.Now()
	return err
}

// quit ends a healthy session politely (QUIT, briefly awaiting the reply)
// and closes its connection. Callers run it off the request's path.
func (s *session) quit() {
	_ = s.conn.SetDeadline(time.Now().Add(time.Second))
	_ = s.client.CloseWithSMTPClient(s.sc)
	_ = s.conn.Close()
}

// take returns the most recently used live idle session, or nil.
func (p *poolTransport) take() *session {
	now := time.Now()
	var expired []*session
	var s *session
	p.mu.Lock()
	for len(p.idle) > 0 {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(last.used) < poolIdleTimeout {
			s = last
			break
		}
		expired = append(expired, last)
	}
	// Sessions older than the newest expired one are older still.
	for len(p.idle) > 0 && now.Sub(p.idle[0].used) >= poolIdleTimeout {
		expired = append(expired, p.idle[0])
		p.idle = p.idle[1:]
	}
	p.mu.Unlock()
	for _, e := range expired {
		go e.quit()
	}
	return s
}

// put returns a session to the pool, or closes it when the pool is full or
// closed or the session carried its share of messages.
func (p *poolTransport) put(s *session) {
	p.mu.Lock()
	if !p.closed && len(p.idle) < p.maxIdle && s.msgs < maxMsgsPerConn {
		p.idle = append(p.idle, s)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	go s.quit()
}

func (p *poolTransport) close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range idle {
		wg.Add(1)
		go func() { defer wg.Done(); s.quit() }()
	}
	wg.Wait()
	return nil
}
