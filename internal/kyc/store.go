package kyc

import (
	"context"
	"errors"
	"time"
)

// Store persists everything. Each method is one statement or one
// transaction, so every rule that depends on it holds under any concurrency
// and on any number of replicas. Stores decide nothing: limits and times
// come in as arguments.
type Store interface {
	IdempotencyStore
	AuditStore

	// Tenants and keys.
	CreateTenant(ctx context.Context, t Tenant, key APIKey) error
	ListTenants(ctx context.Context) ([]Tenant, error)
	ListAPIKeys(ctx context.Context, tenantID string) ([]APIKey, error)
	AddAPIKey(ctx context.Context, key APIKey) error
	RevokeAPIKey(ctx context.Context, tenantID, keyID string, at time.Time) error
	UpdateTenantLimits(ctx context.Context, tenantID string, quota, ratePerMinute *int) error
	SetKYCEnabled(ctx context.Context, tenantID string, enabled bool) error
	// Tenant finds a tenant by id; ErrNotFound if none.
	Tenant(ctx context.Context, id string) (Tenant, error)
	// MonthUsage is the tenant's quota units taken (sessions created or
	// being created) and codes mailed (ConfirmOTP counts them, in the
	// month of the send's time in UTC) in month ("2006-01").
	MonthUsage(ctx context.Context, tenantID, month string) (MonthUsage, error)
	// TenantByKeyHash finds the tenant owning an unrevoked key.
	TenantByKeyHash(ctx context.Context, hash string) (Tenant, error)
	// RehashAPIKey finds the tenant owning an unrevoked key stored under
	// hash or any of old (its names under secrets the current one
	// replaced), and renames a key found under an old one to hash.
	// Replicas may race: the rename happens once, and a caller that lost
	// finds the key under hash. moved reports whether this call renamed it.
	RehashAPIKey(ctx context.Context, hash string, old []string) (t Tenant, moved bool, err error)

	// PrepareEmail registers email at the tenant: it finds or creates the
	// person with this email (ids.Person for a new one) and the tenant's
	// enrollment registered under it (ids.Enrollment for a new one).
	// created reports whether the tenant registered the address just now.
	PrepareEmail(ctx context.Context, tenantID string, ids NewIDs, email string, now time.Time) (e Enrollment, created bool, err error)
	// FindEnrollment finds the tenant's enrollment registered under email
	// or wallet (exactly one of them non-empty); ErrNotFound if none.
	FindEnrollment(ctx context.Context, tenantID, email, wallet string) (Enrollment, error)
	// FindEnrollmentLatest is FindEnrollment plus what status shows of the
	// person's latest session (nil when none), read together.
	FindEnrollmentLatest(ctx context.Context, tenantID, email, wallet string) (Enrollment, *SessionView, error)
	// StatusRead is everything GET /kyc/status needs in one read, the
	// hot path's single round trip: TenantByKeyHash and
	// FindEnrollmentLatest together. ErrNotFound is about the key; a good
	// key with nobody registered under the email or wallet gives its
	// tenant and a zero Enrollment.
	StatusRead(ctx context.Context, keyHash, email, wallet string) (Tenant, Enrollment, *SessionView, error)
	// PendingLinks lists up to limit of the tenant's enrollments on which
	// email is pending.
	PendingLinks(ctx context.Context, tenantID, email string, limit int) ([]Enrollment, error)

	// SaveOTP stores a new code for o's (tenant, address, wallet), replacing
	// that link's previous code, only if the address's previous send (of any
	// code, for any link) is at least MinGap old and fewer than
	// MaxPerWindow sends to it happened within Window. ok=false means
	// refused; then retryAt tells when a send would next be allowed.
	SaveOTP(ctx context.Context, o OTPSend) (ok bool, retryAt time.Time, err error)
	// DropOTP invalidates a code whose delivery failed and takes the send
	// made at sentAt out of both limits (gap and window): a failed
	// delivery costs the address nothing.
	DropOTP(ctx context.Context, c CodeRef, codeHash string, sentAt time.Time) error
	// ConfirmOTP ends the delivery lease of the send made at sentAt: it
	// counts in the limits for good, and once in the tenant's codes mailed
	// that month (MonthUsage). Until then, a send whose lease lapsed
	// (its process died mid-delivery) blocks nothing, and the next send
	// takes its place.
	ConfirmOTP(ctx context.Context, c CodeRef, sentAt time.Time) error
	// CountOTPAttempt counts one verification attempt before the compare.
	// It only counts against a live, unexpired code with attempts left;
	// otherwise it returns the reason without counting.
	CountOTPAttempt(ctx context.Context, c CodeRef, maxAttempts int, now time.Time) (codeHash string, res OTPAttempt, err error)
	// UseOTP counts one attempt at an address's own code (c.Wallet empty)
	// as CountOTPAttempt does and, when match accepts the stored hash, uses
	// the code once and marks the address verified on the tenant's
	// enrollment registered under it, in one transaction (Used=false when
	// another request used it first). The enrollment it verifies (when it
	// was not verified yet) is fan's audience, and fan's events are
	// written with the use. After an error, Attempt is OTPCounted only if
	// the attempt still counted.
	UseOTP(ctx context.Context, c CodeRef, maxAttempts int, now time.Time, match func(codeHash string) bool,
		fan Fanout) (OTPUse, error)

	// Wallet challenges.
	SaveChallenge(ctx context.Context, c Challenge) error
	FindChallenge(ctx context.Context, nonce string) (Challenge, error)

	// InTx runs fn in one write transaction and commits when fn returns nil.
	// When fn fails with ErrRace (a concurrent transaction committed
	// something fn's decision depended on), or the database aborted the
	// transaction to break a deadlock, InTx rolls back and runs fn again, a
	// few times: fn must only read and write through tx.
	InTx(ctx context.Context, fn func(Tx) error) error

	// Sessions.
	LatestSession(ctx context.Context, personID string) (Session, error)
	SessionByID(ctx context.Context, id string) (Session, error)
	// ClaimSessionCreation gives one caller at a time, across replicas, the
	// right to create a session for a person, until `until`. ErrNotFound
	// when the person no longer exists (a link merged it into another).
	ClaimSessionCreation(ctx context.Context, personID, token string, until, now time.Time) (bool, error)
	// RenewSessionClaim extends a claim the caller still holds; false when
	// it lapsed and was taken, or was released.
	RenewSessionClaim(ctx context.Context, personID, token string, until time.Time) (bool, error)
	// ReleaseSessionClaim ends a claim and gives back the quota unit it
	// holds, together.
	ReleaseSessionClaim(ctx context.Context, personID, token string) error
	// SweepLapsedClaims deletes claims lapsed before `before` and gives
	// back their quota units: what a holder that died leaves behind.
	SweepLapsedClaims(ctx context.Context, before time.Time) (int64, error)
	// InsertSession stores a new session and releases the creation claim,
	// only while the claim is still held and live at s.CreatedAt; otherwise
	// ErrConflict and nothing is written. ErrExists, and nothing written,
	// when a session with s.ID is already stored.
	// fan's events (its audience: the person's enrollments) are written in
	// the same transaction.
	InsertSession(ctx context.Context, s Session, claimToken string, fan Fanout) error
	// ApplyEvent records eventKey and writes s, in one transaction, if the
	// key is new and the stored Version is still s.Version (compare-and-set;
	// the stored Version becomes s.Version+1). duplicate=true when the key
	// was already recorded; ErrConflict when the version moved on.
	// When it writes, fan's events (its audience: the person's enrollments,
	// and whether s is the person's latest session) are written with it.
	ApplyEvent(ctx context.Context, eventKey string, s Session, now time.Time, fan Fanout) (duplicate bool, err error)
	// WatchedSessions lists sessions marked Watch not checked since before,
	// oldest check first.
	WatchedSessions(ctx context.Context, before time.Time, limit int) ([]Session, error)
	MarkSessionChecked(ctx context.Context, id string, at time.Time) error

	// Quota: ReserveQuota takes one unit of the month's quota for the
	// claim q names, when fewer than limit are used, and records it on the
	// claim; a claim that already holds that unit (taken over from a holder
	// that died) keeps it. ErrConflict when the claim is no longer held.
	// The unit lives as long as the claim: InsertSession makes it
	// permanent, ReleaseSessionClaim gives it back, and so does
	// SweepLapsedClaims.
	ReserveQuota(ctx context.Context, q QuotaHold, limit int) (bool, error)
	QuotaUsed(ctx context.Context, tenantID, month string) (int, error)

	// Outbound webhooks.
	CreateWebhookEndpoint(ctx context.Context, ep WebhookEndpoint) error
	// WebhookEndpoint finds one of the tenant's endpoints; ErrNotFound if none.
	WebhookEndpoint(ctx context.Context, tenantID, id string) (WebhookEndpoint, error)
	ListWebhookEndpoints(ctx context.Context, tenantID string) ([]WebhookEndpoint, error)
	// RemoveWebhookEndpoint deletes an endpoint and its deliveries.
	RemoveWebhookEndpoint(ctx context.Context, tenantID, id string) error
	// RotateWebhookSecret makes secret the endpoint's and ep.Secret the
	// previous one until prevUntil, only while ep.Secret is still the
	// current one (ErrConflict otherwise).
	RotateWebhookSecret(ctx context.Context, ep WebhookEndpoint, secret string, prevUntil time.Time) error
	// ClaimDeliveries leases up to limit deliveries due at now (pending,
	// next attempt not after now, endpoint enabled) to token until
	// leaseUntil; no delivery goes to two claimers. token must be new for
	// every claim: it names the claim's deliveries.
	ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, token string, limit int) ([]Delivery, error)
	// FinishDelivery records an attempt's outcome, only while o.Token
	// still holds the lease (ErrConflict otherwise), and updates the
	// endpoint's health with it.
	FinishDelivery(ctx context.Context, o DeliveryOutcome) error
	// ListDeliveries is an endpoint's delivery log, newest first.
	ListDeliveries(ctx context.Context, tenantID, endpointID string, limit int) ([]DeliveryRecord, error)
	// Redeliver makes the tenant's event due again at now for its endpoint
	// endpointID (every enabled endpoint subscribed to it when ""), with a
	// fresh retry schedule; it returns how many deliveries it queued.
	// ErrNotFound when the tenant has no such event.
	Redeliver(ctx context.Context, tenantID, eventID, endpointID string, now time.Time) (int, error)

	// Erasure (docs/erasure.md). The erasure itself runs in InTx.
	//
	// PersonRecord reads what is stored about the person with email or
	// wallet (exactly one non-empty): the person, their enrollments (only
	// tenantID's when it is not ""), their sessions without decisions.
	// ErrNotFound when nobody has the identifier, or when tenantID has no
	// enrollment of them.
	PersonRecord(ctx context.Context, email, wallet, tenantID string) (PersonRecord, error)
	// QueueOrphanDeletion queues a provider session for deletion when the
	// person it was created for no longer exists (erased while the create
	// ran); queued reports whether it did.
	QueueOrphanDeletion(ctx context.Context, sessionID, personID string, now time.Time) (queued bool, err error)
	// ClaimDiditDeletions leases up to limit queued deletions due by due
	// whose lease (if any) lapsed by now, to token until leaseUntil: no
	// deletion goes to two claimers.
	ClaimDiditDeletions(ctx context.Context, c DeletionClaim) ([]DiditDeletion, error)
	// FinishDiditDeletion records an attempt while token holds its lease:
	// a done deletion leaves the queue; a failed one is due again at
	// o.NextAt with its error kept.
	FinishDiditDeletion(ctx context.Context, o DeletionOutcome) error
	// DiditDeletions lists the queue, oldest first.
	DiditDeletions(ctx context.Context) ([]DiditDeletion, error)

	// Prune deletes rows no rule needs any more; it returns how many.
	Prune(ctx context.Context, p PruneBefore) (int64, error)

	// Ping checks the database is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// CodeRef names one code slot: the address it is mailed to at a tenant,
// and the wallet whose link to the address it proves ("" for the address's
// own code). Codes, their attempts and their send limits belong to the
// address, not to the person it resolves to today.
type CodeRef struct {
	TenantID string
	Address  string
	Wallet   string
}

// QuotaHold names a quota unit by the creation claim that holds it.
type QuotaHold struct {
	PersonID, Token string // the claim
	TenantID, Month string // the unit
}

// OTPSend is one request to store a new code.
type OTPSend struct {
	CodeRef
	CodeHash     string
	Now          time.Time
	LeaseUntil   time.Time // the delivery lease: when an unconfirmed send stops counting
	ExpiresAt    time.Time
	MinGap       time.Duration
	Window       time.Duration
	MaxPerWindow int // must be 5: the store keeps the last five send times
}

// OTPAttempt is what CountOTPAttempt found.
type OTPAttempt int

// OTPUse is what UseOTP did.
type OTPUse struct {
	Attempt OTPAttempt // OTPCounted, or why the code could not be tried
	Used    bool       // it matched, and this request used it
}

const (
	OTPCounted        OTPAttempt = iota // counted; compare the hash now
	OTPNone                             // no live code (never sent, or used)
	OTPExpired                          // past its lifetime
	OTPNoAttemptsLeft                   // no attempts left
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
	Idempotency  time.Time // idempotency keys whose 24 h ended
	Outbox       time.Time // outbound webhook events and their finished deliveries
	OTPCodes     time.Time // codes (used or not) that expired
	OTPSends     time.Time // send histories whose newest send, gap and delivery lease all ended
	// Decisions: the decision and IP/device facts of sessions in one of
	// FinalStatuses, not watched, last updated before then, are emptied
	// (their status stays). Zero keeps them all.
	Decisions     time.Time
	FinalStatuses []DiditStatus
	// Audit: whole sealed prefixes of each audit chain whose entries are
	// all older than this go; every chain keeps its head. Zero keeps all.
	Audit time.Time
}

// NewIDs are the ids a write uses for the rows it creates.
type NewIDs struct {
	Person     string
	Enrollment string
}

// ErrRace is what a Tx method returns when a concurrent transaction
// committed a row that contradicts what the transaction read (an email or
// wallet taken meanwhile): InTx runs the transaction again, and it decides
// on what is there now.
var ErrRace = errors.New("store: a concurrent change; run the transaction again")

// Tx is one write transaction of the identity rules. Every read locks the
// rows it returns until the transaction ends (PostgreSQL: FOR UPDATE, or
// FOR NO KEY UPDATE on persons, which other statements' foreign keys may
// still refer to; SQLite runs one write transaction at a time), so what the
// rules decide on cannot change before they commit. A row that did not exist when read
// may still be inserted by a concurrent transaction: the write that would
// collide with it fails with ErrRace.
type Tx interface {
	// ConsumeChallenge marks a challenge used; false when it already was.
	ConsumeChallenge(ctx context.Context, nonce string, at time.Time) (bool, error)
	// ConsumeCode uses a live code once; false when it is gone or changed.
	ConsumeCode(ctx context.Context, c CodeRef, codeHash string) (bool, error)

	PersonByID(ctx context.Context, id string) (Person, error)
	PersonByEmail(ctx context.Context, email string) (Person, error)
	PersonByWallet(ctx context.Context, wallet string) (Person, error)
	InsertPerson(ctx context.Context, p Person, now time.Time) error
	// UpdatePerson sets p's email, wallet and chain.
	UpdatePerson(ctx context.Context, p Person) error
	// MergePerson moves every enrollment of person from to person into,
	// drops from's lapsed creation claim, and deletes from. ErrRace when
	// from has a session or a live claim after all (a create went through
	// since KYCHistory was read).
	MergePerson(ctx context.Context, from, into string, now time.Time) error
	// KYCHistory reports whether the person has a KYC session, or a live
	// claim to be creating one right now.
	KYCHistory(ctx context.Context, personID string, now time.Time) (bool, error)

	EnrollmentByEmail(ctx context.Context, tenantID, email string) (Enrollment, error)
	EnrollmentByWallet(ctx context.Context, tenantID, wallet string) (Enrollment, error)
	InsertEnrollment(ctx context.Context, e Enrollment, now time.Time) error
	// UpdateEnrollment writes e's person, identifiers, proof and pending
	// email.
	UpdateEnrollment(ctx context.Context, e Enrollment) error
	DeleteEnrollment(ctx context.Context, id string) error

	// Emit writes outbox events, and their deliveries to the tenants'
	// subscribed endpoints, in this transaction.
	Emit(ctx context.Context, events []OutboxEvent) error

	// EnrollmentsOf lists the person's enrollments at every tenant.
	EnrollmentsOf(ctx context.Context, personID string) ([]Enrollment, error)
	// EraseTraces deletes the person's enrollments in sc's scope and what
	// is kept there under the person's email or wallet: codes and send
	// histories, challenges, idempotent answers, outbox events and their
	// deliveries, and other enrollments' pending links to the email. It
	// returns how many enrollments it deleted.
	EraseTraces(ctx context.Context, sc ErasureScope) (int, error)
	// ErasePerson deletes the person with their sessions, the sessions'
	// webhook keys and their creation claims (giving back a claim's quota
	// unit), and queues each session's deletion at the provider under
	// lease. Call it after EraseTraces without a tenant. It returns the
	// session ids. ErrRace when a row referring to the person appeared
	// meanwhile.
	ErasePerson(ctx context.Context, personID string, lease DeletionClaim) ([]string, error)
}

// ErasureScope is what an erasure removes: the person's rows at TenantID,
// or at every tenant when it is "". Subjects are the keyed hashes
// (Service.erasureSubject) of Email and Wallet, which idempotency rows
// carry.
type ErasureScope struct {
	TenantID      string
	PersonID      string
	Email, Wallet string
	Subjects      []string
}

// DiditDeletion is one queued deletion of a session at the provider.
type DiditDeletion struct {
	SessionID string
	QueuedAt  time.Time
	Attempts  int
	NextAt    time.Time
	LastError string
}

// DeletionClaim leases queued deletions: Token holds them until Until.
type DeletionClaim struct {
	Token string
	Now   time.Time
	Due   time.Time // claim deletions due by then
	Until time.Time
	Limit int
}

// DeletionOutcome is one deletion attempt's result.
type DeletionOutcome struct {
	SessionID, Token string
	Done             bool
	Error            string
	NextAt           time.Time
}
