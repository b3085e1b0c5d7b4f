package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Tenant finds a tenant by id.
func (db *DB) Tenant(ctx context.Context, id string) (kyc.Tenant, error) {
	t, err := scanTenant(db.r.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM tenants t WHERE t.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return kyc.Tenant{}, kyc.ErrNotFound
	}
	if err != nil {
		return kyc.Tenant{}, fmt.Errorf("store: tenant: %w", err)
	}
	return t, nil
}

// MonthUsage reads a tenant's quota units and codes mailed in a month in
// one statement, so the two numbers are of the same moment.
func (db *DB) MonthUsage(ctx context.Context, tenantID, month string) (kyc.MonthUsage, error) {
	u := kyc.MonthUsage{Month: month}
	err := db.r.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT used FROM quota_usage WHERE tenant_id = $1 AND month = $2), 0),
		COALESCE((SELECT SUM(sent) FROM codes_sent WHERE tenant_id = $1 AND month = $2), 0)`,
		tenantID, month).Scan(&u.Sessions, &u.CodesSent)
	if err != nil {
		return kyc.MonthUsage{}, fmt.Errorf("store: month usage: %w", err)
	}
	return u, nil
}
