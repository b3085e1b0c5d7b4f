package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

var _ kyc.Store = (*DB)(nil)

func (db *DB) CreateTenant(ctx context.Context, t kyc.Tenant, key kyc.APIKey) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, kyc_enabled, monthly_quota, rate_limit_per_minute, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, t.Name, t.KYCEnabled, t.MonthlyQuota, t.RateLimitPerMinute, ms(t.CreatedAt)); err != nil {
			return fmt.Errorf("store: insert tenant: %w", err)
		}
		return insertKey(ctx, tx, key)
	})
}

func insertKey(ctx context.Context, tx *sql.Tx, k kyc.APIKey) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, key_hash, prefix, created_at)
		VALUES ($1, $2, $3, $4, $5)`, k.ID, k.TenantID, k.Hash, k.Prefix, ms(k.CreatedAt)); err != nil {
		return fmt.Errorf("store: insert api key: %w", err)
	}
	return nil
}

const tenantCols = `t.id, t.name, t.kyc_enabled, t.monthly_quota, t.rate_limit_per_minute, t.created_at`

func scanTenant(row interface{ Scan(...any) error }) (kyc.Tenant, error) {
	var t kyc.Tenant
	var created int64
	err := row.Scan(tenantDest(&t, &created)...)
	t.CreatedAt = fromMS(created)
	return t, err
}

// tenantDest is where tenantCols scan to; created is t.CreatedAt in ms.
func tenantDest(t *kyc.Tenant, created *int64) []any {
	return []any{&t.ID, &t.Name, &t.KYCEnabled, &t.MonthlyQuota, &t.RateLimitPerMinute, created}
}

// keyTenantCols are tenantCols read through an API key k, with the key's
// id: the audit log's actor costs no query of its own.
const keyTenantCols = tenantCols + `, k.id`

// keyTenantDest is where keyTenantCols scan to.
func keyTenantDest(t *kyc.Tenant, created *int64) []any {
	return append(tenantDest(t, created), &t.KeyID)
}

func (db *DB) ListTenants(ctx context.Context) ([]kyc.Tenant, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+tenantCols+` FROM tenants t ORDER BY t.created_at, t.id`)
	if err != nil {
		return nil, fmt.Errorf("store: list tenants: %w", err)
	}
	defer rows.Close()
	var out []kyc.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (db *DB) ListAPIKeys(ctx context.Context, tenantID string) ([]kyc.APIKey, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, tenant_id, prefix, created_at, revoked_at FROM api_keys
		WHERE tenant_id = $1 ORDER BY created_at, id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	var out []kyc.APIKey
	for rows.Next() {
		var k kyc.APIKey
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.TenantID, &k.Prefix, &created, &revoked); err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		k.CreatedAt = fromMS(created)
		if revoked.Valid {
			t := fromMS(revoked.Int64)
			k.RevokedAt = &t
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (db *DB) AddAPIKey(ctx context.Context, key kyc.APIKey) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants WHERE id = $1`, key.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("store: add key: %w", err)
		}
		if n == 0 {
			return kyc.ErrNotFound
		}
		return insertKey(ctx, tx, key)
	})
}

func (db *DB) RevokeAPIKey(ctx context.Context, tenantID, keyID string, at time.Time) error {
	res, err := db.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $3
		WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL`, tenantID, keyID, ms(at))
	if err != nil {
		return fmt.Errorf("store: revoke key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return kyc.ErrNotFound
	}
	return nil
}

func (db *DB) UpdateTenantLimits(ctx context.Context, tenantID string, quota, rate *int) error {
	res, err := db.w.ExecContext(ctx, `UPDATE tenants SET
		monthly_quota = COALESCE($2, monthly_quota),
		rate_limit_per_minute = COALESCE($3, rate_limit_per_minute)
		WHERE id = $1`, tenantID, nullInt(quota), nullInt(rate))
	if err != nil {
		return fmt.Errorf("store: update tenant: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return kyc.ErrNotFound
	}
	return nil
}

func (db *DB) SetKYCEnabled(ctx context.Context, tenantID string, enabled bool) error {
	res, err := db.w.ExecContext(ctx, `UPDATE tenants SET kyc_enabled = $2 WHERE id = $1`, tenantID, enabled)
	if err != nil {
		return fmt.Errorf("store: set kyc product: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return kyc.ErrNotFound
	}
	return nil
}

func nullInt(p *int) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*p), Valid: true}
}

func (db *DB) TenantByKeyHash(ctx context.Context, hash string) (kyc.Tenant, error) {
	var t kyc.Tenant
	var created int64
	err := db.r.QueryRowContext(db.pointCtx(ctx), `SELECT `+keyTenantCols+` FROM api_keys k
		JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, hash).
		Scan(keyTenantDest(&t, &created)...)
	t.CreatedAt = fromMS(created)
	if errors.Is(err, sql.ErrNoRows) {
		return t, kyc.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("store: tenant by key: %w", err)
	}
	return t, nil
}

// RehashAPIKey finds a key under its current name or a previous one (one
// read) and renames it when found under a previous one. The rename names
// the old hash, so of racing replicas one renames and the others change
// nothing and find the key under its new name.
func (db *DB) RehashAPIKey(ctx context.Context, hash string, old []string) (kyc.Tenant, bool, error) {
	args := []any{hash}
	in := "$1"
	for i, h := range old {
		args = append(args, h)
		in += fmt.Sprintf(", $%d", i+2)
	}
	var t kyc.Tenant
	var created int64
	var found string
	err := db.r.QueryRowContext(db.pointCtx(ctx), `SELECT `+keyTenantCols+`, k.key_hash FROM api_keys k
		JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash IN (`+in+`) AND k.revoked_at IS NULL LIMIT 1`, args...).
		Scan(append(keyTenantDest(&t, &created), &found)...)
	t.CreatedAt = fromMS(created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return t, false, kyc.ErrNotFound
	case err != nil:
		return t, false, fmt.Errorf("store: tenant by previous key: %w", err)
	case found == hash:
		return t, false, nil
	}
	res, err := db.w.ExecContext(ctx, `UPDATE api_keys SET key_hash = $1 WHERE key_hash = $2 AND revoked_at IS NULL`, hash, found)
	if err != nil {
		return t, false, fmt.Errorf("store: rehash api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return t, true, nil
	}
	// Another replica renamed it first, or it was revoked meanwhile.
	t, err = db.TenantByKeyHash(ctx, hash)
	return t, false, err
}
