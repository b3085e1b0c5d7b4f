package mailtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Server is an SMTP server on 127.0.0.1 that records what it accepts.
type Server struct {
	srv      *smtp.Server
	addr     string
	scheme   string
	rootCAs  *x509.CertPool
	user     string
	pass     string
	rejectTo func(string) bool
	ctx      context.Context // ends when the server stops; handed to data hooks

	mu           sync.Mutex
	accepted     []*entry
	arrived      chan struct{} // closed and replaced whenever a message arrives
	failures     []failure     // pending DATA rejections, consumed in order
	rcptFailures []failure     // pending RCPT TO rejections, consumed in order
	dataHook     DataHook
	dataCmds     int
	sessions     int
}

type entry struct {
	msg   Message
	taken bool
}

type failure struct {
	code int
	msg  string
}

// Option configures NewServer.
type Option func(*config)

type config struct {
	user, pass   string
	startTLS     bool
	implicitTLS  bool
	failures     []failure
	rcptFailures []failure
	rejectRcpt   func(string) bool
	dataHook     DataHook
}

// WithAuth makes the server offer AUTH PLAIN (also without TLS, as loopback
// relays do) and refuse MAIL FROM until a client authenticated as user/pass.
func WithAuth(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// WithTLS offers STARTTLS with a self-signed certificate; see Server.RootCAs.
func WithTLS() Option { return func(c *config) { c.startTLS = true } }

// WithImplicitTLS speaks TLS from the first byte; URL then returns smtps://.
func WithImplicitTLS() Option { return func(c *config) { c.implicitTLS = true } }

// FailNext rejects the next n DATA commands with code (e.g. 451 or 550).
func FailNext(n, code int, msg string) Option {
	return func(c *config) {
		for range n {
			c.failures = append(c.failures, failure{code, msg})
		}
	}
}

// FailNextRcpt rejects the next n RCPT TO commands with code (e.g. 451),
// before any message data is sent.
func FailNextRcpt(n, code int, msg string) Option {
	return func(c *config) {
		for range n {
			c.rcptFailures = append(c.rcptFailures, failure{code, msg})
		}
	}
}

// DataHook runs once the server has read a message's data in full (the
// final "." included) and before it answers it. The answer waits for the
// hook: a hook that blocks plays a server slow to accept a message (content
// scanning, a slow queue, a stalled relay). ctx ends when the server stops.
// A non-nil error drops the connection without any answer, as a crash or a
// lost link would; the message is then not kept. The hook may run on
// several connections at once.
type DataHook func(ctx context.Context) error

// WithDataHook sets the hook run before each answer to message data; see
// DataHook and Server.SetDataHook.
func WithDataHook(h DataHook) Option {
	return func(c *config) { c.dataHook = h }
}

// WithRejectRecipient answers 550 to RCPT TO for addresses where reject
// returns true.
func WithRejectRecipient(reject func(addr string) bool) Option {
	return func(c *config) { c.rejectRcpt = reject }
}

// NewServer starts a server on 127.0.0.1:0 and stops it when tb ends.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		scheme:   "smtp",
		user:     cfg.user,
		pass:     cfg.pass,
		rejectTo: cfg.rejectRcpt,
		failures: cfg.failures,
		arrived:  make(chan struct{}),

		rcptFailures: cfg.rcptFailures,
		dataHook:     cfg.dataHook,
	}
	ctx, stop := context.WithCancel(context.Background())
	s.ctx = ctx
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "mailtest.localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 50
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	// Connection goroutines may log after the test returned, when tb.Logf
	// would panic.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mailtest: listen: %v", err)
	}
	if cfg.startTLS || cfg.implicitTLS {
		cert, pool, err := selfSigned()
		if err != nil {
			_ = ln.Close()
			tb.Fatalf("mailtest: certificate: %v", err)
		}
		s.rootCAs = pool
		tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.implicitTLS {
			ln = tls.NewListener(ln, tlsConf)
			s.scheme = "smtps"
		} else {
			srv.TLSConfig = tlsConf
		}
	}
	s.addr = ln.Addr().String()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		stop() // releases data hooks still waiting
		_ = srv.Close()
		// Close only knows listeners Serve has registered; if the test
		// ended before the goroutine got that far, closing ln ourselves is
		// what lets Serve return.
		_ = ln.Close()
		<-done
	})
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is "smtp://127.0.0.1:PORT", or smtps:// with WithImplicitTLS.
func (s *Server) URL() string { return s.scheme + "://" + s.addr }

// RootCAs trusts the server's certificate (nil without TLS).
func (s *Server) RootCAs() *x509.CertPool { return s.rootCAs }

// FailNext rejects the next n DATA commands with code and msg.
func (s *Server) FailNext(n, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{code, msg})
	}
}

// FailNextRcpt rejects the next n RCPT TO commands with code and msg.
func (s *Server) FailNextRcpt(n, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.rcptFailures = append(s.rcptFailures, failure{code, msg})
	}
}

// SetDataHook replaces the hook run before each answer to message data
// (nil: none); sessions already past the data keep the hook they got.
func (s *Server) SetDataHook(h DataHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataHook = h
}

// DataCommands counts messages whose data the server read in full (DATA
// up to the final "."), rejected, dropped and unanswered ones included:
// the number of delivery attempts that sent the whole message.
func (s *Server) DataCommands() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataCmds
}

// Sessions counts SMTP sessions (one per EHLO on a fresh connection).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Messages returns every accepted message in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.accepted))
	for i, e := range s.accepted {
		out[i] = e.msg
	}
	return out
}

// WaitFor returns the oldest message for to (case-insensitive) that no
// earlier WaitFor returned, waiting for one to arrive until ctx ends.
func (s *Server) WaitFor(ctx context.Context, to string) (Message, error) {
	for {
		s.mu.Lock()
		for _, e := range s.accepted {
			if !e.taken && hasRecipient(e.msg.To, to) {
				e.taken = true
				s.mu.Unlock()
				return e.msg, nil
			}
		}
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

func hasRecipient(rcpts []string, to string) bool {
	for _, r := range rcpts {
		if strings.EqualFold(r, to) {
			return true
		}
	}
	return false
}

func (s *Server) deliver(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted = append(s.accepted, &entry{msg: m})
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// dataReceived counts a message read in full and returns the data hook.
func (s *Server) dataReceived() DataHook {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataCmds++
	return s.dataHook
}

// nextRcptFailure pops a pending RCPT TO rejection.
func (s *Server) nextRcptFailure() (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rcptFailures) == 0 {
		return failure{}, false
	}
	f := s.rcptFailures[0]
	s.rcptFailures = s.rcptFailures[1:]
	return f, true
}

// nextDataFailure pops a pending DATA rejection.
func (s *Server) nextDataFailure() (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.sessions++
	b.s.mu.Unlock()
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s        *Server
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authUser = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.rejectTo != nil && ss.s.rejectTo(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient rejected"}
	}
	if f, ok := ss.s.nextRcptFailure(); ok {
		return &smtp.SMTPError{Code: f.code, EnhancedCode: enhanced(f.code), Message: f.msg}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if hook := ss.s.dataReceived(); hook != nil {
		if err := hook(ss.s.ctx); err != nil {
			_ = ss.conn.Close()
			return err
		}
		if ss.s.ctx.Err() != nil {
			return errServerStopped // the test is over: keep nothing
		}
	}
	if f, ok := ss.s.nextDataFailure(); ok {
		return &smtp.SMTPError{Code: f.code, EnhancedCode: enhanced(f.code), Message: f.msg}
	}
	m, err := parseMessage(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: " + err.Error()}
	}
	m.From, m.To, m.AuthUser = ss.from, append([]string(nil), ss.to...), ss.authUser
	_, m.TLS = ss.conn.TLSConnectionState()
	ss.s.deliver(m)
	return nil
}

var errServerStopped = errors.New("mailtest: server stopped")

func enhanced(code int) smtp.EnhancedCode {
	return smtp.EnhancedCode{code / 100, 0, 0}
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }
