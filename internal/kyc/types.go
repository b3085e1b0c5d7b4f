package kyc

import (
	"encoding/json"
	"time"
)

// Tenant is a partner: its keys, products, quota and rate limit.
type Tenant struct {
	ID                 string
	Name               string
	KYCEnabled         bool
	MonthlyQuota       int // new Didit sessions per calendar month (UTC); 0 = unlimited
	RateLimitPerMinute int // per API key; 0 = unlimited
	CreatedAt          time.Time
	// KeyID is the API key the tenant was found by (Authenticate,
	// AuthenticatedStatus), "" otherwise: the audit log's actor.
	KeyID string
}

// APIKey is stored only as a keyed hash; Prefix identifies it to operators.
type APIKey struct {
	ID        string
	TenantID  string
	Hash      string
	Prefix    string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Person is one end user, known by a normalised email and/or wallet.
type Person struct {
	ID          string
	Email       string // "" when none
	Wallet      string // "" when none
	WalletChain string // "evm" | "solana" | ""
}

// Enrollment is a tenant's user: its link to a person, with the
// identifiers this tenant registered for them and its own proofs. Lookups
// at a tenant go by these identifiers only, so what another tenant proved
// about the person (a wallet linked there, say) changes nothing here, and
// proving an email to one tenant proves nothing to another. A tenant can
// hold two enrollments of one person (one by email, one by wallet) when the
// link between them was proven elsewhere: to this tenant they are two users
// until it proves the link itself (docs/api.md §6.1, §10).
type Enrollment struct {
	ID       string
	TenantID string
	PersonID string
	// Email is the address this tenant registered (prepare) or proved as
	// the wallet's link; "" when none. It is always the person's email.
	Email string
	// Wallet is the wallet this tenant verified by signature; "" when none.
	// A wallet is registered only by its proof.
	Wallet        string
	EmailVerified bool
	// PendingEmail is an address the wallet named that nobody proved yet.
	// It is not an identifier: several wallets may name one address.
	PendingEmail string
}

// WalletVerified reports whether this tenant verified the person's wallet.
func (e Enrollment) WalletVerified() bool { return e.Wallet != "" }

// Verified reports whether this tenant holds any ownership proof.
func (e Enrollment) Verified() bool { return e.EmailVerified || e.Wallet != "" }

// Session is one Didit verification session of a person.
type Session struct {
	ID          string
	PersonID    string
	TenantID    string // the tenant whose create call opened it
	URL         string
	Status      DiditStatus // unchanged from Didit
	IPInfo      []IPInfo
	Blocklisted bool
	Decision    []byte // raw decision JSON, nil until one arrives
	EventAt     time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CheckedAt   time.Time
	Watch       bool  // the reconciler polls it: open, or decided without a stored decision
	Version     int64 // optimistic-concurrency counter
}

// SessionView is what status shows of a session (docs/api.md §8).
type SessionView struct {
	ID     string
	Status DiditStatus
	URL    string
	// IPInfo is the JSON array of IPInfo exactly as the store keeps it.
	// Status is the hottest read, and decoding it only to encode it again
	// cost about a tenth of the request's CPU.
	IPInfo      json.RawMessage
	Blocklisted bool
}

// DiditStatus is a session status as Didit spells it ("Approved"). The
// partner sees another vocabulary ("approved", from KYCStatus): the type
// keeps the two from being mixed up.
type DiditStatus string

// Didit's session statuses, exactly as Didit spells them.
const (
	StatusNotStarted   DiditStatus = "Not Started"
	StatusInProgress   DiditStatus = "In Progress"
	StatusApproved     DiditStatus = "Approved"
	StatusDeclined     DiditStatus = "Declined"
	StatusInReview     DiditStatus = "In Review"
	StatusAwaitingUser DiditStatus = "Awaiting User"
	StatusResubmitted  DiditStatus = "Resubmitted"
	StatusExpired      DiditStatus = "Expired"
	StatusAbandoned    DiditStatus = "Abandoned"
	StatusKYCExpired   DiditStatus = "Kyc Expired"
)

// ValidStatus reports whether s is one of Didit's ten status strings.
func ValidStatus(s DiditStatus) bool {
	_, ok := statusRank[s]
	return ok
}

// statusRank orders statuses along a session's life, so that of two events
// carrying the same timestamp the later stage wins.
var statusRank = map[DiditStatus]int{
	StatusNotStarted:   0,
	StatusInProgress:   1,
	StatusAwaitingUser: 2,
	StatusResubmitted:  2,
	StatusInReview:     3,
	StatusApproved:     4,
	StatusDeclined:     4,
	StatusExpired:      4,
	StatusAbandoned:    4,
	StatusKYCExpired:   5,
}

// Open reports whether a session can still progress without a new session:
// docs/api.md §7 step 6.
func Open(status DiditStatus) bool {
	switch status {
	case StatusNotStarted, StatusInProgress, StatusInReview, StatusResubmitted, StatusAwaitingUser:
		return true
	}
	return false
}

// Final reports whether a status is a decision that a non-final status must
// never replace.
func Final(status DiditStatus) bool { return statusRank[status] >= 4 }

// KYCStatus maps Didit's status to the partner-facing `status`/`kyc_status`.
func KYCStatus(diditStatus DiditStatus) string {
	switch diditStatus {
	case StatusInReview:
		return "in_review"
	case StatusApproved:
		return "approved"
	case StatusDeclined:
		return "declined"
	case StatusExpired:
		return "expired"
	case StatusAbandoned:
		return "abandoned"
	case StatusKYCExpired:
		return "kyc_expired"
	}
	return "pending"
}
