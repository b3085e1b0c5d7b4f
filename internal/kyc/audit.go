package kyc

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Actor kinds: who caused a state change (docs/audit.md).
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

// auditKey holds both what the audit log takes from a context, so a
// request that sets both pays for one context value.
type auditKey struct{}

type auditCtx struct {
	actor     Actor
	requestID string
}

func auditCtxOf(ctx context.Context) auditCtx {
	a, _ := ctx.Value(auditKey{}).(auditCtx)
	return a
}

// WithActor returns ctx carrying who acts in it; the audit log records it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return WithActorRequest(ctx, a, RequestIDOf(ctx))
}

// ActorOf is the actor ctx carries (ActorSystem when none).
func ActorOf(ctx context.Context) Actor { return auditCtxOf(ctx).actor }

// WithRequestID returns ctx carrying the request id the audit log records.
func WithRequestID(ctx context.Context, id string) context.Context {
	return WithActorRequest(ctx, ActorOf(ctx), id)
}

// RequestIDOf is the request id ctx carries ("" when none).
func RequestIDOf(ctx context.Context) string { return auditCtxOf(ctx).requestID }

// WithActorRequest is WithActor and WithRequestID together.
func WithActorRequest(ctx context.Context, a Actor, requestID string) context.Context {
	return context.WithValue(ctx, auditKey{}, auditCtx{actor: a, requestID: requestID})
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

// AuditSubjectOf is the subject under which the log records the person
// named by email or wallet (exactly one), normalised as the partner API
// normalises it: "Ann@Example.COM" finds ann@example.com's entries.
func (s *Service) AuditSubjectOf(email, wallet string) (string, error) {
	e, w, err := normalizePersonQuery(PersonQuery{Email: email, Wallet: wallet})
	if err != nil {
		return "", err
	}
	return s.AuditSubject(e + w), nil
}

// audit records a state change for tenantID made by ctx's actor; subject
// is the clear email or wallet ("" when none) and is hashed here. A failure
// to record is logged, not returned: the change it reports already
// happened.
//
// It is one INSERT of an unsealed entry, outside the change's own
// transaction: the chain is built later by SealAudit, so no request waits
// for its tenant's chain head, on any number of replicas.
func (s *Service) audit(ctx context.Context, tenantID, action, subject, result string) {
	s.appendAudit(ctx, AuditEntry{TenantID: tenantID, Action: action, Subject: s.AuditSubject(subject), Result: result})
}

// appendAudit stamps e with the time, ctx's actor and request id, and
// appends it.
func (s *Service) appendAudit(ctx context.Context, e AuditEntry) {
	e.At, e.Actor, e.RequestID = s.now().Truncate(time.Millisecond), ActorOf(ctx).String(), RequestIDOf(ctx)
	// The change happened whatever the caller does next: a partner that
	// hangs up must not cancel its record.
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "audit entry not recorded", "tenant", e.TenantID, "action", e.Action,
			"result", e.Result, "request_id", e.RequestID, "err", err)
	}
}

// auditObject records a state change of something kycgate made and named
// (an API key, an endpoint, a session): its subject is "kind:id" in clear,
// which names no person.
func (s *Service) auditObject(ctx context.Context, tenantID, action, kind, id, result string) {
	s.appendAudit(ctx, AuditEntry{TenantID: tenantID, Action: action, Subject: kind + ":" + id, Result: result})
}

// auditResult is the result an audit entry records for a change that
// ended with err: "ok", the refusal's status string, or "error".
func auditResult(err error) string {
	var ke *Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ke):
		return ke.Code
	}
	return "error"
}

// Audit actions (docs/audit.md lists them with their subjects).
const (
	AuditEmailPrepared     = "email.prepared"
	AuditEmailCodeSent     = "email.code_sent"
	AuditEmailVerify       = "email.verify"
	AuditLinkVerify        = "link.verify"
	AuditWalletChallenge   = "wallet.challenge_issued"
	AuditWalletVerify      = "wallet.verify"
	AuditSessionCreated    = "session.created"
	AuditSessionStatus     = "session.status_changed"
	AuditTenantCreated     = "tenant.created"
	AuditTenantLimits      = "tenant.limits_changed"
	AuditTenantProducts    = "tenant.products_changed"
	AuditKeyAdded          = "api_key.added"
	AuditKeyRevoked        = "api_key.revoked"
	AuditEndpointAdded     = "webhook_endpoint.added"
	AuditEndpointRemoved   = "webhook_endpoint.removed"
	AuditEndpointRotated   = "webhook_endpoint.secret_rotated"
	AuditWebhookRedelivery = "webhook.redelivered"
	AuditPersonErased      = "person.erased"
	AuditEnrollmentErased  = "enrollment.erased"
)

// AuditStore keeps the audit log. Entries are appended unsealed and
// chained by SealAudit, one sealer at a time across replicas.
type AuditStore interface {
	// AppendAudit writes e as an unsealed entry (its ID, Seq, PrevHash and
	// Hash are not used).
	AppendAudit(ctx context.Context, e AuditEntry) error
	// SealAudit chains up to limit unsealed entries, in ID order, in one
	// transaction that no other sealer runs beside: each gets its tenant's
	// next Seq and the previous entry's Hash as PrevHash, then hash(e) as
	// its Hash. It returns how many it sealed.
	SealAudit(ctx context.Context, limit int, hash func(AuditEntry) string) (int, error)
	// ListAudit is the log as f selects it, newest (highest ID) first;
	// f.Limit is between 1 and 1000.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// AuditChains lists every tenant with audit entries ("" included) and
	// how many of its entries are unsealed.
	AuditChains(ctx context.Context) ([]AuditChain, error)
	// AuditChain reads up to limit of a tenant's sealed entries with Seq
	// above afterSeq, in Seq order.
	AuditChain(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]AuditEntry, error)
}

// AuditChain is one tenant's chain as AuditChains counts it.
type AuditChain struct {
	TenantID string
	Unsealed int
}

// AuditHash is an entry's place in its chain: SHA-256 over a version tag,
// the previous entry's hash and the entry's fields, each length-prefixed
// so no two different entries encode alike. At counts in whole
// milliseconds, as stored.
func AuditHash(e AuditEntry) string {
	h := sha256.New()
	h.Write([]byte("kycgate-audit-v1"))
	for _, p := range [...]string{e.PrevHash, strconv.FormatInt(e.Seq, 10), e.TenantID,
		strconv.FormatInt(e.At.UnixMilli(), 10), e.Actor, e.Action, e.Subject, e.Result, e.RequestID} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// auditSealBatch is how many entries one sealing transaction chains.
const auditSealBatch = 500

// SealAudit chains every entry appended so far into its tenant's chain; it
// returns how many it sealed. The server runs it every few seconds; any
// number of replicas may run it together.
func (s *Service) SealAudit(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.store.SealAudit(ctx, auditSealBatch, AuditHash)
		total += n
		if err != nil {
			return total, fmt.Errorf("seal audit log: %w", err)
		}
		if n < auditSealBatch {
			return total, nil
		}
	}
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

// AuditLog reads the audit log (docs/audit.md).
func (s *Service) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	switch {
	case f.Limit <= 0:
		f.Limit = 100
	case f.Limit > 1000:
		f.Limit = 1000
	}
	out, err := s.store.ListAudit(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

// VerifyAudit seals what is pending and then checks every chain, or only
// tenantID's when it is not "".
// The oldest entry left of a chain (after pruning) is trusted as it
// stands: its PrevHash names an entry that is gone. Heads are what catch a
// chain rewritten whole, or cut short at its end (docs/audit.md).
func (s *Service) VerifyAudit(ctx context.Context, tenantID string) (AuditVerification, error) {
	v := AuditVerification{Heads: map[string]string{}}
	if _, err := s.SealAudit(ctx); err != nil {
		return v, err
	}
	chains, err := s.store.AuditChains(ctx)
	if err != nil {
		return v, fmt.Errorf("verify audit log: %w", err)
	}
	for _, c := range chains {
		if tenantID != "" && c.TenantID != tenantID {
			continue
		}
		v.Tenants++
		v.Unsealed += c.Unsealed
		if err := s.verifyChain(ctx, c.TenantID, &v); err != nil {
			return v, err
		}
	}
	return v, nil
}

// auditPage is how many entries verification reads at a time.
const auditPage = 1000

// verifyChain checks one tenant's chain into v: its entries counted, its
// head, or its first broken entry when v has none yet.
func (s *Service) verifyChain(ctx context.Context, tenantID string, v *AuditVerification) error {
	var prev *AuditEntry
	var after int64
	for {
		page, err := s.store.AuditChain(ctx, tenantID, after, auditPage)
		if err != nil {
			return fmt.Errorf("verify audit log: %w", err)
		}
		for i := range page {
			e := &page[i]
			if why := auditBreak(prev, e); why != "" {
				if v.Broken == nil {
					v.Broken, v.Reason = e, why
				}
				return nil
			}
			v.Entries++
			prev = e
		}
		if len(page) < auditPage {
			break
		}
		after = page[len(page)-1].Seq
	}
	if prev != nil {
		v.Heads[tenantID] = prev.Hash
	}
	return nil
}

// auditBreak says what is wrong with e following prev (nil: e is the
// oldest entry left), "" when nothing is.
func auditBreak(prev, e *AuditEntry) string {
	if AuditHash(*e) != e.Hash {
		return "its hash does not match its fields: the entry was changed after it was sealed"
	}
	switch {
	case prev == nil && e.Seq == 1 && e.PrevHash != "":
		return "the chain's first entry names a previous entry"
	case prev == nil:
		return ""
	case e.Seq != prev.Seq+1:
		return fmt.Sprintf("seq %d follows seq %d: %d entries before it are missing (deleted)", e.Seq, prev.Seq, e.Seq-prev.Seq-1)
	case e.PrevHash != prev.Hash:
		return fmt.Sprintf("its prev_hash does not match the hash of seq %d: that entry, or this link, was changed", prev.Seq)
	}
	return ""
}
