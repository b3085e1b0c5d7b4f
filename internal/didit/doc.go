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
package didit
