package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// transport makes one delivery attempt. Retrying, rendering and logging live
// in SMTP, so a pooled transport can replace dialTransport without touching
// them.
type transport interface {
	// deliver returns nil only once the server accepted the message data.
	// It must give up promptly when ctx ends.
	deliver(ctx context.Context, msg *gomail.Msg) error
	close() error
}

// dialTransport opens one connection per attempt.
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
}

func newDialTransport(ep Endpoint, tlsConf *tls.Config, timeout time.Duration) *dialTransport {
	opts := []gomail.Option{
		gomail.WithPort(ep.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsConf),
		// A fresh connection needs no NOOP probe, and no RSET after the
		// message because QUIT follows immediately: two round trips saved.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
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
	t := &dialTransport{ep: ep, opts: opts, dialer: nd.DialContext}
	if ep.TLS == ImplicitTLS {
		// The smtp client recognises TLS by asserting *tls.Conn, so the
		// connection must reach it unwrapped.
		t.dialer = (&tls.Dialer{NetDialer: nd, Config: tlsConf}).DialContext
	}
	return t
}

func (t *dialTransport) deliver(ctx context.Context, msg *gomail.Msg) error {
	// go-mail uses the context for dialling only; every later step runs on
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
		// go-mail leaves the connection open when EHLO, STARTTLS or QUIT
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
	sendErr := client.SendWithSMTPClient(sc, msg)
	quitErr := client.CloseWithSMTPClient(sc)
	// Once the server said 250 to the data the message is its problem; a
	// failing QUIT must not trigger a retry that would deliver it twice.
	if msg.IsDelivered() {
		return nil
	}
	if sendErr != nil {
		return sendErr
	}
	return errors.Join(errors.New("message not accepted"), quitErr)
}

func (t *dialTransport) close() error { return nil }
