package kyc

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/kycgate/kycgate/internal/wallet"
)

// State is what prepare and prepare-wallet report about a user for the
// calling tenant.
type State struct {
	EmailVerified  bool
	WalletVerified bool
	KYCApproved    bool
	KYCStatus      string
	// EmailLink is prepare-wallet's data.email_link (docs/api.md §6.1):
	// LinkLinked, LinkPending, or "" when no email was named and none is
	// pending.
	EmailLink string
}

// Where a wallet's link to an email stands.
const (
	LinkLinked  = "linked"
	LinkPending = "pending"
)

// state reports the KYC outcome only to a tenant whose enrollment is
// verified (docs/api.md §10): nobody learns another tenant's results by guessing.
func (s *Service) state(ctx context.Context, e Enrollment) (State, error) {
	st := State{EmailVerified: e.EmailVerified, WalletVerified: e.WalletVerified(), KYCStatus: "pending"}
	if !e.Verified() {
		return st, nil
	}
	sess, err := s.store.LatestSession(ctx, e.PersonID)
	if errors.Is(err, ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.KYCStatus = KYCStatus(sess.Status)
	st.KYCApproved = st.KYCStatus == "approved"
	return st, nil
}

// PrepareResult is the outcome of Prepare / PrepareWallet.
type PrepareResult struct {
	Created bool
	State   State
}

// Prepare registers an email for the tenant (docs/api.md §2). An address that is
// only pending on a wallet here becomes a user of its own (§6.1): the
// wallet's link can still be proven later, and then merges the two.
func (s *Service) Prepare(ctx context.Context, tenant Tenant, rawEmail string) (PrepareResult, error) {
	if rawEmail == "" {
		return PrepareResult{}, NewError(CodeMissingParams, "email is required")
	}
	email, ok := NormalizeEmail(rawEmail)
	if !ok {
		return PrepareResult{}, errInvalidEmail
	}
	e, created, err := s.store.PrepareEmail(ctx, tenant.ID, NewIDs{Person: newID("ps_"), Enrollment: newID("en_")}, email, s.now())
	if err != nil {
		return PrepareResult{}, err
	}
	if created {
		s.audit(ctx, tenant.ID, AuditEmailPrepared, email, "ok")
		return PrepareResult{Created: true, State: State{KYCStatus: "pending"}}, nil
	}
	st, err := s.state(ctx, e)
	if err != nil {
		return PrepareResult{}, err
	}
	return PrepareResult{State: st}, nil
}

var (
	errInvalidEmail  = NewError(CodeInvalidEmail, "email is not a valid address")
	errInvalidWallet = NewError(CodeInvalidWallet, "Wallet is not a valid EVM or Solana address")
)

// normalizeWallet gives the stored form of a wallet, or invalid_wallet.
func normalizeWallet(raw string) (string, error) {
	a, err := wallet.ParseAddress(strings.TrimSpace(raw))
	if err != nil {
		return "", errInvalidWallet
	}
	return a.String, nil
}

// OTPInput is the body of send-otp (Code empty) and verify-otp. Wallet,
// optional, names the wallet whose link to the email the code proves
// (docs/api.md §6.1).
type OTPInput struct {
	Email, Code, Wallet string
}

// otpTarget is what a send-otp or verify-otp acts on: the code slot, and
// the enrollment the code proves the address to (the address's own, or the
// wallet's whose link it is).
type otpTarget struct {
	code CodeRef
	enr  Enrollment
}

func (t otpTarget) link() bool { return t.code.Wallet != "" }

// otpTarget resolves an OTP request (docs/api.md §3, §4, §6.1), with the checks
// in their order: the address (or the named wallet's link to it) is
// registered here → not yet verified. A link is proven by a code bound to
// it, so the address's owner proving their own enrollment never completes
// someone else's link, and a link code proves nothing else. Without a
// wallet, an address with no enrollment of its own here acts on the one
// wallet it is pending on, so a client that only knows {email} still works;
// on several it is ambiguous, and nobody is found.
func (s *Service) otpTarget(ctx context.Context, tenant Tenant, email, wal string) (otpTarget, error) {
	notFound := NewError(CodeUserNotFound, "User not found in whitelist")
	own := func(e Enrollment) (otpTarget, error) {
		if e.EmailVerified {
			return otpTarget{}, NewError(CodeEmailAlreadyVerified, "Email is already verified")
		}
		return otpTarget{code: CodeRef{TenantID: tenant.ID, Address: email}, enr: e}, nil
	}
	link := func(e Enrollment) (otpTarget, error) {
		return otpTarget{code: CodeRef{TenantID: tenant.ID, Address: email, Wallet: e.Wallet}, enr: e}, nil
	}
	if wal != "" {
		e, err := s.store.FindEnrollment(ctx, tenant.ID, "", wal)
		switch {
		case errors.Is(err, ErrNotFound):
			return otpTarget{}, notFound
		case err != nil:
			return otpTarget{}, err
		case e.Email == email:
			// Linked here already: the wallet's enrollment is the address's
			// own, and the request is about proving the address to it.
			return own(e)
		case e.PendingEmail == email:
			return link(e)
		}
		return otpTarget{}, notFound
	}
	e, err := s.store.FindEnrollment(ctx, tenant.ID, email, "")
	if err == nil {
		return own(e)
	}
	if !errors.Is(err, ErrNotFound) {
		return otpTarget{}, err
	}
	pending, err := s.store.PendingLinks(ctx, tenant.ID, email, 2)
	if err != nil {
		return otpTarget{}, err
	}
	if len(pending) == 1 {
		return link(pending[0])
	}
	return otpTarget{}, notFound
}

// otpRequest validates an OTP request's fields in their documented order
// and resolves what it acts on.
func (s *Service) otpRequest(ctx context.Context, tenant Tenant, in OTPInput, verify bool) (email string, t otpTarget, err error) {
	in.Code = strings.TrimSpace(in.Code)
	switch {
	case !verify && in.Email == "":
		return "", t, NewError(CodeMissingParams, "email is required")
	case verify && (in.Email == "" || in.Code == ""):
		return "", t, NewError(CodeMissingParams, "email and code are required")
	}
	email, ok := NormalizeEmail(in.Email)
	if !ok {
		return "", t, errInvalidEmail
	}
	var wal string
	if in.Wallet != "" {
		if wal, err = normalizeWallet(in.Wallet); err != nil {
			return "", t, err
		}
	}
	t, err = s.otpTarget(ctx, tenant, email, wal)
	return email, t, err
}

// SendOTP issues a new code and mails it (docs/api.md §3, §6.1, §12). It answers
// success only after the mail server accepted the message; a failed
// delivery invalidates the code. A link's code is sent even when its proof
// will conflict: the proof decides.
func (s *Service) SendOTP(ctx context.Context, tenant Tenant, in OTPInput) error {
	email, t, err := s.otpRequest(ctx, tenant, in, false)
	if err != nil {
		return err
	}
	now := s.now()
	code := randomCode()
	hash := s.otpHash(tenant.ID, email, code)
	sent, retryAt, err := s.store.SaveOTP(ctx, OTPSend{
		CodeRef: t.code, CodeHash: hash, Now: now, LeaseUntil: s.deliveryLease(ctx, now),
		ExpiresAt: now.Add(s.cfg.OTPTTL), MinGap: s.cfg.OTPMinGap,
		Window: s.cfg.OTPWindow, MaxPerWindow: s.cfg.OTPMaxPerWindow,
	})
	if err != nil {
		return err
	}
	if !sent {
		wait := retryAt.Sub(now)
		if wait < time.Second {
			wait = time.Second
		}
		s.obs.CodeRefused(RefusedRateLimited)
		return &Error{Code: CodeOTPSendRateLimited, Message: "Please wait before requesting a new code", RetryAfter: wait}
	}
	err = s.mailer.SendCode(ctx, CodeMail{To: email, Code: code, Wallet: t.code.Wallet})
	// The send's outcome is written with a fresh context: the request's
	// may be what ended, and the code must neither stay valid when the
	// partner is told it was not sent nor die when it may have been. Its
	// 5 s (deliveryLeaseGrace) start now, however long the mail took.
	after, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryLeaseGrace)
	defer cancel()
	switch {
	case err == nil:
	case errors.Is(err, ErrMailUnconfirmed):
		// The whole message reached the mail server; only its verdict is
		// missing. Dropping the code could kill one the user is about to
		// receive, and sending again could mail two: keep it, count the
		// send, and answer as sent (a user who gets nothing asks again
		// after the gap).
		s.log.WarnContext(ctx, "otp delivery unconfirmed: code kept, the mail may arrive",
			"tenant", tenant.ID, "enrollment", t.enr.ID, "to", maskEmail(email), "err", err)
	default:
		if derr := s.store.DropOTP(after, t.code, hash, now); derr != nil {
			// The delivery lease still frees the address when it lapses.
			s.log.ErrorContext(ctx, "drop undelivered otp", "tenant", tenant.ID, "enrollment", t.enr.ID, "err", derr)
		}
		s.obs.CodeSendFailed()
		return err
	}
	if cerr := s.store.ConfirmOTP(after, t.code, now); cerr != nil {
		s.log.ErrorContext(ctx, "confirm otp send", "tenant", tenant.ID, "enrollment", t.enr.ID, "err", cerr)
	}
	s.obs.CodeSent()
	s.audit(ctx, tenant.ID, AuditEmailCodeSent, email, "ok")
	if err == nil {
		s.log.InfoContext(ctx, "otp sent", "tenant", tenant.ID, "enrollment", t.enr.ID, "link", t.link(), "to", maskEmail(email))
	}
	return nil
}

// deliveryLease is how long a send may stay unconfirmed before it stops
// counting: the request's own deadline (the mailer gives up by then) and a
// little for writing the outcome. A request with no deadline gets the
// minimum gap, which it would have had to wait anyway.
func (s *Service) deliveryLease(ctx context.Context, now time.Time) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return now.Add(max(time.Until(d), 0) + deliveryLeaseGrace)
	}
	return now.Add(max(s.cfg.OTPMinGap, deliveryLeaseGrace))
}

// deliveryLeaseGrace covers writing a send's outcome after the mailer
// returned: the same 5 s the outcome's own write may take.
const deliveryLeaseGrace = 5 * time.Second

func (s *Service) otpHash(tenantID, email, code string) string {
	return s.mac("otp", tenantID, email, code)
}

// codeMatches compares a given code with the stored hash, under the
// current secret and then each previous one: a code mailed just before a
// rotation still works for its few minutes. Codes are never re-hashed;
// they expire.
func (s *Service) codeMatches(tenantID, email, code, stored string) bool {
	if subtle.ConstantTimeCompare([]byte(s.otpHash(tenantID, email, code)), []byte(stored)) == 1 {
		return true
	}
	for _, p := range s.cfg.PreviousSecrets {
		if subtle.ConstantTimeCompare([]byte(macWith(p, "otp", tenantID, email, code)), []byte(stored)) == 1 {
			return true
		}
	}
	return false
}

// VerifyOTP checks a code (docs/api.md §4) and, for a link's code, completes the
// link (§6.1). The attempt is counted before the comparison, atomically in
// the store, so concurrent guesses can never exceed the limit.
func (s *Service) VerifyOTP(ctx context.Context, tenant Tenant, in OTPInput) error {
	err := s.verifyOTP(ctx, tenant, in)
	var ke *Error
	switch {
	case err == nil:
		s.obs.CodeVerified()
	case errors.As(err, &ke):
		if reason := refusal(ke.Code); reason != "" {
			s.obs.CodeRefused(reason)
		}
	}
	return err
}

// refusal is the Observer's reason for a code refused with this error
// code, "" for the refusals that are about the request, not the code.
func refusal(code string) string {
	switch code {
	case CodeOTPInvalid:
		return RefusedInvalid
	case CodeOTPExpired:
		return RefusedExpired
	case CodeOTPMaxAttempts:
		return RefusedMaxAttempts
	}
	return ""
}

func (s *Service) verifyOTP(ctx context.Context, tenant Tenant, in OTPInput) error {
	email, t, err := s.otpRequest(ctx, tenant, in, true)
	if err != nil {
		return err
	}
	if !t.link() {
		return s.useOwnCode(ctx, tenant, email, in.Code, t)
	}
	stored, res, err := s.store.CountOTPAttempt(ctx, t.code, s.cfg.OTPMaxAttempts, s.now())
	if err != nil {
		return err
	}
	if err := attemptRefusal(res); err != nil {
		return err
	}
	// The attempt counted: the log has it, and how it ended.
	err = s.useCode(ctx, tenant, email, in.Code, t, stored)
	s.audit(ctx, tenant.ID, AuditLinkVerify, email, auditResult(err))
	return err
}

// attemptRefusal is the answer to a code that could not be tried (nil
// when the attempt counted).
func attemptRefusal(res OTPAttempt) error {
	switch res {
	case OTPNone:
		return errOTPInvalid
	case OTPExpired:
		return NewError(CodeOTPExpired, "Code expired, please request a new one")
	case OTPNoAttemptsLeft:
		return NewError(CodeOTPMaxAttempts, "Max attempts reached, please request a new code")
	}
	return nil
}

// useCode compares a link's counted attempt and, when it matches, proves
// the link.
func (s *Service) useCode(ctx context.Context, tenant Tenant, email, code string, t otpTarget, stored string) error {
	if !s.codeMatches(tenant.ID, email, strings.TrimSpace(code), stored) {
		return errOTPInvalid
	}
	return s.proveLink(ctx, tenant, t.code, stored)
}

// useOwnCode counts an attempt at the address's own code, compares it and,
// when it matches, uses it, in the store's one primitive (UseOTP).
func (s *Service) useOwnCode(ctx context.Context, tenant Tenant, email, code string, t otpTarget) error {
	match := func(stored string) bool { return s.codeMatches(tenant.ID, email, strings.TrimSpace(code), stored) }
	u, err := s.store.UseOTP(ctx, t.code, s.cfg.OTPMaxAttempts, s.now(), match, s.emailVerifiedFanout())
	if err == nil && u.Attempt == OTPCounted && !u.Used {
		err = errOTPInvalid // a wrong code, or a concurrent request with the same code won
	}
	if u.Attempt == OTPCounted { // the attempt counted: the log has it, and how it ended
		s.audit(ctx, tenant.ID, AuditEmailVerify, email, auditResult(err))
	}
	if err != nil {
		return err
	}
	if err := attemptRefusal(u.Attempt); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "email verified", "tenant", tenant.ID, "enrollment", t.enr.ID)
	return nil
}

var errOTPInvalid = NewError(CodeOTPInvalid, "Invalid code")
