package kyc

import (
	"context"
	"time"
)

// PersonQuery names a person by exactly one of Email or Wallet; TenantID
// narrows a lookup or an erasure to that tenant's enrollment.
type PersonQuery struct {
	Email    string
	Wallet   string
	TenantID string
}

// PersonRecord is what kycgate holds about a person, without decision
// blobs or IP/device facts.
type PersonRecord struct {
	PersonID    string
	Email       string
	Wallet      string
	WalletChain string
	CreatedAt   time.Time
	Enrollments []EnrollmentRecord
	Sessions    []SessionRecord
}

// EnrollmentRecord is one tenant's enrollment of the person.
type EnrollmentRecord struct {
	TenantID       string
	Email          string
	Wallet         string
	EmailVerified  bool
	WalletVerified bool
	PendingEmail   string
	CreatedAt      time.Time
}

// SessionRecord is one KYC session of the person, without its decision.
type SessionRecord struct {
	ID          string
	TenantID    string // the tenant whose request created it
	Status      DiditStatus
	HasDecision bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ErasureReport says what an erasure removed.
type ErasureReport struct {
	PersonErased bool     // the person is gone (not only one enrollment)
	Enrollments  int      // enrollments removed
	Sessions     int      // sessions removed here
	Didit        []string // Didit sessions deleted at Didit
	DiditPending []string // Didit sessions whose deletion failed and is retried
	DiditError   string   // the last Didit failure, when any is pending
}

// LookupPerson finds what kycgate holds about a person; ErrNotFound when
// nobody is registered under the email or wallet (at the tenant, when
// q.TenantID is set).
func (s *Service) LookupPerson(ctx context.Context, q PersonQuery) (PersonRecord, error) {
	return PersonRecord{}, ErrNotFound
}

// ErasePerson erases a person everywhere, or only q.TenantID's enrollment
// of them (docs/operations.md, "Erasure"). ErrNotFound when nobody matches.
func (s *Service) ErasePerson(ctx context.Context, q PersonQuery) (ErasureReport, error) {
	return ErasureReport{}, ErrNotFound
}
