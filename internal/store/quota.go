package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kycgate/kycgate/internal/kyc"
)

// ReserveQuota takes one unit of the month's quota for the caller's claim
// and records it on the claim, together: exact under concurrency on both
// engines (the conflict update only happens while used < limit), and a
// unit never outlives its claim without a stored session. A claim that
// already holds this month's unit of this tenant (inherited from a holder
// that died) keeps it; one holding another month's or tenant's unit trades
// it for this one. The first reservation of a month inserts used = 1
// unconditionally, so a limit below 1 is refused here. ErrConflict when
// the caller no longer holds the claim.
func (db *DB) ReserveQuota(ctx context.Context, q kyc.QuotaHold, limit int) (bool, error) {
	if limit < 1 {
		return false, nil
	}
	var ok bool
	var err error
	if db.dialect == Postgres {
		ok, err = db.reserveQuotaPG(ctx, q, limit)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			ok, err = reserveQuotaSQLite(ctx, tx, q, limit)
			return err
		})
	}
	if err != nil {
		if errors.Is(err, kyc.ErrConflict) {
			return false, err
		}
		return false, fmt.Errorf("store: reserve quota: %w", err)
	}
	return ok, nil
}

// reserveQuotaPG is ReserveQuota in one statement (one round trip on the
// create-session path): c locks the claim, u takes the unit unless the
// claim holds it already, old gives back a unit of another month or
// tenant the claim held, and m records the new one on the claim.
func (db *DB) reserveQuotaPG(ctx context.Context, q kyc.QuotaHold, limit int) (bool, error) {
	var claimed, needed, taken int
	err := db.w.QueryRowContext(ctx, `WITH c AS (
			SELECT quota_tenant, quota_month FROM session_claims WHERE person_id = $1 AND token = $2 FOR UPDATE
		), need AS (
			SELECT 1 FROM c WHERE c.quota_tenant IS DISTINCT FROM $3::text OR c.quota_month IS DISTINCT FROM $4::text
		), u AS (
			INSERT INTO quota_usage (tenant_id, month, used) SELECT $3::text, $4::text, 1 FROM need
			ON CONFLICT (tenant_id, month) DO UPDATE SET used = quota_usage.used + 1
			WHERE quota_usage.used < $5 RETURNING used
		), old AS (
			UPDATE quota_usage SET used = quota_usage.used - 1 FROM c
			WHERE EXISTS (SELECT 1 FROM u) AND quota_usage.tenant_id = c.quota_tenant
				AND quota_usage.month = c.quota_month AND quota_usage.used > 0
		), m AS (
			UPDATE session_claims SET quota_tenant = $3::text, quota_month = $4::text
			WHERE person_id = $1 AND token = $2 AND EXISTS (SELECT 1 FROM u)
		)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM need), (SELECT count(*) FROM u)`,
		q.PersonID, q.Token, q.TenantID, q.Month, limit).Scan(&claimed, &needed, &taken)
	switch {
	case err != nil:
		return false, err
	case claimed == 0:
		return false, kyc.ErrConflict
	}
	return needed == 0 || taken == 1, nil
}

func reserveQuotaSQLite(ctx context.Context, tx *sql.Tx, q kyc.QuotaHold, limit int) (bool, error) {
	var held, heldMonth sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT quota_tenant, quota_month FROM session_claims
		WHERE person_id = $1 AND token = $2`, q.PersonID, q.Token).Scan(&held, &heldMonth)
	if errors.Is(err, sql.ErrNoRows) {
		return false, kyc.ErrConflict
	}
	if err != nil {
		return false, err
	}
	if held.Valid && held.String == q.TenantID && heldMonth.String == q.Month {
		return true, nil
	}
	var used int
	err = tx.QueryRowContext(ctx, `INSERT INTO quota_usage (tenant_id, month, used) VALUES ($1, $2, 1)
		ON CONFLICT (tenant_id, month) DO UPDATE SET used = quota_usage.used + 1
		WHERE quota_usage.used < $3 RETURNING used`, q.TenantID, q.Month, limit).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // the claim keeps what it held; its release gives that back
	}
	if err != nil {
		return false, err
	}
	if held.Valid {
		if _, err := tx.ExecContext(ctx, releaseUnit, q.PersonID, q.Token); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE session_claims SET quota_tenant = $3, quota_month = $4
		WHERE person_id = $1 AND token = $2`, q.PersonID, q.Token, q.TenantID, q.Month); err != nil {
		return false, err
	}
	return true, nil
}

func (db *DB) QuotaUsed(ctx context.Context, tenantID, month string) (int, error) {
	var used int
	err := db.r.QueryRowContext(db.pointCtx(ctx), `SELECT used FROM quota_usage WHERE tenant_id = $1 AND month = $2`, tenantID, month).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: quota used: %w", err)
	}
	return used, nil
}
