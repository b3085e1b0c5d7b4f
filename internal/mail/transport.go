package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/textproto"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// defaultReplyWait bounds the wait for the server's answer to the end of
// the message data: RFC 5321 §4.5.3.2.6 gives the server 10 minutes for it
// (accepting a message may mean scanning it or passing it on). The request's
// deadline, far shorter, is what ends the wait in practice.
const defaultReplyWait = 10 * time.Minute

// transport makes one delivery attempt. Retrying, rendering and logging live
// in SMTP, so a pooled transport can replace dialTransport without touching
// them.
type transport interface {
	// deliver returns nil only once the server accepted the message data.
	// It returns an error wrapping *unconfirmedError when the whole message
	// went out and no verdict came back; any other error means the message
	// was certainly not accepted. It must give up promptly when ctx ends.
	deliver(ctx context.Context, msg *gomail.Msg) error
	close() error
}

// dialTransport opens one connection per attempt. Every step up to the end
// of the message data (connecting, the greeting, EHLO, STARTTLS, AUTH, MAIL,
// RCPT, DATA, writing the message) has its own short deadline, step; the
// wait for the server's verdict after the final "." may last replyWait, cut
// short by the request's deadline (see transaction).
//
// A go-mail Client is built per attempt rather than shared: the dial hook
// below must see the attempt's context, and go-mail's opportunistic auth
// rewrites the client's auth type under a read lock, which is a data race on
// a shared Client. Building one costs an os.Hostname call and a few
// allocations, nothing next to a TCP handshake.
type dialTransport struct {
	ep     Endpoint
	opts   []gomail.Option // fixed options, shared read-only by all attempts
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	step      time.Duration // Config.Timeout: bound on each step before the end of the data
	replyWait time.Duration // bound on the wait for the final reply (defaultReplyWait)
}

func newDialTransport(ep Endpoint, tlsConf *tls.Config, timeout time.Duration) *dialTransport {
	// go-mail only opens sessions here (dial, greeting, EHLO, STARTTLS,
	// AUTH, each phase within timeout); the mail transaction is ours, see
	// transaction.
	opts := []gomail.Option{
		gomail.WithPort(ep.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsConf),
	}
	switch ep.TLS {
	case STARTTLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case STARTTLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case ImplicitTLS:
		// With a custom dial function go-mail does not wrap the connection
		// in TLS itself (WithSSL only affects its default dialer), so the
		// dialer below does it; WithSSL still stops it attempting STARTTLS.
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if ep.Username != "" {
		// PLAIN first, LOGIN for servers that offer only that (Office 365).
		// go-mail's autodiscovery would never pick either without TLS, not
		// even on loopback; these two refuse clear text themselves unless the
		// host is localhost, 127.0.0.1 or ::1.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(ep.Username),
			gomail.WithPassword(ep.Password),
		)
	}

	nd := &net.Dialer{KeepAlive: -1}
	t := &dialTransport{ep: ep, opts: opts, dialer: nd.DialContext, step: timeout, replyWait: defaultReplyWait}
	if ep.TLS == ImplicitTLS {
		// The smtp client recognises TLS by asserting *tls.Conn, so the
		// connection must reach it unwrapped.
		t.dialer = (&tls.Dialer{NetDialer: nd, Config: tlsConf}).DialContext
	}
	return t
}

func (t *dialTransport) deliver(ctx context.Context, msg *gomail.Msg) error {
	// go-mail uses the context for dialling only, and transaction uses
	// connection deadlines. Closing the connection when ctx ends makes the
	// pending read or write fail at once.
	var conn net.Conn
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		c, err := t.dialer(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn = c
		stop = context.AfterFunc(ctx, func() { _ = c.Close() })
		return c, nil
	}
	defer func() {
		if stop != nil {
			stop()
		}
		// go-mail leaves the connection open when EHLO, STARTTLS or AUTH
		// fail; closing it here is idempotent otherwise.
		if conn != nil {
			_ = conn.Close()
		}
	}()

	opts := make([]gomail.Option, 0, len(t.opts)+1)
	opts = append(append(opts, t.opts...), gomail.WithDialContextFunc(dial))
	client, err := gomail.NewClient(t.ep.Host, opts...)
	if err != nil {
		return err
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return err
	}
	err = transaction(ctx, sc, msg, t.step, t.replyWait)
	if err == nil || replied(err) {
		// The server answered the last command, so the session is in step:
		// end it politely. The message's fate is settled either way, so
		// QUIT's own failure does not matter.
		_ = sc.UpdateDeadline(t.step)
		_ = client.CloseWithSMTPClient(sc)
	}
	return err
}

func (t *dialTransport) close() error { return nil }

// Steps of a mail transaction, as txError names them.
const (
	stepEnvelope = "envelope"      // reading sender and recipients off the message
	stepConn     = "session check" // the session is still open
	stepMail     = "MAIL FROM"
	stepRcpt     = "RCPT TO"
	stepData     = "DATA"
	stepMessage  = "message data" // writing the message, the final "." included
	stepEnd      = "end of data"  // the server's verdict on the message
)

// txError is a mail transaction that certainly delivered nothing: it
// failed before the end of the message data was written, or the server
// refused the message with a reply code.
type txError struct {
	step string
	err  error
}

func (e *txError) Error() string { return e.step + ": " + e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

// unconfirmedError is a mail transaction whose outcome is unknown: the whole
// message went out, final "." included, and no reply code came back (the
// wait timed out, the connection broke, or ctx ended and closed it). The
// server may have accepted the message, so it must not be sent again.
type unconfirmedError struct{ err error }

func (e *unconfirmedError) Error() string {
	return "no reply to the end of the message data: " + e.err.Error()
}
func (e *unconfirmedError) Unwrap() error { return e.err }

var errNoSession = errors.New("SMTP session is closed")

// transaction carries msg over an open session: MAIL FROM, RCPT TO, DATA,
// the message and the server's verdict, as go-mail's SendWithSMTPClient
// does (the smtp client adds BODY=8BITMIME and SMTPUTF8 to MAIL FROM when
// the server offers them), minus the RSET after success that both
// transports skip anyway: a finished transaction leaves the session clean.
// Unlike go-mail it tells apart where a failure happened, and it bounds the
// steps differently:
//
//   - each command and the writing of the message get step, so a stalled
//     server is given up on quickly while nothing can have been delivered;
//   - once the final "." is written, the wait for the verdict may last
//     replyWait (RFC 5321's 10 minutes), cut short by ctx's deadline.
//
// It returns nil once the server accepted the message (any 2xx), a *txError
// when the message certainly was not accepted, and an *unconfirmedError
// when its fate is unknown. Callers close the connection when ctx ends.
func transaction(ctx context.Context, sc *smtp.Client, msg *gomail.Msg, step, replyWait time.Duration) error {
	from, err := msg.GetSender(false)
	if err != nil {
		return &txError{stepEnvelope, err}
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return &txError{stepEnvelope, err}
	}
	if !sc.HasConnection() {
		return &txError{stepConn, errNoSession}
	}
	if err := sc.UpdateDeadline(step); err != nil {
		return &txError{stepConn, err}
	}
	if err := sc.Mail(from); err != nil {
		return &txError{stepMail, err}
	}
	for _, rcpt := range rcpts {
		if err := sc.UpdateDeadline(step); err != nil {
			return &txError{stepRcpt, err}
		}
		if err := sc.Rcpt(rcpt); err != nil {
			return &txError{stepRcpt, err}
		}
	}
	if err := sc.UpdateDeadline(step); err != nil {
		return &txError{stepData, err}
	}
	w, err := sc.Data()
	if err != nil {
		return &txError{stepData, err}
	}
	if err := sc.UpdateDeadline(step); err != nil {
		return &txError{stepMessage, err}
	}
	if _, err := msg.WriteTo(w); err != nil {
		return &txError{stepMessage, err}
	}
	// go-mail's DataCloser.Close writes the final "." and reads the reply
	// in one call, ignoring a failed write. Writing the end of the data
	// apart tells the two cases apart: a write that failed never handed the
	// last bytes of the "\r\n.\r\n" mark to the network, so the server
	// cannot have taken the message.
	dc, split := w.(*smtp.DataCloser)
	if split {
		if err := dc.WriteCloser.Close(); err != nil {
			return &txError{stepMessage, err}
		}
	}
	// The whole message is out: from here on, a failure without a reply
	// code leaves its fate unknown.
	wait := replyWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if err := sc.UpdateDeadline(wait); err != nil {
		return &unconfirmedError{err}
	}
	if split {
		_, _, err = sc.Text.ReadResponse(2)
	} else {
		err = w.Close()
	}
	if err == nil {
		return nil
	}
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 400 {
		// 4xx: not accepted, try again later; 5xx: refused for good.
		return &txError{stepEnd, err}
	}
	return &unconfirmedError{err}
}

// replied reports whether err carries the server's reply code, which means
// the session is still in step.
func replied(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}
