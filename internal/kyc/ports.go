package kyc

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Mailer delivers the one-time code to an address. It returns nil only once
// the receiving mail server has accepted the message, so the caller can tell
// the partner truthfully whether the code was sent. An error that wraps
// ErrMailUnconfirmed means the whole message reached the server but its
// verdict did not come back; any other error means nothing was delivered.
type Mailer interface {
	SendCode(ctx context.Context, m CodeMail) error
}

// ErrMailUnconfirmed marks a delivery whose outcome is unknown: the message
// data was sent and the server's final reply never arrived (timeout, lost
// connection). The mail may well arrive, so the code must stay valid and the
// send must not be repeated.
var ErrMailUnconfirmed = errors.New("mail delivery not confirmed")

// CodeMail is one code to mail.
type CodeMail struct {
	To   string
	Code string
	// Wallet is the wallet a link code would link to the address; "" for
	// the address's own code. The mail names it, so the address's owner
	// sees what entering the code would do, and whose request it is.
	Wallet string
}

// Provider is the identity-verification vendor (Didit, or its simulator).
type Provider interface {
	CreateSession(ctx context.Context, req CreateSessionRequest) (ProviderSession, error)
	GetDecision(ctx context.Context, sessionID string) (Decision, error)
	// DeleteSession deletes a session and its data at the provider (an
	// erasure). A session the provider no longer has counts as deleted:
	// nil, not an error.
	DeleteSession(ctx context.Context, sessionID string) error
}

// CreateSessionRequest is what we tell the provider about a new session.
type CreateSessionRequest struct {
	VendorData string            // our person id: stable, never an email
	Callback   string            // where the hosted flow returns; may be empty
	Metadata   map[string]string // echoed back in decisions and webhooks
}

// ProviderSession is the provider's answer to a create call.
type ProviderSession struct {
	ID     string
	URL    string
	Status DiditStatus // the provider's own status, e.g. "Not Started"
}

// Decision is what we keep of a provider decision: its status, the IP/device
// facts partners see in GET /kyc/status, and whether any blocklist fired.
type Decision struct {
	Status      DiditStatus
	IPInfo      []IPInfo
	Blocklisted bool
	Raw         json.RawMessage // the provider's decision object, kept for audit
}

// IPInfo is one distinct IP address seen during a verification.
type IPInfo struct {
	IPAddress    string `json:"ip_address"`
	IPCountry    string `json:"ip_country"`
	IPState      string `json:"ip_state"`
	IPCity       string `json:"ip_city"`
	Platform     string `json:"platform"`
	DeviceBrand  string `json:"device_brand"`
	DeviceModel  string `json:"device_model"`
	IsVPNOrTor   bool   `json:"is_vpn_or_tor"`
	IsDataCenter bool   `json:"is_data_center"`
}

// SessionEvent is one verified status change reported by the provider,
// from a webhook or from polling.
type SessionEvent struct {
	EventID   string      // provider's event id; empty when the provider sent none
	SessionID string      //
	Status    DiditStatus // the provider's status
	At        time.Time   // when the provider says the event happened
	Decision  *Decision   // present for Approved, Declined, In Review, Abandoned
}

// Clock lets tests move time.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends, whichever comes first: the wait between
// retries, for the service and its adapters alike.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
