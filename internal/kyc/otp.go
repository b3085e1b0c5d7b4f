package kyc

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"
)

// State is what prepare and prepare-wallet report about a person for the
// calling tenant.
type State struct {
	EmailVerified  bool
	WalletVerified bool
	KYCApproved    bool
	KYCStatus      string
}

// state reports the KYC outcome only to a tenant whose enrollment is
// verified (api.md §10): nobody learns another tenant's results by guessing.
func (s *Service) state(ctx context.Context, p Person, e Enrollment) (State, error) {
	st := State{EmailVerified: e.EmailVerified, WalletVerified: e.WalletVerified, KYCStatus: "pending"}
	if !e.Verified() {
		return st, nil
	}
	sess, err := s.store.LatestSession(ctx, p.ID)
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

const msgPrepareFailed = "Server failed on KYC prepare"

// Prepare registers an email for the tenant (api.md §2).
func (s *Service) Prepare(ctx context.Context, tenant Tenant, rawEmail string) (PrepareResult, error) {
	if rawEmail == "" {
		return PrepareResult{}, Errorf(CodeMissingParams, "email is required")
	}
	email, ok := NormalizeEmail(rawEmail)
	if !ok {
		return PrepareResult{}, errInvalidEmail
	}
	p, e, created, err := s.store.PrepareEmail(ctx, tenant.ID, newID("ps_"), email, s.now())
	if err != nil {
		return PrepareResult{}, internal(CodeServerFailed, msgPrepareFailed, err)
	}
	if created {
		return PrepareResult{Created: true, State: State{KYCStatus: "pending"}}, nil
	}
	st, err := s.state(ctx, p, e)
	if err != nil {
		return PrepareResult{}, internal(CodeServerFailed, msgPrepareFailed, err)
	}
	return PrepareResult{State: st}, nil
}

var errInvalidEmail = Errorf(CodeInvalidEmail, "email is not a valid address")

const msgServerError = "Server failed, try again later"

// enrolledByEmail resolves the OTP endpoints' common checks in their order:
// valid email → enrolled (user_not_found) → not yet verified.
func (s *Service) enrolledByEmail(ctx context.Context, tenant Tenant, email string) (Person, Enrollment, error) {
	p, e, err := s.store.FindEnrollment(ctx, tenant.ID, email, "")
	if errors.Is(err, ErrNotFound) {
		return p, e, Errorf(CodeUserNotFound, "User not found in whitelist")
	}
	if err != nil {
		return p, e, internal(CodeServerError, msgServerError, err)
	}
	if e.EmailVerified {
		return p, e, Errorf(CodeEmailAlreadyVerified, "Email is already verified")
	}
	return p, e, nil
}

// SendOTP issues a new code and mails it (api.md §3, §12). It answers
// success only after the mail server accepted the message; a failed
// delivery invalidates the code.
func (s *Service) SendOTP(ctx context.Context, tenant Tenant, rawEmail string) error {
	if rawEmail == "" {
		return Errorf(CodeMissingParams, "email is required")
	}
	email, ok := NormalizeEmail(rawEmail)
	if !ok {
		return errInvalidEmail
	}
	p, _, err := s.enrolledByEmail(ctx, tenant, email)
	if err != nil {
		return err
	}
	now := s.now()
	code := randomCode()
	// Codes and their limits belong to the address, not to the person it
	// resolves to today (an unproven email can move between wallet users).
	hash := s.otpHash(tenant.ID, email, code)
	sent, retryAt, err := s.store.SaveOTP(ctx, OTPSend{
		TenantID: tenant.ID, Subject: email, CodeHash: hash, Now: now,
		ExpiresAt: now.Add(s.cfg.OTPTTL), MinGap: s.cfg.OTPMinGap,
		Window: s.cfg.OTPWindow, MaxPerWindow: s.cfg.OTPMaxPerWindow,
	})
	if err != nil {
		return internal(CodeServerError, msgServerError, err)
	}
	if !sent {
		wait := retryAt.Sub(now)
		if wait < time.Second {
			wait = time.Second
		}
		return &Error{Code: CodeOTPSendRateLimited, Message: "Please wait before requesting a new code", RetryAfter: wait}
	}
	if err := s.mailer.SendCode(ctx, email, code); err != nil {
		// Use a fresh context: the request's may be what failed, and the
		// code must not stay valid when the partner is told it was not sent.
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if derr := s.store.DropOTP(dropCtx, tenant.ID, email, hash); derr != nil {
			s.log.ErrorContext(ctx, "drop undelivered otp", "tenant", tenant.ID, "person", p.ID, "err", derr)
		}
		return internal(CodeServerError, msgServerError, err)
	}
	s.log.InfoContext(ctx, "otp sent", "tenant", tenant.ID, "person", p.ID, "to", maskEmail(email))
	return nil
}

func (s *Service) otpHash(tenantID, email, code string) string {
	return s.mac("otp", tenantID, email, code)
}

// VerifyOTP checks a code (api.md §4). The attempt is counted before the
// comparison, atomically in the store, so concurrent guesses can never
// exceed the limit.
func (s *Service) VerifyOTP(ctx context.Context, tenant Tenant, rawEmail, code string) error {
	code = strings.TrimSpace(code)
	if rawEmail == "" || code == "" {
		return Errorf(CodeMissingParams, "email and code are required")
	}
	email, ok := NormalizeEmail(rawEmail)
	if !ok {
		return errInvalidEmail
	}
	p, _, err := s.enrolledByEmail(ctx, tenant, email)
	if err != nil {
		return err
	}
	stored, res, err := s.store.CountOTPAttempt(ctx, tenant.ID, email, s.cfg.OTPMaxAttempts, s.now())
	if err != nil {
		return internal(CodeServerError, msgServerError, err)
	}
	switch res {
	case OTPNone:
		return errOTPInvalid
	case OTPExpired:
		return Errorf(CodeOTPExpired, "Code expired, please request a new one")
	case OTPMaxAttempts:
		return Errorf(CodeOTPMaxAttempts, "Max attempts reached, please request a new code")
	}
	given := s.otpHash(tenant.ID, email, code)
	if subtle.ConstantTimeCompare([]byte(given), []byte(stored)) != 1 {
		return errOTPInvalid
	}
	used, err := s.store.ConsumeOTP(ctx, tenant.ID, email, p.ID, stored)
	if err != nil {
		return internal(CodeServerError, msgServerError, err)
	}
	if !used { // a concurrent request with the same code won
		return errOTPInvalid
	}
	s.log.InfoContext(ctx, "email verified", "tenant", tenant.ID, "person", p.ID)
	return nil
}

var errOTPInvalid = Errorf(CodeOTPInvalid, "Invalid code")
