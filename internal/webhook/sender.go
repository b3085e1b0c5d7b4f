// Package webhook sends kycgate's outbound webhooks over HTTP: one POST per
// attempt, to destinations that cannot reach inside the network kycgate
// runs in.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// MaxResponseBody is how much of a response is read (and then dropped):
// enough to reuse the connection, never a receiver's whole answer.
const MaxResponseBody = 64 << 10

// Sender is a kyc.WebhookSender.
type Sender struct {
	client       *http.Client
	allowPrivate bool
}

var _ kyc.WebhookSender = (*Sender)(nil)

// Options configure a Sender.
type Options struct {
	// AllowPrivate lifts the destination rules (tests, local development):
	// http:// and any address.
	AllowPrivate bool
	// Resolver resolves names; nil is the system's.
	Resolver *net.Resolver
}

// NewSender returns a sender. Unless o.AllowPrivate, it only sends to https:// URLs and only connects to public
// addresses: the check runs on the address actually dialled, after DNS, so
// a name that resolves (or re-resolves) to an inside address is refused.
// Redirects are never followed, and no proxy is used.
func NewSender(o Options) *Sender {
	allowPrivate := o.AllowPrivate
	d := &net.Dialer{Timeout: kyc.WebhookTimeout, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	if !allowPrivate {
		d.Control = refusePrivate
	}
	tr := &http.Transport{
		Proxy:             nil, // a proxy would dial for us, unchecked
		DialContext:       d.DialContext,
		ForceAttemptHTTP2: true,
		MaxIdleConns:      100,
		// A worker sends a whole batch at once (20 in the server), often to
		// one partner: fewer idle slots than that would close most of the
		// batch's connections and dial them again for the next one.
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   kyc.WebhookTimeout,
		ResponseHeaderTimeout: kyc.WebhookTimeout,
	}
	return &Sender{allowPrivate: allowPrivate, client: &http.Client{
		Transport: tr,
		Timeout:   kyc.WebhookTimeout,
		// A redirect is the receiver's answer, not a new destination: a
		// public URL redirecting inside would bypass the address check.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Send makes one attempt and returns the response's status.
func (s *Sender) Send(ctx context.Context, r kyc.WebhookRequest) (int, error) {
	if err := CheckURL(r.URL, s.allowPrivate); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook post: %w", scrub(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
	return resp.StatusCode, nil
}

// scrub drops the URL from a client error: a partner's URL may carry a
// token in its query, and attempt errors are logged and stored.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// ErrRefused marks a destination the rules do not allow.
var ErrRefused = errors.New("destination refused")

// CheckURL checks a webhook URL as far as it can without connecting:
// absolute https:// (http:// too when allowPrivate), a host, no
// credentials, and, when the host is an IP address, a public one.
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: not a URL", ErrRefused)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	case u.Scheme == "http":
		return fmt.Errorf("%w: the URL must be https:// (http:// only with KYCGATE_WEBHOOK_ALLOW_PRIVATE=1 or in development mode)", ErrRefused)
	default:
		return fmt.Errorf("%w: the URL must be https://", ErrRefused)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: the URL has no host", ErrRefused)
	}
	if u.User != nil {
		return fmt.Errorf("%w: the URL must not carry credentials", ErrRefused)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%w: the URL must not have a #fragment", ErrRefused)
	}
	if allowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s is this machine", ErrRefused, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil && !Public(ip) {
		return fmt.Errorf("%w: %s is not a public address", ErrRefused, ip)
	}
	return nil
}

// refusePrivate is the dialer's Control: it runs on the resolved address
// about to be connected to.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check address %q", ErrRefused, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrRefused, ap.Addr())
	}
	return nil
}

// nonPublic are special ranges the netip predicates do not cover and that
// commonly lead inside a provider's or carrier's network.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// Public reports whether ip is a public unicast address: not private,
// loopback, link-local, unspecified, multicast or CGNAT (IPv4-mapped IPv6
// addresses are judged as the IPv4 address they carry).
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
