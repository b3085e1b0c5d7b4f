package mail

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
)

// Config configures SMTP delivery and the message templates.
type Config struct {
	URL     string        // KYCGATE_SMTP_URL, see ParseURL
	From    string        // KYCGATE_MAIL_FROM, e.g. "kycgate <no-reply@localhost>"
	Subject string        // default "Your verification code"
	Product string        // name shown in the mail, default "kycgate"
	Timeout time.Duration // bound on each step until the message is sent, default 10s (see SMTP.SendCode)
	Logger  *slog.Logger  // default: discard

	// TLSConfig, when set, is used for STARTTLS and implicit TLS (for instance
	// to trust a private CA). ServerName defaults to the URL's host.
	TLSConfig *tls.Config

	// TemplateDir, when set, holds code.txt and/or code.html overriding the
	// embedded templates. They are parsed and test-rendered at start.
	TemplateDir string

	// MaxIdleSessions bounds the SMTP sessions kept open between messages
	// for reuse (default 16); -1 opens a new session for every message.
	MaxIdleSessions int
}

// Defaults for Config fields left empty.
const (
	DefaultSubject = "Your verification code"
	DefaultProduct = "kycgate"
	DefaultTimeout = 10 * time.Second
)

// withDefaults fills empty fields and checks the ones every user of Config
// relies on (the renderer and the mailbox included).
func (c Config) withDefaults() (Config, error) {
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Product == "" {
		c.Product = DefaultProduct
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("mail config: negative timeout %s", c.Timeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if strings.ContainsAny(c.Subject, "\r\n") {
		return c, errors.New("mail config: subject contains a line break")
	}
	if strings.ContainsAny(c.Product, "\r\n") {
		return c, errors.New("mail config: product contains a line break")
	}
	return c, nil
}

// parseFrom validates KYCGATE_MAIL_FROM.
func parseFrom(from string) (*mail.Address, error) {
	if strings.TrimSpace(from) == "" {
		return nil, errors.New("mail config: from address is required (KYCGATE_MAIL_FROM)")
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail config: invalid from address: %w", err)
	}
	if strings.LastIndexByte(a.Address, '@') < 1 {
		return nil, errors.New("mail config: from address has no domain")
	}
	return a, nil
}
