package kyc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// KYCTypePublic is the only kyc_type (docs/api.md §7).
const KYCTypePublic = "verify_public_kyc"

// Identity names a person by email and/or wallet, as partners send them.
type Identity struct{ Email, Wallet string }

// CreateResult says which of the three §7 cases happened.
type CreateResult struct {
	Kind     string      // didit_create_kyc_session | didit_existing_kyc_session | kyc_already_approved
	Session  SessionView // IPInfo left empty: the answer shows the id and URL
	Approved bool
}

const (
	CreateNew      = "didit_create_kyc_session"
	CreateExisting = "didit_existing_kyc_session"
	CreateApproved = "kyc_already_approved"
)

// resolve finds the tenant's user named by id, and the person's latest
// session (nil when none) in the same query. With both fields, they must
// name the same user here: one enrollment registered under both, which is
// what a link proven at this tenant makes. notFound is the endpoint's own
// error.
func (s *Service) resolve(ctx context.Context, tenant Tenant, id Identity, notFound *Error) (Enrollment, *SessionView, error) {
	email, wal, err := normalizeIdentity(id)
	if err != nil {
		return Enrollment{}, nil, err
	}
	find := func(email, wal string, latest bool) (e Enrollment, sess *SessionView, err error) {
		if latest {
			e, sess, err = s.store.FindEnrollmentLatest(ctx, tenant.ID, email, wal)
		} else {
			e, err = s.store.FindEnrollment(ctx, tenant.ID, email, wal)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return e, nil, err
		}
		return e, sess, err
	}
	if email == "" || wal == "" {
		e, sess, err := find(email, wal, true)
		if errors.Is(err, ErrNotFound) {
			return e, nil, notFound
		}
		return e, sess, err
	}
	ee, sess, err1 := find(email, "", true)
	ew, _, err2 := find("", wal, false)
	// find answers nil, ErrNotFound, or the endpoint's 500.
	failed := func(err error) bool { return err != nil && !errors.Is(err, ErrNotFound) }
	switch {
	case failed(err1):
		return ee, nil, err1
	case failed(err2):
		return ew, nil, err2
	case errors.Is(err1, ErrNotFound) && errors.Is(err2, ErrNotFound):
		return ee, nil, notFound
	case err1 != nil || err2 != nil || ee.ID != ew.ID:
		return ee, nil, NewError(CodeIdentityMismatch, "email and wallet do not belong to the same user")
	}
	return ee, sess, nil
}

// normalizeIdentity gives the stored forms of id's email and wallet (each
// empty when not given), or the error that names a malformed one (docs/api.md
// §1, §7 step 2: the email is checked first).
func normalizeIdentity(id Identity) (email, wal string, err error) {
	if id.Email != "" {
		e, ok := NormalizeEmail(id.Email)
		if !ok {
			return "", "", errInvalidEmail
		}
		email = e
	}
	if id.Wallet != "" {
		if wal, err = normalizeWallet(id.Wallet); err != nil {
			return "", "", err
		}
	}
	return email, wal, nil
}

// CreateSession creates or resumes the person's Didit session (docs/api.md §7),
// with the checks in the documented order.
func (s *Service) CreateSession(ctx context.Context, tenant Tenant, kycType string, id Identity) (CreateResult, error) {
	r, err := s.createSession(ctx, tenant, kycType, id)
	if err == nil {
		s.obs.SessionCreated(r.Kind)
	}
	return r, err
}

func (s *Service) createSession(ctx context.Context, tenant Tenant, kycType string, id Identity) (CreateResult, error) {
	if kycType != KYCTypePublic {
		return CreateResult{}, NewError(CodeMethodNotFound, "KYC method not found")
	}
	if id.Email == "" && id.Wallet == "" {
		return CreateResult{}, NewError(CodeMissingParams, "email or wallet is required")
	}
	notPrepared := NewError(CodeUserNotPrepared, "Complete KYC prepare and verify your email or wallet before starting a session")
	// A link proven meanwhile may merge the person just resolved into
	// another; the claim then finds it gone, and the user is resolved
	// again, to the person that stayed.
	for range 3 {
		// The person's latest session comes with the enrollment, for the
		// first "is there one already" check.
		e, latest, err := s.resolve(ctx, tenant, id, notPrepared)
		if err != nil {
			return CreateResult{}, err
		}
		if !e.Verified() {
			return CreateResult{}, NewError(CodeIdentityNotVerified, "You must verify your email or wallet before starting KYC")
		}
		if r, done := decided(latest); done {
			return r, nil
		}
		r, err := s.openSession(ctx, tenant, e.PersonID)
		if !errors.Is(err, errPersonMerged) {
			return r, err
		}
	}
	return CreateResult{}, errors.New("kyc: the person kept being merged away")
}

// errPersonMerged: the person a create resolved no longer exists.
var errPersonMerged = errors.New("kyc: person merged into another")

// openSession is create's steps 5–8 for a person: it takes the person's
// creation claim (one caller at a time, across replicas), re-checks under
// it, reserves the quota and asks the provider.
func (s *Service) openSession(ctx context.Context, tenant Tenant, personID string) (CreateResult, error) {
	token := newID("cl_")
	for {
		now := s.now()
		won, err := s.store.ClaimSessionCreation(ctx, personID, token, now.Add(s.cfg.SessionClaimTTL), now)
		if errors.Is(err, ErrNotFound) {
			return CreateResult{}, errPersonMerged
		}
		if err != nil {
			return CreateResult{}, err
		}
		if won {
			break
		}
		// Another request (maybe on another replica) is creating this
		// person's session right now; wait for it and resume that one.
		if err := Sleep(ctx, 20*time.Millisecond); err != nil {
			return CreateResult{}, err
		}
		if r, done, err := s.existing(ctx, personID); err != nil || done {
			if err != nil {
				return CreateResult{}, err
			}
			return r, nil
		}
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.store.ReleaseSessionClaim(rctx, personID, token); err != nil {
			s.log.ErrorContext(ctx, "release session claim", "person", personID, "err", err)
		}
	}
	// Re-check under the claim: the previous holder may have just finished.
	if r, done, err := s.existing(ctx, personID); err != nil || done {
		release()
		if err != nil {
			return CreateResult{}, err
		}
		return r, nil
	}
	r, err := s.createAtProvider(ctx, tenant, personID, token)
	if err != nil || r.Kind != CreateNew {
		// Nothing was stored under the claim (storing consumes it): end
		// it, and with it the quota unit it holds.
		release()
	}
	return r, err
}

// createAtProvider is create's steps 7–8 under the person's claim: the
// quota unit, the provider's session, and storing it (which releases the
// claim). The unit lives on the claim: when nothing is stored, the
// caller's release gives it back; if this process dies first, the claim
// lapses and the sweep (or the next creator, who inherits it) accounts
// for it.
func (s *Service) createAtProvider(ctx context.Context, tenant Tenant, personID, token string) (CreateResult, error) {
	hold := QuotaHold{PersonID: personID, Token: token, TenantID: tenant.ID, Month: s.now().Format("2006-01")}
	if tenant.MonthlyQuota > 0 {
		ok, err := s.store.ReserveQuota(ctx, hold, tenant.MonthlyQuota)
		if err != nil {
			return CreateResult{}, err
		}
		if !ok {
			s.obs.QuotaRefused()
			return CreateResult{}, NewError(CodeQuotaExceeded, "Monthly KYC session quota exceeded")
		}
	}
	if s.provider == nil {
		return CreateResult{}, errors.New("no identity provider configured")
	}
	// From here on a partner that hangs up does not stop the work: Didit
	// may create (and bill) the session whatever we do, and storing it
	// keeps its quota unit spent to match; the partner's next create
	// finds it. The request's deadline still bounds it.
	ctx, cancel := detach(ctx)
	defer cancel()
	callCtx, stopRenew := s.renewClaim(ctx, personID, token)
	ps, err := s.provider.CreateSession(callCtx, CreateSessionRequest{
		VendorData: personID, Callback: s.cfg.SessionCallback,
		Metadata: map[string]string{"tenant_id": tenant.ID},
	})
	stopRenew()
	if err != nil {
		s.obs.ProviderError(ProviderOpCreate)
		return CreateResult{}, err
	}
	now := s.now()
	status := ps.Status
	if !ValidStatus(status) {
		status = StatusNotStarted
	}
	sess := Session{ID: ps.ID, PersonID: personID, TenantID: tenant.ID, URL: ps.URL, Status: status,
		EventAt: time.Unix(0, 0).UTC(), CreatedAt: now, UpdatedAt: now, CheckedAt: now}
	sess.Watch = watch(sess)
	err = s.store.InsertSession(ctx, sess, token, s.sessionCreatedFanout(sess))
	if errors.Is(err, ErrExists) {
		// Didit answers a create for the same vendor_data with the
		// person's unfinished session when there is one (docs/didit.md §2.2),
		// e.g. a declined session a reviewer reopened (Resubmitted) while
		// we kept the final status. That is a resume: no new session, no
		// quota (the caller's release gives the unit back).
		return s.resume(ctx, tenant, personID, ps)
	}
	if err != nil {
		if s.orphaned(ctx, ps.ID, personID) {
			return CreateResult{}, errPersonMerged // resolved again: erased, so nobody is found
		}
		// Didit created the session, but we could not store it: the
		// caller's release gives the unit back, and the person's next
		// create gets the same session from Didit (it hands back an
		// unfinished session for the same vendor_data) and spends it
		// then. If our lease lapsed, another caller may have created the
		// person's session meanwhile: that one stands.
		if errors.Is(err, ErrConflict) {
			if r, done, xerr := s.existing(ctx, personID); xerr == nil && done {
				return r, nil
			}
		}
		return CreateResult{}, err
	}
	s.auditObject(ctx, tenant.ID, AuditSessionCreated, "session", ps.ID, "ok")
	s.log.InfoContext(ctx, "kyc session created", "tenant", tenant.ID, "person", personID, "session", ps.ID)
	return CreateResult{Kind: CreateNew, Session: viewOf(sess)}, nil
}

// orphaned queues a session Didit created for a person erased while the
// create ran, for deletion at Didit (the retry job deletes it): its data
// must go with the person. It reports whether the person is gone.
func (s *Service) orphaned(ctx context.Context, sessionID, personID string) bool {
	queued, err := s.store.QueueOrphanDeletion(context.WithoutCancel(ctx), sessionID, personID, s.now())
	if err != nil {
		s.log.ErrorContext(ctx, "queue deletion of an erased person's new session", "session", sessionID, "err", err)
		return false
	}
	if queued {
		s.log.WarnContext(ctx, "person erased while their session was created; the session is queued for deletion at Didit",
			"session", sessionID)
	}
	return queued
}

// resume continues a session Didit handed back that we already store.
func (s *Service) resume(ctx context.Context, tenant Tenant, personID string, ps ProviderSession) (CreateResult, error) {
	known, err := s.store.SessionByID(ctx, ps.ID)
	if err != nil {
		return CreateResult{}, err
	}
	if known.PersonID != personID || !Open(ps.Status) {
		return CreateResult{}, fmt.Errorf("provider returned known session %s (person %s, status %q) for person %s",
			ps.ID, known.PersonID, ps.Status, personID)
	}
	sess, err := s.reopen(ctx, ps.ID, ps.Status)
	if err != nil {
		return CreateResult{}, err
	}
	s.log.InfoContext(ctx, "kyc session resumed at provider", "tenant", tenant.ID, "person", personID, "session", ps.ID)
	return CreateResult{Kind: CreateExisting, Session: viewOf(sess)}, nil
}

func viewOf(s Session) SessionView {
	return SessionView{ID: s.ID, Status: s.Status, URL: s.URL, Blocklisted: s.Blocklisted}
}

// renewClaim keeps the creation lease alive while the provider call runs,
// so the lease can be short: a replica that dies mid-call blocks the person
// for at most one lease. It only extends a lease still held; once the lease
// is lost the returned context is cancelled, abandoning the provider call.
// The stop func ends renewing and waits, so no renewal races the release.
func (s *Service) renewClaim(ctx context.Context, personID, token string) (context.Context, func()) {
	callCtx, cancelCall := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.SessionClaimTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-callCtx.Done():
				return
			case <-t.C:
				held, err := s.store.RenewSessionClaim(callCtx, personID, token, s.now().Add(s.cfg.SessionClaimTTL))
				if err != nil && callCtx.Err() == nil {
					s.log.WarnContext(ctx, "renew session claim", "person", personID, "err", err)
				}
				if err == nil && !held {
					s.log.WarnContext(ctx, "session claim lost; abandoning the provider call", "person", personID)
					cancelCall()
					return
				}
			}
		}
	}()
	return callCtx, func() {
		cancelCall()
		<-done
	}
}

// reopen records that the provider, answering our create, handed back a
// session we store as open again. The event rules cannot: a final status is
// never replaced by a (possibly reordered) webhook's non-final one. The
// provider's own answer is current, and the session is watched again so a
// lost webhook cannot strand the person.
func (s *Service) reopen(ctx context.Context, id string, status DiditStatus) (Session, error) {
	for attempt := 0; attempt < 10; attempt++ {
		cur, err := s.store.SessionByID(ctx, id)
		if err != nil {
			return cur, err
		}
		if Open(cur.Status) {
			return cur, nil
		}
		next := cur
		next.Status = status
		next.UpdatedAt = s.now()
		next.Watch = watch(next)
		if _, err := s.store.ApplyEvent(ctx, newID("reopen:"), next, s.now(), s.statusFanout(cur, next)); errors.Is(err, ErrConflict) {
			continue // changed under us: look again
		} else if err != nil {
			return cur, err
		}
		return next, nil
	}
	return Session{}, errors.New("kyc: session kept changing while reopening it")
}

// existing returns the approved or open session when one makes a new
// session unnecessary (§7 steps 5 and 6).
func (s *Service) existing(ctx context.Context, personID string) (CreateResult, bool, error) {
	latest, err := s.store.LatestSession(ctx, personID)
	if errors.Is(err, ErrNotFound) {
		return CreateResult{}, false, nil
	}
	if err != nil {
		return CreateResult{}, false, err
	}
	v := viewOf(latest)
	r, done := decided(&v)
	return r, done, nil
}

// decided is the answer when the person's latest session (nil: none)
// settles a create: approved, or still open.
func decided(latest *SessionView) (CreateResult, bool) {
	switch {
	case latest == nil:
		return CreateResult{}, false
	case latest.Status == StatusApproved:
		return CreateResult{Kind: CreateApproved, Session: *latest, Approved: true}, true
	case Open(latest.Status):
		return CreateResult{Kind: CreateExisting, Session: *latest}, true
	}
	return CreateResult{}, false
}

// StatusResult is GET /kyc/status's data.
type StatusResult struct {
	Session  SessionView
	Status   string
	Approved bool
}

// Status reports the person's latest session to a tenant whose enrollment is
// verified (docs/api.md §8, §10).
func (s *Service) Status(ctx context.Context, tenant Tenant, id Identity) (StatusResult, error) {
	if id.Email == "" && id.Wallet == "" {
		return StatusResult{}, NewError(CodeMissingParams, "email or wallet is required")
	}
	e, sess, err := s.resolve(ctx, tenant, id, errUserNotFound())
	if err != nil {
		return StatusResult{}, err
	}
	return statusOf(e, sess)
}

func errUserNotFound() *Error { return NewError(CodeUserNotFound, "User not found") }

// statusOf is what status answers for an enrollment and its person's
// latest session.
func statusOf(e Enrollment, sess *SessionView) (StatusResult, error) {
	if !e.Verified() || sess == nil {
		return StatusResult{}, NewError(CodeKYCNotFound, "No KYC session found for this user")
	}
	st := KYCStatus(sess.Status)
	return StatusResult{Session: *sess, Status: st, Approved: st == "approved"}, nil
}

// AuthenticatedStatus authenticates a status request, reading the status
// in the same query when the request names one well-formed email or wallet
// and the key is not cached: status is the endpoint partners poll, and the
// key lookup was a whole second round trip of it.
//
// With an empty tenant ID, err is Authenticate's. Otherwise the key is good
// and the caller applies its limits and the product gate first, then: with
// read false the status is not read yet (the key came from the cache or a
// query of its own, so the limits still shield the database) and the caller
// calls Status; with read true, res and err are Status's answer. When the
// joined read fails, the key is looked up alone: read is false when it is
// good, and a bad key is still refused as one.
func (s *Service) AuthenticatedStatus(ctx context.Context, plain string, id Identity) (t Tenant, hash string, read bool, res StatusResult, err error) {
	hash, ok := s.keyHash(plain)
	if !ok {
		return Tenant{}, "", false, StatusResult{}, ErrNotFound
	}
	t, cached := s.cachedTenant(hash)
	if email, wal, idErr := normalizeIdentity(id); !cached && idErr == nil && (email == "") != (wal == "") {
		now := s.clock.Now()
		t, e, sess, err := s.store.StatusRead(ctx, hash, email, wal)
		switch {
		case err == nil:
			s.cacheAuth(hash, t, now)
			if e.ID == "" {
				return t, hash, true, StatusResult{}, errUserNotFound()
			}
			res, err = statusOf(e, sess)
			return t, hash, true, res, err
		case errors.Is(err, ErrNotFound):
			// Maybe a key hashed under a previous secret: found (and moved
			// to hash), it is looked up alone, and the caller reads the
			// status as after a cache hit.
			if t, err = s.previousKey(ctx, plain, hash); err != nil {
				return Tenant{}, "", false, StatusResult{}, err
			}
			s.cacheAuth(hash, t, now)
			return t, hash, false, StatusResult{}, nil
		}
		// Look the key up alone below: the caller then applies the gates
		// and reads the status, so an over-limit or product-disabled key is
		// refused as it would be without the join, and only an admitted
		// request meets the failure.
		s.log.WarnContext(ctx, "status: joined key and status read failed; reading the key alone", "err", err)
	}
	if !cached {
		if t, err = s.storedTenant(ctx, plain, hash); err != nil {
			return Tenant{}, "", false, StatusResult{}, err
		}
	}
	return t, hash, false, StatusResult{}, nil
}

// detach keeps ctx's values and deadline but not its cancellation.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(context.WithoutCancel(ctx))
	}
	return context.WithDeadline(context.WithoutCancel(ctx), d)
}
