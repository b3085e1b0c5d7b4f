package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Creation claims: one caller at a time creates a person's session, and
// the claim carries the quota unit it reserved (see ReserveQuota).

// ClaimSessionCreation takes over a lapsed claim with the quota unit it
// holds: the dead holder's unit becomes the new holder's, so a crash costs
// no unit (see ReserveQuota).
func (db *DB) ClaimSessionCreation(ctx context.Context, personID, token string, until, now time.Time) (bool, error) {
	var got string
	err := db.w.QueryRowContext(ctx, `INSERT INTO session_claims (person_id, token, claimed_until) VALUES ($1, $2, $3)
		ON CONFLICT (person_id) DO UPDATE SET token = excluded.token, claimed_until = excluded.claimed_until
		WHERE session_claims.claimed_until <= $4 OR session_claims.token = excluded.token
		RETURNING token`, personID, token, ms(until), ms(now)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if isForeignKey(err) {
		return false, kyc.ErrNotFound // the person was merged into another
	}
	if err != nil {
		return false, fmt.Errorf("store: claim session creation: %w", err)
	}
	return true, nil
}

// releaseUnit gives back the quota unit a claim holds; $1, $2 name the
// claim. It runs before the claim's row changes, in the same statement or
// transaction.
const releaseUnit = `UPDATE quota_usage SET used = used - 1
	WHERE used > 0 AND EXISTS (SELECT 1 FROM session_claims c WHERE c.person_id = $1 AND c.token = $2
		AND c.quota_tenant = quota_usage.tenant_id AND c.quota_month = quota_usage.month)`

// ReleaseSessionClaim ends a claim and gives back the quota unit it still
// holds, together.
func (db *DB) ReleaseSessionClaim(ctx context.Context, personID, token string) error {
	const claim = `person_id = $1 AND token = $2`
	var err error
	if db.dialect == Postgres {
		_, err = dropClaims(ctx, db.w, true, claim, personID, token)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			_, err := dropClaims(ctx, tx, false, claim, personID, token)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: release claim: %w", err)
	}
	return nil
}

// SweepLapsedClaims deletes the claims that lapsed before `before` and
// gives back the quota units they held: what a holder that died (SIGKILL,
// power loss) leaves behind. A live holder renews its claim long before
// it lapses, and one that loses it anyway finds it gone when it stores its
// session (ErrConflict), so no unit is ever given back twice.
func (db *DB) SweepLapsedClaims(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = db.sweepClaims(ctx, tx, ms(before))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: sweep lapsed claims: %w", err)
	}
	return n, nil
}

// sweepClaims is SweepLapsedClaims inside a transaction.
func (db *DB) sweepClaims(ctx context.Context, tx *sql.Tx, before int64) (int64, error) {
	return dropClaims(ctx, tx, db.dialect == Postgres, `claimed_until < $1`, before)
}

// querier is what dropClaims runs on: the pool or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// dropClaims deletes the claims matching where (a condition on
// session_claims' own columns, args as $1…) and gives back the quota
// units they held, and returns how many it deleted. Every way a claim ends
// without a stored session (release, sweep, a merge) comes through here,
// so a unit is given back exactly once. One statement on PostgreSQL; two
// on SQLite, which the caller runs in one transaction (its single writer
// lets nothing in between).
func dropClaims(ctx context.Context, q querier, pg bool, where string, args ...any) (int64, error) {
	if pg {
		var n int64
		err := q.QueryRowContext(ctx, `WITH d AS (
				DELETE FROM session_claims WHERE `+where+` RETURNING quota_tenant, quota_month
			), g AS (
				SELECT quota_tenant, quota_month, count(*) AS n FROM d WHERE quota_tenant IS NOT NULL GROUP BY 1, 2
			), u AS (
				UPDATE quota_usage SET used = GREATEST(used - g.n, 0) FROM g
				WHERE quota_usage.tenant_id = g.quota_tenant AND quota_usage.month = g.quota_month
			)
			SELECT count(*) FROM d`, args...).Scan(&n)
		return n, err
	}
	held := `FROM session_claims WHERE ` + where +
		` AND quota_tenant = quota_usage.tenant_id AND quota_month = quota_usage.month`
	if _, err := q.ExecContext(ctx, `UPDATE quota_usage SET used = max(used - (SELECT count(*) `+held+`), 0)
		WHERE EXISTS (SELECT 1 `+held+`)`, args...); err != nil {
		return 0, err
	}
	res, err := q.ExecContext(ctx, `DELETE FROM session_claims WHERE `+where, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (db *DB) RenewSessionClaim(ctx context.Context, personID, token string, until time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE session_claims SET claimed_until = $3 WHERE person_id = $1 AND token = $2`,
		personID, token, ms(until))
	if err != nil {
		return false, fmt.Errorf("store: renew claim: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
