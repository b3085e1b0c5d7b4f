package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"

	"github.com/kycgate/kycgate/internal/kyc"
)

// ErrClosed is returned by SendCode after Close.
var ErrClosed = errors.New("mail: sender is closed")

// DeliveryError reports a delivery that certainly failed: the server
// refused the message with a reply code, or the last attempt broke off
// before the whole message was sent, so nothing was delivered. It never
// wraps kyc.ErrMailUnconfirmed (see UnconfirmedError). Its text names the
// masked recipient and never contains the code.
type DeliveryError struct {
	To        string // masked recipient
	Attempts  int    // attempts made, including the last one
	Code      int    // SMTP reply code of the last failure; 0 when none (network, TLS, ...)
	Temporary bool   // the last failure was transient (retries were exhausted or the context ended)
	err       error  // redacted cause; context errors are kept as they are
}

func (e *DeliveryError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "transient"
	}
	return fmt.Sprintf("mail: deliver code to %s: %s failure after %d attempt(s): %v", e.To, kind, e.Attempts, e.err)
}

// Unwrap exposes the cause, so errors.Is(err, context.Canceled) works.
func (e *DeliveryError) Unwrap() error { return e.err }

// UnconfirmedError reports a delivery whose outcome is unknown: the whole
// message reached the server, final "." included, but its verdict never
// came back (the wait timed out, the connection broke, or the caller's
// context ended). The mail may well arrive, so it is not retried and the
// code it carries should stay valid. It wraps kyc.ErrMailUnconfirmed, and
// the caller's context error when that context ended the wait. Its text
// names the masked recipient and never contains the code.
type UnconfirmedError struct {
	To       string // masked recipient
	Attempts int    // attempts made, including the unconfirmed last one
	err      error  // redacted cause; context errors are kept as they are
}

func (e *UnconfirmedError) Error() string {
	return fmt.Sprintf("mail: deliver code to %s: %v after %d attempt(s): %v", e.To, kyc.ErrMailUnconfirmed, e.Attempts, e.err)
}

// Unwrap exposes kyc.ErrMailUnconfirmed and the cause, so errors.Is works
// for both.
func (e *UnconfirmedError) Unwrap() []error { return []error{kyc.ErrMailUnconfirmed, e.err} }

// redactedError carries another error's text with the address and code
// removed. It unwraps to context errors only, so that walking the chain can
// never reach the unredacted text.
type redactedError struct {
	msg string
	ctx error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.ctx }

func redactErr(err error, to, code string) error {
	r := &redactedError{msg: redact(err.Error(), to, code)}
	switch {
	case errors.Is(err, context.Canceled):
		r.ctx = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		r.ctx = context.DeadlineExceeded
	}
	return r
}

// classify tells whether a failed attempt is worth repeating, and the SMTP
// reply code if the server gave one. It is only asked about failures that
// certainly delivered nothing (an unconfirmedError is never repeated).
// Unknown failures count as permanent: retrying a misconfiguration only
// delays the 500 the API must answer.
func classify(err error) (code int, temporary bool) {
	var tx *txError
	if errors.As(err, &tx) && tx.step == stepEnvelope {
		return 0, false
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code, te.Code >= 400 && te.Code < 500
	}
	// TLS failures will not fix themselves within a second.
	var (
		certErr   *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if errors.As(err, &certErr) || errors.As(err, &recordErr) || errors.As(err, &alertErr) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid) {
		return 0, false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return 0, true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return 0, true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return 0, true
	}
	return 0, false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
