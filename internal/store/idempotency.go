package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kycgate/kycgate/internal/kyc"
)

// ClaimIdempotencyKey is one INSERT … ON CONFLICT: a new key is inserted,
// and an existing one is taken over only when it expired or its running
// holder's lease lapsed, so of any number of concurrent claims on any
// number of replicas exactly one wins. A loser reads the row that beat it.
func (db *DB) ClaimIdempotencyKey(ctx context.Context, c kyc.IdempotencyClaim) (bool, kyc.IdempotencyRecord, error) {
	var token string
	err := db.w.QueryRowContext(ctx, `INSERT INTO idempotency_keys
			(tenant_id, key_hash, fingerprint, token, lease_until, expires_at, subjects) VALUES ($1, $2, $3, $4, $5, $6, $8)
		ON CONFLICT (tenant_id, key_hash) DO UPDATE SET fingerprint = excluded.fingerprint, token = excluded.token,
			lease_until = excluded.lease_until, expires_at = excluded.expires_at, subjects = excluded.subjects,
			status = 0, content_type = '', retry_after = '', body = ''
		WHERE idempotency_keys.expires_at <= $7 OR (idempotency_keys.status = 0 AND idempotency_keys.lease_until <= $7)
		RETURNING token`,
		c.TenantID, c.KeyHash, c.Fingerprint, c.Token, ms(c.LeaseUntil), ms(c.ExpiresAt), ms(c.Now), subjectsCol(c.Subjects)).Scan(&token)
	if err == nil {
		return true, kyc.IdempotencyRecord{}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		db.NoteFault(err)
		return false, kyc.IdempotencyRecord{}, fmt.Errorf("store: claim idempotency key: %w", err)
	}
	// Read on the writer: the row that beat us may be younger than what a
	// reader's snapshot shows.
	var (
		rec    kyc.IdempotencyRecord
		status int
		a      kyc.StoredAnswer
		body   string
	)
	err = db.w.QueryRowContext(ctx, `SELECT fingerprint, status, content_type, retry_after, body
		FROM idempotency_keys WHERE tenant_id = $1 AND key_hash = $2`, c.TenantID, c.KeyHash).
		Scan(&rec.Fingerprint, &status, &a.ContentType, &a.RetryAfter, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return false, rec, kyc.ErrNotFound
	}
	if err != nil {
		return false, rec, fmt.Errorf("store: read idempotency key: %w", err)
	}
	if status != 0 {
		a.Status, a.Body = status, []byte(body)
		rec.Answer = &a
	}
	return false, rec, nil
}

// CompleteIdempotencyKey stores the answer under the key while token holds it.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, tenantID, keyHash, token string, a kyc.StoredAnswer) error {
	_, err := db.w.ExecContext(ctx, `UPDATE idempotency_keys SET status = $4, content_type = $5, retry_after = $6, body = $7
		WHERE tenant_id = $1 AND key_hash = $2 AND token = $3 AND status = 0`,
		tenantID, keyHash, token, a.Status, a.ContentType, a.RetryAfter, string(a.Body))
	if err != nil {
		db.NoteFault(err)
		return fmt.Errorf("store: complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey deletes the key's row while token holds it.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, tenantID, keyHash, token string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM idempotency_keys
		WHERE tenant_id = $1 AND key_hash = $2 AND token = $3 AND status = 0`, tenantID, keyHash, token)
	if err != nil {
		db.NoteFault(err)
		return fmt.Errorf("store: release idempotency key: %w", err)
	}
	return nil
}

// subjectsCol frames keyed hashes as ",h1,h2," ("" when none), so one
// LIKE '%,h,%' finds a row naming h.
func subjectsCol(hashes []string) string {
	if len(hashes) == 0 {
		return ""
	}
	return "," + strings.Join(hashes, ",") + ","
}
