package kyc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Idempotency keys (IETF httpapi draft "The Idempotency-Key HTTP Header
// Field", with Stripe's semantics): a partner that retries a POST with the
// key it sent the first time gets the first answer back instead of the work
// done twice. A key belongs to the tenant that sent it.

const (
	CodeInvalidIdempotencyKey = "invalid_idempotency_key"
	CodeIdempotencyKeyInUse   = "idempotency_key_in_use"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
)

// IdempotencyTTL is how long a key and its answer are kept, counted from
// the first request: Stripe's 24 h, long enough for any client's retries.
const IdempotencyTTL = 24 * time.Hour

// MaxIdempotencyKey is the longest key accepted, in bytes.
const MaxIdempotencyKey = 255

// MaxStoredAnswer bounds a stored answer's body. kycgate's own answers are
// envelopes well under 4 KiB; one larger is not stored (the key is
// released) rather than letting a row grow without bound.
const MaxStoredAnswer = 16 << 10

// idempotencyInUseRetry is the Retry-After of a key in use: most requests
// end within a second, and the holder's lease bounds how long a dead one
// keeps the key.
const idempotencyInUseRetry = time.Second

// IdempotentRequest is what identifies a request for a key: the same key
// with a different request is the client's bug, refused. Path is the
// concrete path (the /api prefix removed: both mounts are one endpoint).
// The body is compared byte for byte, not as parsed JSON: a retry resends
// the bytes it sent, and two encodings that parse alike are still two
// requests to the client that built them.
type IdempotentRequest struct {
	Method, Path string
	Body         []byte
}

func (r IdempotentRequest) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:%s", len(r.Method), r.Method, len(r.Path), r.Path)
	h.Write(r.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// StoredAnswer is a completed request's answer, replayed as it was.
type StoredAnswer struct {
	Status      int
	ContentType string
	RetryAfter  string // the header's value; "" when none
	Body        []byte
}

// IdempotencyClaim asks to run the request under a key: it wins when the
// key is new, expired (ExpiresAt passed) or held by a running request
// whose lease lapsed (its process died).
type IdempotencyClaim struct {
	TenantID, KeyHash, Fingerprint, Token string
	LeaseUntil, ExpiresAt, Now            time.Time
	// Subjects are the keyed hashes (Service.erasureSubject) of the email
	// and wallet the request names: an erasure finds the key's row, and
	// the answer stored with it, by them.
	Subjects []string
}

// IdempotencyRecord is a key's row as a lost claim found it.
type IdempotencyRecord struct {
	Fingerprint string
	Answer      *StoredAnswer // nil while the request runs
}

// IdempotencyStore is the store's part for keys; each method is one atomic
// statement.
type IdempotencyStore interface {
	// ClaimIdempotencyKey takes the key for c.Token (won) or returns
	// the row that holds it. ErrNotFound when the row vanished between
	// the two (a release): the caller claims again.
	ClaimIdempotencyKey(ctx context.Context, c IdempotencyClaim) (won bool, rec IdempotencyRecord, err error)
	// CompleteIdempotencyKey stores the answer if token still holds the
	// key; a lapsed and taken-over claim stores nothing.
	CompleteIdempotencyKey(ctx context.Context, tenantID, keyHash, token string, a StoredAnswer) error
	// ReleaseIdempotencyKey deletes the key's row if token holds it.
	ReleaseIdempotencyKey(ctx context.Context, tenantID, keyHash, token string) error
}

// IdempotentCall is a claim this request won: it must end with
// FinishIdempotent.
type IdempotentCall struct {
	tenantID, keyHash, token string
	also                     []string // the key's names under previous secrets, held with token
}

// ParseIdempotencyKey reads the header's value: the draft's sf-string
// ("abc") or a bare token, 1–255 printable ASCII characters. Anything else
// is invalid_idempotency_key.
func ParseIdempotencyKey(values []string) (string, error) {
	bad := func(msg string) error { return NewError(CodeInvalidIdempotencyKey, msg) }
	if len(values) != 1 {
		return "", bad("Send one Idempotency-Key header")
	}
	v := strings.Trim(values[0], " \t")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		// RFC 9651 sf-string: \" and \\ are the only escapes.
		var b strings.Builder
		for i := 1; i < len(v)-1; i++ {
			c := v[i]
			if c == '"' {
				return "", bad("Idempotency-Key is not a valid string")
			}
			if c == '\\' {
				i++
				if i == len(v)-1 || (v[i] != '"' && v[i] != '\\') {
					return "", bad("Idempotency-Key is not a valid string")
				}
				c = v[i]
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if v == "" || len(v) > MaxIdempotencyKey {
		return "", bad("Idempotency-Key must be 1 to 255 characters")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", bad("Idempotency-Key must be printable ASCII")
		}
	}
	return v, nil
}

// BeginIdempotent claims key for the tenant's request. Exactly one of its
// results is set: the call to finish (the request runs), the answer to
// replay, or an error — idempotency_key_in_use (409, while the first run
// holds the key), idempotency_key_reused (422, another request under the
// key) or a store failure.
func (s *Service) BeginIdempotent(ctx context.Context, tenantID, key string, req IdempotentRequest) (*IdempotentCall, *StoredAnswer, error) {
	now := s.now()
	c := IdempotencyClaim{TenantID: tenantID, KeyHash: s.mac("idempotency", tenantID, key),
		Fingerprint: req.fingerprint(), Token: newID("ik_"),
		LeaseUntil: s.deliveryLease(ctx, now), ExpiresAt: now.Add(IdempotencyTTL), Now: now,
		Subjects: s.requestSubjects(req.Body)}
	call, a, err := s.claimIdempotent(ctx, c)
	if call == nil {
		return nil, a, err
	}
	// After a rotation the key may name a request run under a previous
	// secret: before the rotation (24 h of retries), or on a replica not
	// restarted yet. The claim holds its old names too, with one token, so
	// that request's answer is replayed, and a replica still on the old
	// secret sees this one running instead of running it again.
	for _, p := range s.cfg.PreviousSecrets {
		oc := c
		oc.KeyHash = macWith(p, "idempotency", tenantID, key)
		held, a, err := s.claimIdempotent(ctx, oc)
		if held == nil {
			s.FinishIdempotent(ctx, call, nil) // gives back what this claim took
			return nil, a, err
		}
		call.also = append(call.also, oc.KeyHash)
	}
	return call, nil, nil
}

// claimIdempotent claims one name of a key: the call when it won, or the
// answer to replay, or the error to answer.
func (s *Service) claimIdempotent(ctx context.Context, c IdempotencyClaim) (*IdempotentCall, *StoredAnswer, error) {
	// A row released between our claim and our read is gone: claim again.
	// Twice is plenty; a second loss means the key is contested right now.
	for range 2 {
		won, rec, err := s.store.ClaimIdempotencyKey(ctx, c)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		switch {
		case won:
			return &IdempotentCall{tenantID: c.TenantID, keyHash: c.KeyHash, token: c.Token}, nil, nil
		case rec.Fingerprint != c.Fingerprint:
			return nil, nil, NewError(CodeIdempotencyKeyReused, "Idempotency-Key was already used for a different request")
		case rec.Answer != nil:
			return nil, rec.Answer, nil
		}
		break // running
	}
	return nil, nil, &Error{Code: CodeIdempotencyKeyInUse, Message: "A request with this Idempotency-Key is still running",
		RetryAfter: idempotencyInUseRetry}
}

// Storable reports whether an answer is kept for replay: the deterministic
// ones, 2xx and 4xx. A 5xx gave back whatever it took and a 429 is about
// the moment, not the request, so their key is released and a retry runs
// again.
func Storable(status int) bool {
	return status >= 200 && status < 300 || status >= 400 && status < 500 && status != 429
}

// FinishIdempotent ends a claim: it stores a (nil for "the request did not
// run to an answer of its own") if Storable and small enough, and
// otherwise releases the key. It outlives the request's context: a client
// that hung up still must not leave the key held until its lease lapses.
func (s *Service) FinishIdempotent(ctx context.Context, call *IdempotentCall, a *StoredAnswer) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryLeaseGrace)
	defer cancel()
	keep := a != nil && Storable(a.Status) && len(a.Body) <= MaxStoredAnswer && storableText(a.Body)
	for _, hash := range append([]string{call.keyHash}, call.also...) {
		var err error
		if keep {
			err = s.store.CompleteIdempotencyKey(ctx, call.tenantID, hash, call.token, *a)
		} else {
			err = s.store.ReleaseIdempotencyKey(ctx, call.tenantID, hash, call.token)
		}
		if err != nil {
			// The lease still frees the key when it lapses.
			s.log.ErrorContext(ctx, "finish idempotency key", "tenant", call.tenantID, "err", err)
		}
	}
}

// storableText: bodies are kept as text (kycgate answers JSON), which a
// PostgreSQL TEXT column takes only as UTF-8 without NUL.
func storableText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }
