package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kycgate/kycgate/internal/kyc"
)

// SaveChallenge writes the challenge and its audit entry together: on
// PostgreSQL in one statement (one round trip), on SQLite in one
// transaction (one turn of the writer).
func (db *DB) SaveChallenge(ctx context.Context, c kyc.Challenge, rec *kyc.AuditEntry) error {
	const insert = `INSERT INTO challenges (nonce, tenant_id, wallet, chain, message, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	args := []any{c.Nonce, c.TenantID, c.Wallet, c.Chain, c.Message, ms(c.ExpiresAt)}
	var err error
	switch {
	case rec == nil:
		_, err = db.w.ExecContext(ctx, insert, args...)
	case db.dialect == Postgres:
		_, err = db.w.ExecContext(ctx, `WITH c AS (`+insert+`)
			`+auditInsertCols+`VALUES (`+auditParams(len(args)+1, false)+`)`, auditArgs(args, *rec)...)
	default:
		err = db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
				return err
			}
			return auditInTx(ctx, tx, rec)
		})
	}
	if err != nil {
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
