package kyc

import (
	"context"
	"time"
)

// Store persists everything. Each method is one statement or one
// transaction, so every rule that depends on it holds under any concurrency
// and on any number of replicas. Stores decide nothing: limits and times
// come in as arguments.
type Store interface {
	// Tenants and keys.
	CreateTenant(ctx context.Context, t Tenant, key APIKey) error
	ListTenants(ctx context.Context) ([]Tenant, error)
	ListAPIKeys(ctx context.Context, tenantID string) ([]APIKey, error)
	AddAPIKey(ctx context.Context, key APIKey) error
	RevokeAPIKey(ctx context.Context, tenantID, keyID string, at time.Time) error
	UpdateTenantLimits(ctx context.Context, tenantID string, quota, ratePerMinute *int) error
	SetKYCEnabled(ctx context.Context, tenantID string, enabled bool) error
	// TenantByKeyHash finds the tenant owning an unrevoked key.
	TenantByKeyHash(ctx context.Context, hash string) (Tenant, error)

	// PrepareEmail finds or creates the person with this email and enrolls
	// them with the tenant; created reports whether the enrollment is new.
	PrepareEmail(ctx context.Context, tenantID, personID, email string, now time.Time) (p Person, e Enrollment, created bool, err error)
	// FindEnrollment finds a tenant's enrolled person by email or wallet
	// (exactly one of them non-empty); ErrNotFound if not enrolled.
	FindEnrollment(ctx context.Context, tenantID, email, wallet string) (Person, Enrollment, error)
	// FindEnrollmentLatest is FindEnrollment plus what status shows of the
	// person's latest session (nil when none), read together.
	FindEnrollmentLatest(ctx context.Context, tenantID, email, wallet string) (Person, Enrollment, *SessionView, error)
	// TenantFindLatest is TenantByKeyHash and FindEnrollmentLatest in one
	// read. ErrNotFound is about the key; a good key with nobody enrolled
	// under the email or wallet gives its tenant and a zero Person.
	TenantFindLatest(ctx context.Context, keyHash, email, wallet string) (Tenant, Person, Enrollment, *SessionView, error)

	// SaveOTP stores a new code for (tenant, subject), replacing any
	// previous one, only if the previous send is at least minGap old and fewer than
	// maxPerWindow sends happened within window. ok=false means refused;
	// then retryAt tells when a send would next be allowed.
	SaveOTP(ctx context.Context, o OTPSend) (ok bool, retryAt time.Time, err error)
	// DropOTP invalidates a code whose delivery failed and gives back its
	// place in the minimum-gap rule (it still counts toward the window).
	DropOTP(ctx context.Context, tenantID, subject, codeHash string) error
	// CountOTPAttempt counts one verification attempt before the compare.
	// It only counts against a live, unexpired code with attempts left;
	// otherwise it returns the reason without counting.
	CountOTPAttempt(ctx context.Context, tenantID, subject string, maxAttempts int, now time.Time) (codeHash string, res OTPAttempt, err error)
	// ConsumeOTP uses the code once and marks the email verified on the
	// tenant's enrollment of personID (promoting a pending email), in one
	// transaction. ok=false when another request used it first.
	ConsumeOTP(ctx context.Context, tenantID, subject, personID, codeHash string) (ok bool, err error)

	// Wallet challenges.
	SaveChallenge(ctx context.Context, c Challenge) error
	FindChallenge(ctx context.Context, nonce string) (Challenge, error)
	// ConsumeChallenge marks it used; ok=false when it was already used.
	ConsumeChallenge(ctx context.Context, nonce string, at time.Time) (ok bool, err error)
	// PrepareWallet finds or creates the person with this wallet, links the
	// email when given (ErrConflict when the email belongs to a person with
	// another wallet), enrolls them with wallet_verified = true.
	PrepareWallet(ctx context.Context, tenantID, personID string, w WalletProof, email string, now time.Time) (p Person, e Enrollment, created bool, err error)

	// Sessions.
	LatestSession(ctx context.Context, personID string) (Session, error)
	SessionByID(ctx context.Context, id string) (Session, error)
	// ClaimSessionCreation gives one caller at a time, across replicas, the
	// right to create a session for a person, until `until`.
	ClaimSessionCreation(ctx context.Context, personID, token string, until, now time.Time) (bool, error)
	// RenewSessionClaim extends a claim the caller still holds; false when
	// it lapsed and was taken, or was released.
	RenewSessionClaim(ctx context.Context, personID, token string, until time.Time) (bool, error)
	ReleaseSessionClaim(ctx context.Context, personID, token string) error
	// InsertSession stores a new session and releases the creation claim,
	// only while the claim is still held and live at s.CreatedAt; otherwise
	// ErrConflict and nothing is written. ErrExists, and nothing written,
	// when a session with s.ID is already stored.
	InsertSession(ctx context.Context, s Session, claimToken string) error
	// ApplyEvent records eventKey and writes s, in one transaction, if the
	// key is new and the stored Version is still s.Version (compare-and-set;
	// the stored Version becomes s.Version+1). duplicate=true when the key
	// was already recorded; ErrConflict when the version moved on.
	ApplyEvent(ctx context.Context, eventKey string, s Session, now time.Time) (duplicate bool, err error)
	// WatchedSessions lists sessions marked Watch not checked since before,
	// oldest check first.
	WatchedSessions(ctx context.Context, before time.Time, limit int) ([]Session, error)
	MarkSessionChecked(ctx context.Context, id string, at time.Time) error

	// Quota: ReserveQuota takes one unit of the month's quota when fewer
	// than limit are used; ReleaseQuota gives one back.
	ReserveQuota(ctx context.Context, tenantID, month string, limit int) (bool, error)
	ReleaseQuota(ctx context.Context, tenantID, month string) error
	QuotaUsed(ctx context.Context, tenantID, month string) (int, error)

	// Prune deletes rows no rule needs any more; it returns how many.
	Prune(ctx context.Context, p PruneBefore) (int64, error)

	// Ping checks the database is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// OTPSend is one request to store a new code. Subject is what the code is
// for: the normalised email address, so limits follow the address.
type OTPSend struct {
	TenantID     string
	Subject      string
	CodeHash     string
	Now          time.Time
	ExpiresAt    time.Time
	MinGap       time.Duration
	Window       time.Duration
	MaxPerWindow int // must be 5: the store keeps the last five send times
}

// OTPAttempt is what CountOTPAttempt found.
type OTPAttempt int

const (
	OTPCounted     OTPAttempt = iota // counted; compare the hash now
	OTPNone                          // no live code (never sent, or used)
	OTPExpired                       // past its lifetime
	OTPMaxAttempts                   // no attempts left
)

// Challenge is a wallet sign-in message we issued.
type Challenge struct {
	Nonce     string
	TenantID  string
	Wallet    string
	Chain     string
	Message   string
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// PruneBefore gives, per kind of row, the time before which it can go.
type PruneBefore struct {
	Challenges   time.Time // expired challenges (used or not)
	Claims       time.Time // session-creation claims that lapsed
	Events       time.Time // webhook de-duplication keys
	RateCounters time.Time // rate-limit windows
}

// WalletProof is a verified wallet.
type WalletProof struct {
	Wallet string
	Chain  string
}
