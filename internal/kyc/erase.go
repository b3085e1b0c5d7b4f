package kyc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// Erasure (docs/erasure.md): a person, or one tenant's enrollment of them,
// is deleted in one store transaction together with everything kept under
// their id, email or wallet; their Didit sessions are queued for deletion
// at Didit in that same transaction and deleted after it commits, with
// retries until Didit confirms.

const (
	// deletionLease is how long one worker holds a queued Didit deletion:
	// longer than a delete call with all the client's retries takes, so a
	// live worker never loses it, short enough that a dead one's work is
	// soon picked up elsewhere.
	deletionLease = 2 * time.Minute
	// deletionCallTimeout bounds one deletion (the client's retries
	// included).
	deletionCallTimeout = 45 * time.Second
	// deletionBatch is how many queued deletions one retry run claims.
	deletionBatch = 20
)

// deletionRetryAfter is the wait before a failed deletion is tried again,
// after attempts failed attempts: 10 s doubling, at most an hour.
func deletionRetryAfter(attempts int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// errPersonQuery is a query that names neither or both of email and wallet.
var errPersonQuery = NewError(CodeMissingParams, "give exactly one of email or wallet")

// normalizePersonQuery gives the stored form of q's email or wallet
// (exactly one), checked and normalised as the partner API does.
func normalizePersonQuery(q PersonQuery) (email, wallet string, err error) {
	if (q.Email == "") == (q.Wallet == "") {
		return "", "", errPersonQuery
	}
	return normalizeIdentity(Identity{Email: q.Email, Wallet: q.Wallet})
}

// erasureSubject is the keyed hash an idempotency row carries for an email
// or wallet its request named.
func (s *Service) erasureSubject(identifier string) string {
	return s.mac("erasure-subject", identifier)
}

// requestSubjects hashes the email and wallet a partner request's JSON
// body names (normalised as the API normalises them); nil when it names
// none.
func (s *Service) requestSubjects(body []byte) []string {
	var f struct {
		Email  any `json:"email"`
		Wallet any `json:"wallet"`
	}
	if json.Unmarshal(body, &f) != nil {
		return nil
	}
	var out []string
	if raw, ok := f.Email.(string); ok {
		if e, ok := NormalizeEmail(raw); ok {
			out = append(out, s.erasureSubject(e))
		}
	}
	if raw, ok := f.Wallet.(string); ok {
		if w, err := normalizeWallet(raw); err == nil {
			out = append(out, s.erasureSubject(w))
		}
	}
	return out
}

// LookupPerson finds what kycgate holds about a person; ErrNotFound when
// nobody is registered under the email or wallet (at the tenant, when
// q.TenantID is set).
func (s *Service) LookupPerson(ctx context.Context, q PersonQuery) (PersonRecord, error) {
	email, wallet, err := normalizePersonQuery(q)
	if err != nil {
		return PersonRecord{}, err
	}
	return s.store.PersonRecord(ctx, email, wallet, strings.TrimSpace(q.TenantID))
}

// erasure is what an erasure's transaction did.
type erasure struct {
	report   ErasureReport
	tenants  []string // tenants whose enrollments went
	sessions []string // sessions queued for deletion at Didit
}

// ErasePerson erases a person everywhere, or only q.TenantID's enrollment
// of them (docs/erasure.md). ErrNotFound when nobody matches. A per-tenant
// erasure leaves the person's sessions, which other tenants may show
// (docs/api.md §10), unless it removed the person's last enrollment: then
// the whole person goes. The report lists the sessions Didit deleted and
// those still queued, which the server's retry job deletes later.
func (s *Service) ErasePerson(ctx context.Context, q PersonQuery) (ErasureReport, error) {
	email, wallet, err := normalizePersonQuery(q)
	if err != nil {
		return ErasureReport{}, err
	}
	tenantID := strings.TrimSpace(q.TenantID)
	token := newID("dd_")
	var done erasure
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		done, err = s.eraseTx(ctx, tx, email, wallet, tenantID, token)
		return err
	})
	if err != nil {
		return ErasureReport{}, err
	}
	action := AuditEnrollmentErased
	if done.report.PersonErased {
		action = AuditPersonErased
	}
	for _, t := range done.tenants {
		s.audit(ctx, t, action, "", "ok") // no subject: the entry must not name the person
	}
	s.log.InfoContext(ctx, "person erased", "whole", done.report.PersonErased, "tenants", len(done.tenants),
		"enrollments", done.report.Enrollments, "sessions", done.report.Sessions)
	rep := done.report
	rep.Didit, rep.DiditPending, rep.DiditError = s.deleteAtDidit(ctx, done.sessions, token)
	return rep, nil
}

// eraseTx is the erasure's transaction. The person is read (and locked)
// before their enrollments, the identity rules' lock order.
func (s *Service) eraseTx(ctx context.Context, tx Tx, email, wallet, tenantID, token string) (erasure, error) {
	var p Person
	var err error
	if email != "" {
		p, err = tx.PersonByEmail(ctx, email)
	} else {
		p, err = tx.PersonByWallet(ctx, wallet)
	}
	if err != nil {
		return erasure{}, err
	}
	enrs, err := tx.EnrollmentsOf(ctx, p.ID)
	if err != nil {
		return erasure{}, err
	}
	var e erasure
	whole := true
	for _, en := range enrs {
		if tenantID == "" || en.TenantID == tenantID {
			if !slices.Contains(e.tenants, en.TenantID) {
				e.tenants = append(e.tenants, en.TenantID)
			}
		} else {
			whole = false // another tenant keeps its enrollment, and its view of the sessions
		}
	}
	if tenantID != "" && len(e.tenants) == 0 {
		return erasure{}, ErrNotFound
	}
	sc := ErasureScope{PersonID: p.ID, Email: p.Email, Wallet: p.Wallet}
	if !whole {
		sc.TenantID = tenantID
	}
	for _, id := range []string{p.Email, p.Wallet} {
		if id != "" {
			sc.Subjects = append(sc.Subjects, s.erasureSubject(id))
		}
	}
	if e.report.Enrollments, err = tx.EraseTraces(ctx, sc); err != nil {
		return erasure{}, err
	}
	if !whole {
		return e, nil
	}
	now := s.now()
	e.sessions, err = tx.ErasePerson(ctx, p.ID, DeletionClaim{Token: token, Now: now, Until: now.Add(deletionLease)})
	if err != nil {
		return erasure{}, err
	}
	e.report.PersonErased, e.report.Sessions = true, len(e.sessions)
	return e, nil
}

// deleteAtDidit deletes the sessions token holds queued, one call each
// (the client retries a transient failure itself), and records each
// outcome: a deletion that failed stays queued for the retry job.
func (s *Service) deleteAtDidit(ctx context.Context, ids []string, token string) (deleted, pending []string, lastErr string) {
	for _, id := range ids {
		err := s.deleteOne(ctx, id, token, 0)
		if err != nil {
			pending, lastErr = append(pending, id), err.Error()
			continue
		}
		deleted = append(deleted, id)
	}
	return deleted, pending, lastErr
}

// errNoProvider: this process has no Didit client (a CLI next to the
// built-in simulator): the server's retry job deletes the session.
var errNoProvider = errors.New("no Didit client in this process; the server's retry job deletes it")

// deleteOne makes one attempt at a queued deletion held by token (its
// attempts so far: prior) and records the outcome.
func (s *Service) deleteOne(ctx context.Context, id, token string, prior int) error {
	err := errNoProvider
	if s.provider != nil {
		cctx, cancel := context.WithTimeout(ctx, deletionCallTimeout)
		err = s.provider.DeleteSession(cctx, id)
		cancel()
	}
	o := DeletionOutcome{SessionID: id, Token: token, Done: err == nil}
	switch {
	case err == nil:
		s.log.InfoContext(ctx, "didit session deleted", "session", id)
	case errors.Is(err, errNoProvider):
		o.Error, o.NextAt = err.Error(), s.now()
	default:
		s.obs.ProviderError(ProviderOpDelete)
		o.Error, o.NextAt = err.Error(), s.now().Add(deletionRetryAfter(prior+1))
		s.log.WarnContext(ctx, "didit session deletion failed; retried later", "session", id,
			"attempt", prior+1, "retry_at", o.NextAt, "err", err)
	}
	// Recorded whatever the caller's context says: an outcome left
	// unrecorded only waits for its lease to lapse.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := s.store.FinishDiditDeletion(rctx, o); ferr != nil {
		s.log.ErrorContext(ctx, "record didit deletion", "session", id, "err", ferr)
		if err == nil {
			return fmt.Errorf("deleted at Didit, not yet recorded: %w", ferr)
		}
	}
	return err
}

// RetryDiditDeletions tries the queued Didit deletions that are due (all
// of them, whenever due, with now), each once, on whichever replica claims
// them first. It returns how many it deleted and how many failed again.
func (s *Service) RetryDiditDeletions(ctx context.Context, now bool) (deleted, failed int, err error) {
	at := s.now()
	due := at
	if now {
		due = at.Add(100 * 365 * 24 * time.Hour)
	}
	token := newID("dd_")
	list, err := s.store.ClaimDiditDeletions(ctx, DeletionClaim{Token: token, Now: at, Due: due,
		Until: at.Add(deletionLease), Limit: deletionBatch})
	if err != nil {
		return 0, 0, err
	}
	for _, d := range list {
		if err := s.deleteOne(ctx, d.SessionID, token, d.Attempts); err != nil {
			failed++
		} else {
			deleted++
		}
	}
	return deleted, failed, nil
}

// DiditDeletions lists the Didit deletions still queued, oldest first.
func (s *Service) DiditDeletions(ctx context.Context) ([]DiditDeletion, error) {
	return s.store.DiditDeletions(ctx)
}
