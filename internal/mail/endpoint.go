package mail

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// TLSMode says how the connection to the SMTP server is protected.
type TLSMode int

const (
	// STARTTLSOpportunistic upgrades with STARTTLS when the server offers it
	// and otherwise delivers in clear text (smtp://).
	STARTTLSOpportunistic TLSMode = iota
	// STARTTLSRequired refuses to deliver unless STARTTLS succeeds
	// (smtp://…?starttls=required).
	STARTTLSRequired
	// ImplicitTLS speaks TLS from the first byte (smtps://).
	ImplicitTLS
)

func (m TLSMode) String() string {
	switch m {
	case STARTTLSOpportunistic:
		return "starttls-opportunistic"
	case STARTTLSRequired:
		return "starttls-required"
	case ImplicitTLS:
		return "implicit-tls"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Default ports; see the package comment for why smtp:// means 587.
const (
	DefaultSubmissionPort = 587
	DefaultSMTPSPort      = 465
)

// Endpoint is a validated KYCGATE_SMTP_URL.
type Endpoint struct {
	Host     string // without brackets for IPv6
	Port     int
	Username string // empty: no AUTH
	Password string
	TLS      TLSMode
}

// Addr is host:port, ready to dial.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// String renders the endpoint as a URL with the password redacted, so it can
// be logged.
func (e Endpoint) String() string {
	u := url.URL{Scheme: "smtp", Host: e.Addr()}
	if e.TLS == ImplicitTLS {
		u.Scheme = "smtps"
	}
	if e.TLS == STARTTLSRequired {
		u.RawQuery = "starttls=required"
	}
	switch {
	case e.Username != "" && e.Password != "":
		u.User = url.UserPassword(e.Username, "xxxxx")
	case e.Username != "":
		u.User = url.User(e.Username)
	}
	return u.String()
}

// ParseURL validates an SMTP URL:
//
//	smtp://[user:pass@]host[:port][?starttls=required]   (port 587 by default)
//	smtps://[user:pass@]host[:port]                      (port 465 by default)
//
// Errors name the problem but never repeat the URL, which may hold a password.
func ParseURL(raw string) (Endpoint, error) {
	var ep Endpoint
	if strings.TrimSpace(raw) == "" {
		return ep, errors.New("smtp url: empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ep, fmt.Errorf("smtp url: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		ep.TLS, ep.Port = STARTTLSOpportunistic, DefaultSubmissionPort
	case "smtps":
		ep.TLS, ep.Port = ImplicitTLS, DefaultSMTPSPort
	case "":
		return ep, errors.New("smtp url: missing scheme, want smtp:// or smtps://")
	default:
		return ep, fmt.Errorf("smtp url: unsupported scheme %q, want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" {
		return ep, errors.New("smtp url: missing host (want scheme://host:port)")
	}
	ep.Host = u.Hostname()
	if ep.Host == "" {
		return ep, errors.New("smtp url: missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return ep, fmt.Errorf("smtp url: invalid port %q, want 1-65535", p)
		}
		ep.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return ep, errors.New("smtp url: empty port after ':'")
	}
	if u.Path != "" && u.Path != "/" {
		return ep, errors.New("smtp url: unexpected path, want scheme://host:port")
	}
	if u.Fragment != "" {
		return ep, errors.New("smtp url: unexpected fragment")
	}
	if u.User != nil {
		ep.Username = u.User.Username()
		ep.Password, _ = u.User.Password()
		if ep.Username == "" {
			return ep, errors.New("smtp url: empty username")
		}
		if ep.Password == "" {
			return ep, errors.New("smtp url: username without password")
		}
	}
	err = ep.query(u.RawQuery) // before ep is returned: it may set ep.TLS
	return ep, err
}

// query applies the URL's query: only starttls=required, and only to
// smtp://.
func (ep *Endpoint) query(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("smtp url: invalid query: %w", err)
	}
	for key, vals := range q {
		if key != "starttls" {
			return fmt.Errorf("smtp url: unknown query parameter %q (only starttls=required is supported)", key)
		}
		if ep.TLS == ImplicitTLS {
			return errors.New("smtp url: starttls does not apply to smtps://, which is TLS from the start")
		}
		if len(vals) != 1 || vals[0] != "required" {
			return fmt.Errorf("smtp url: invalid starttls value %q, want starttls=required", strings.Join(vals, ","))
		}
		ep.TLS = STARTTLSRequired
	}
	return nil
}
