package client

import (
	"fmt"
	"time"
)

// Error is an answer that is not a success: the envelope's status string,
// its message, the HTTP status and, when the server gave one, how long to
// wait before asking again.
//
// Compare with errors.Is against the sentinels below, which match on the
// status string alone:
//
//	if errors.Is(err, client.ErrOTPInvalid) { … }
type Error struct {
	HTTPStatus int
	Status     string // e.g. "otp_invalid"; "rate_limited" for the per-key limit
	Message    string
	RetryAfter time.Duration // 0 when the server named none
}

func (e *Error) Error() string {
	return fmt.Sprintf("kycgate: %d %s: %s", e.HTTPStatus, e.Status, e.Message)
}

// Is reports whether target is an *Error with the same status string.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

func sentinel(status string) *Error { return &Error{Status: status} }

// The statuses kycgate answers with, as sentinels for errors.Is.
var (
	ErrInvalidBody          = sentinel("invalid_body")
	ErrPayloadTooLarge      = sentinel("payload_too_large")
	ErrMissingParams        = sentinel("missing_params")
	ErrInvalidEmail         = sentinel("invalid_email")
	ErrInvalidWallet        = sentinel("invalid_wallet")
	ErrInvalidPurpose       = sentinel("invalid_purpose")
	ErrUserNotFound         = sentinel("user_not_found")
	ErrEmailAlreadyVerified = sentinel("email_already_verified")
	ErrOTPInvalid           = sentinel("otp_invalid")
	ErrOTPExpired           = sentinel("otp_expired")
	ErrOTPMaxAttempts       = sentinel("otp_max_attempts")
	ErrOTPSendRateLimited   = sentinel("otp_send_rate_limited")
	ErrChallengeNotFound    = sentinel("challenge_not_found")
	ErrChallengeExpired     = sentinel("challenge_expired")
	ErrInvalidSignature     = sentinel("invalid_signature")
	ErrEmailWalletConflict  = sentinel("email_wallet_conflict")
	ErrIdentityMismatch     = sentinel("identity_mismatch")
	ErrMethodNotFound       = sentinel("method_not_found")
	ErrUserNotPrepared      = sentinel("user_not_prepared")
	ErrIdentityNotVerified  = sentinel("identity_not_verified")
	ErrQuotaExceeded        = sentinel("verify_quota_exceeded")
	ErrKYCNotFound          = sentinel("kyc_not_found")
	ErrInvalidAPIKey        = sentinel("invalid_api_key")
	ErrProductNotEnabled    = sentinel("product_not_enabled")
	ErrNotFound             = sentinel("not_found")
	ErrMethodNotAllowed     = sentinel("method_not_allowed")
	ErrRateLimited          = sentinel("rate_limited")
	ErrServerFailed         = sentinel("server_failed")
	ErrServerError          = sentinel("server_error")
	ErrServerBusy           = sentinel("server_busy")
	// Idempotency-Key answers: the key was used for another request, or
	// the request that first used it is still running.
	ErrInvalidIdempotencyKey = sentinel("invalid_idempotency_key")
	ErrIdempotencyKeyReused  = sentinel("idempotency_key_reused")
	ErrIdempotencyKeyInUse   = sentinel("idempotency_key_in_use")
)
