// Package didit talks to Didit's verification API (v3): creating sessions,
// reading decisions, and verifying the signed webhooks Didit sends.
//
//   - Client implements kyc.Provider over POST /v3/session/ and
//     GET /v3/session/{id}/decision/, with per-attempt timeouts and retries.
//   - Canonicalize, Sign and VerifyWebhook implement Didit's webhook
//     signatures. X-Signature-V2 covers a canonical JSON form defined by
//     Python's json module, reproduced here byte for byte; the reference
//     vectors come from scripts/didit/canonical_vectors.py.
//   - ParseWebhook and SummarizeDecision turn verified payloads into kyc
//     types, tolerating the v2 and v3 decision shapes.
//
// # Faults: time budget and retries
//
// Every call runs within the caller's context; for the API that is the
// request budget, 30 s (httpapi's RequestTimeout). Creating a session is
// not idempotent — Didit bills each one — so the create is sent at most
// once unless Didit certainly never got it (see Client.CreateSession), and
// that one attempt may wait for Didit until 3 s before the budget ends
// (ClientConfig.CreateMargin, kept for storing the result; at most
// CreateTimeout, 30 s, without a deadline). Reading a decision is retried
// on any failure, each attempt under Timeout (10 s).
//
// What POST /kyc/create/verify_public_kyc shows when Didit misbehaves:
//
//   - Down (connection refused, DNS or TLS failure): nothing was sent, so
//     the create is retried, 1 + 3 attempts with about 2–3.5 s of backoff
//     in all, then the partner gets the 500 envelope (server_failed,
//     "Server failed on KYC"); no quota is used. A host that drops the
//     connection attempt silently holds the one attempt until 27 s.
//   - Slow: one call, awaited within the budget; a Didit that answers in
//     12 s gives the partner its session (201) after about 12 s. One that
//     has not answered 27 s into the request (3 s before its budget ends)
//     is abandoned: 500 envelope, error wrapping ErrCreateUnconfirmed.
//   - 500, 502, 504 (any 5xx but 503), a connection reset or closed after
//     the request went out, an unreadable answer: one call, an immediate
//     500 envelope, ErrCreateUnconfirmed. Didit may hold a session we did
//     not store; the log line "didit create not confirmed" names its
//     vendor_data (our person id). The partner's retry resumes it: Didit
//     answers a create for the same vendor_data with the unfinished
//     session rather than a new one.
//   - 429 or 503: Didit created nothing, so the create is retried after
//     Retry-After (or the backoff) if that still leaves time for another
//     attempt within the budget; otherwise (Retry-After too long, or over
//     30 s) the partner gets the 500 envelope at once.
package didit
