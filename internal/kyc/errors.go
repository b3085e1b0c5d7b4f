package kyc

import (
	"errors"
	"fmt"
	"time"
)

// Error is a rule the request broke. Code is the stable machine string that
// becomes the envelope's `status`; the HTTP layer maps it to a status code
// in one table. Message is the documented human text, which for some codes
// (missing_params, user_not_found, the 500s) differs per endpoint.
type Error struct {
	Code       string
	Message    string
	RetryAfter time.Duration // set for rate limits; becomes Retry-After
	Err        error         // cause, for logs only; never shown to callers
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// NewError builds an *Error with a fixed message (it does not format).
func NewError(code, message string) *Error { return &Error{Code: code, Message: message} }

// Codes. Each maps to exactly one HTTP status in httpapi.
const (
	CodeInvalidBody          = "invalid_body"
	CodeMissingParams        = "missing_params"
	CodeInvalidEmail         = "invalid_email"
	CodeInvalidWallet        = "invalid_wallet"
	CodeInvalidPurpose       = "invalid_purpose"
	CodeUserNotFound         = "user_not_found"
	CodeEmailAlreadyVerified = "email_already_verified"
	CodeOTPInvalid           = "otp_invalid"
	CodeOTPExpired           = "otp_expired"
	CodeOTPMaxAttempts       = "otp_max_attempts"
	CodeOTPSendRateLimited   = "otp_send_rate_limited"
	CodeChallengeNotFound    = "challenge_not_found"
	CodeChallengeExpired     = "challenge_expired"
	CodeInvalidSignature     = "invalid_signature"
	CodeEmailWalletConflict  = "email_wallet_conflict"
	CodeIdentityMismatch     = "identity_mismatch"
	CodeMethodNotFound       = "method_not_found"
	CodeUserNotPrepared      = "user_not_prepared"
	CodeIdentityNotVerified  = "identity_not_verified"
	CodeQuotaExceeded        = "verify_quota_exceeded"
	CodeKYCNotFound          = "kyc_not_found"
	CodeServerFailed         = "server_failed"
	CodeServerError          = "server_error"
)

// ErrNotFound is returned by stores when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a write was refused because what
// it depended on moved under it: the caller no longer holds the creation
// claim (InsertSession, ReserveQuota), or the session's version moved on
// (ApplyEvent's compare-and-set). Nothing was written; the caller re-reads.
var ErrConflict = errors.New("conflict")

// ErrExists is returned by InsertSession when the session is already stored.
var ErrExists = errors.New("already exists")

// ErrIgnoredEvent is what a provider's webhook parser returns for a
// well-formed delivery of an event type kycgate does not act on: it is
// acknowledged and dropped, so the provider does not retry it.
var ErrIgnoredEvent = errors.New("webhook event type not handled")
