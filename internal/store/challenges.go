package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kycgate/kycgate/internal/kyc"
)

func (db *DB) SaveChallenge(ctx context.Context, c kyc.Challenge) error {
	if _, err := db.w.ExecContext(ctx, `INSERT INTO challenges (nonce, tenant_id, wallet, chain, message, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.Nonce, c.TenantID, c.Wallet, c.Chain, c.Message, ms(c.ExpiresAt)); err != nil {
		return fmt.Errorf("store: save challenge: %w", err)
	}
	return nil
}

func (db *DB) FindChallenge(ctx context.Context, nonce string) (kyc.Challenge, error) {
	c := kyc.Challenge{Nonce: nonce}
	var exp int64
	var used sql.NullInt64
	err := db.r.QueryRowContext(db.pointCtx(ctx), `SELECT tenant_id, wallet, chain, message, expires_at, used_at
		FROM challenges WHERE nonce = $1`, nonce).Scan(&c.TenantID, &c.Wallet, &c.Chain, &c.Message, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return c, kyc.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("store: find challenge: %w", err)
	}
	c.ExpiresAt = fromMS(exp)
	if used.Valid {
		t := fromMS(used.Int64)
		c.UsedAt = &t
	}
	return c, nil
}
