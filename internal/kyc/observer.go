package kyc

import "time"

// Observer is told of the domain's countable events, so an adapter can turn
// them into metrics without this package knowing any metrics library. Its
// methods are called on request paths: they must be cheap and must not
// block. Labels are bounded by construction: no tenant, person or address
// ever reaches an Observer.
type Observer interface {
	CodeSent()                      // the mail server accepted a code (or took it without a verdict)
	CodeSendFailed()                // the code's mail was not delivered
	CodeVerified()                  // a code proved an address or a link
	CodeRefused(reason string)      // a send or verify refused: one of the Refused* reasons
	SessionCreated(kind string)     // a create answered: CreateNew, CreateExisting or CreateApproved
	QuotaRefused()                  // a create refused for the tenant's monthly quota
	ProviderError(op string)        // a provider call failed after its retries: ProviderOpCreate, ProviderOpDecision or ProviderOpDelete
	ReconcileLag(lag time.Duration) // how overdue the oldest due session was when a reconcile pass began
}

// Reasons for Observer.CodeRefused.
const (
	RefusedInvalid     = "invalid"
	RefusedExpired     = "expired"
	RefusedMaxAttempts = "max_attempts"
	RefusedRateLimited = "rate_limited"
)

// Operations for Observer.ProviderError.
const (
	ProviderOpCreate   = "create"
	ProviderOpDecision = "decision"
	ProviderOpDelete   = "delete" // an erased person's session deleted at the provider
)

// NopObserver observes nothing; it is the Service's default.
type NopObserver struct{}

func (NopObserver) CodeSent()                  {}
func (NopObserver) CodeSendFailed()            {}
func (NopObserver) CodeVerified()              {}
func (NopObserver) CodeRefused(string)         {}
func (NopObserver) SessionCreated(string)      {}
func (NopObserver) QuotaRefused()              {}
func (NopObserver) ProviderError(string)       {}
func (NopObserver) ReconcileLag(time.Duration) {}
