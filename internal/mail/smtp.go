package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/kycgate/kycgate/internal/kyc"
)

var _ kyc.Mailer = (*SMTP)(nil)

// defaultBackoff is the wait before the second and third attempts: short,
// because the API call is waiting, and growing, to give a busy server room.
var defaultBackoff = []time.Duration{200 * time.Millisecond, 800 * time.Millisecond}

// SMTP delivers codes through an SMTP server. It is safe for concurrent use.
type SMTP struct {
	ep       Endpoint
	from     *mail.Address
	idDomain string // right-hand side of Message-IDs: the sender's domain
	render   *renderer
	tr       transport
	log      *slog.Logger
	timeout  time.Duration   // per step before the end of the message data
	backoff  []time.Duration // len(backoff)+1 attempts in all
	closed   atomic.Bool
}

// NewSMTP validates cfg (URL, From, templates) without connecting anywhere:
// a mail server that is down at boot should not stop the API from starting.
func NewSMTP(cfg Config) (*SMTP, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ep, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mail config: %w", err)
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		return nil, err
	}
	r, err := newRenderer(cfg)
	if err != nil {
		return nil, err
	}
	var tlsConf *tls.Config
	if cfg.TLSConfig != nil {
		tlsConf = cfg.TLSConfig.Clone()
	} else {
		tlsConf = &tls.Config{}
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = ep.Host
	}
	if tlsConf.MinVersion == 0 {
		tlsConf.MinVersion = tls.VersionTLS12
	}
	s := &SMTP{
		ep:       ep,
		from:     from,
		idDomain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		render:   r,
		tr:       newTransport(ep, tlsConf, cfg),
		log:      cfg.Logger.With(slog.String("component", "mail"), slog.String("smtp", ep.String())),
		timeout:  cfg.Timeout,
		backoff:  defaultBackoff,
	}
	return s, nil
}

// Endpoint reports the parsed SMTP URL (its String redacts the password).
func (s *SMTP) Endpoint() Endpoint { return s.ep }

// Close stops further sends and ends the idle SMTP sessions kept for reuse.
// Sends already under way finish or time out on their own.
func (s *SMTP) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.tr.close()
}

// SendCode renders the code mail and delivers it, retrying transient
// failures. It returns nil only once the server accepted the message.
//
// Each step up to the end of the message data (connecting, EHLO, STARTTLS,
// AUTH, MAIL, RCPT, DATA, writing the message) must complete within
// Config.Timeout; a failure there certainly delivered nothing, and a
// transient one (network error, timeout, 4xx) is tried again, three
// attempts in all. The wait for the server's verdict on the data follows
// RFC 5321 (up to 10 minutes), cut short by ctx's deadline. A 4xx verdict
// is retried, a 5xx one is final; both give a *DeliveryError, as do the
// failures before the data. When the verdict never comes (timeout, lost
// connection, ctx ending) the message may have been delivered: SendCode
// then makes no further attempt and returns an *UnconfirmedError, which
// wraps kyc.ErrMailUnconfirmed.
func (s *SMTP) SendCode(ctx context.Context, cm kyc.CodeMail) error {
	if s.closed.Load() {
		return ErrClosed
	}
	code := cm.Code
	masked := MaskAddress(cm.To)
	m, err := s.render.render(cm)
	if err != nil {
		return fmt.Errorf("mail: send code to %s: %w", masked, err)
	}
	msg, err := s.message(m)
	if err != nil {
		return fmt.Errorf("mail: send code to %s: %w", masked, err)
	}

	start := time.Now()
	attempts := len(s.backoff) + 1
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return &DeliveryError{To: masked, Attempts: attempt - 1, Temporary: true, err: ctx.Err()}
		}
		err := s.tr.deliver(ctx, msg)
		if err == nil {
			s.log.LogAttrs(ctx, slog.LevelInfo, "code mail delivered",
				slog.String("to", masked), slog.Int("attempt", attempt),
				slog.Duration("took", time.Since(start)))
			return nil
		}
		var ue *unconfirmedError
		if errors.As(err, &ue) {
			// The message went out in full: another attempt could deliver
			// it twice. The request ending explains the missing verdict.
			var cause error
			if cerr := ended(ctx); cerr != nil {
				cause = fmt.Errorf("no reply to the end of the message data before the request ended: %w", cerr)
			} else {
				cause = redactErr(err, m.To, code)
			}
			s.log.LogAttrs(ctx, slog.LevelWarn, "code mail delivery unconfirmed",
				slog.String("to", masked), slog.Int("attempt", attempt),
				slog.Duration("took", time.Since(start)), slog.String("error", cause.Error()))
			return &UnconfirmedError{To: masked, Attempts: attempt, err: cause}
		}
		// The caller's context ending explains any error that came with it.
		if cerr := ended(ctx); cerr != nil {
			return &DeliveryError{To: masked, Attempts: attempt, Temporary: true, err: cerr}
		}
		smtpCode, temporary := classify(err)
		if smtpCode == 0 && isTimeout(err) {
			// A step deadline fired: say so plainly, and do not wrap
			// context.DeadlineExceeded, which callers read as their own.
			err, temporary = fmt.Errorf("attempt timed out (limit %s per step): %v", s.timeout, err), true
		}
		rerr := redactErr(err, m.To, code)
		if !temporary || attempt == attempts {
			s.log.LogAttrs(ctx, slog.LevelWarn, "code mail not delivered",
				slog.String("to", masked), slog.Int("attempt", attempt), slog.Int("smtp_code", smtpCode),
				slog.Bool("temporary", temporary), slog.String("error", rerr.Error()))
			return &DeliveryError{To: masked, Attempts: attempt, Code: smtpCode, Temporary: temporary, err: rerr}
		}
		wait := s.backoff[attempt-1]
		s.log.LogAttrs(ctx, slog.LevelWarn, "code mail attempt failed, retrying",
			slog.String("to", masked), slog.Int("attempt", attempt), slog.Int("smtp_code", smtpCode),
			slog.Duration("retry_in", wait), slog.String("error", rerr.Error()))
		if err := kyc.Sleep(ctx, wait); err != nil {
			return &DeliveryError{To: masked, Attempts: attempt, Code: smtpCode, Temporary: true, err: fmt.Errorf("%w (while waiting to retry after: %v)", err, rerr)}
		}
	}
}

// message builds the MIME message once; retries reuse it, Message-ID
// included, so a receiver can drop a duplicate.
func (s *SMTP) message(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return nil, ErrInvalidAddress
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(rand.Text() + "@" + s.idDomain)
	// RFC 3834: tells auto-responders (vacation replies) to stay quiet.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

// ended returns ctx's error, or context.DeadlineExceeded once ctx's deadline
// has passed even if its timer has not fired yet: a connection deadline set
// to ctx's may expire a moment before ctx reports it.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
