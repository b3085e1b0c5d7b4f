package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Prune deletes rows that no rule needs any more, in one transaction;
// lapsed claims give back the quota units they held.
func (db *DB) Prune(ctx context.Context, p kyc.PruneBefore) (int64, error) {
	var total int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		n, err := db.sweepClaims(ctx, tx, ms(p.Claims))
		if err != nil {
			return fmt.Errorf("store: prune: %w", err)
		}
		total += n
		for _, q := range []struct {
			sql string
			arg int64
		}{
			{`DELETE FROM challenges WHERE expires_at < $1`, ms(p.Challenges)},
			{`DELETE FROM webhook_events WHERE received_at < $1`, ms(p.Events)},
			{`DELETE FROM rate_counters WHERE window_start < $1`, ms(p.RateCounters)},
			{`DELETE FROM idempotency_keys WHERE expires_at <= $1`, ms(p.Idempotency)},
			// Finished deliveries, then events none is left for (pending
			// ones stay, however old: they are still owed).
			{`DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1`, ms(p.Outbox)},
			{`DELETE FROM outbox_events WHERE created_at < $1
				AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = outbox_events.id)`, ms(p.Outbox)},
		} {
			res, err := tx.ExecContext(ctx, q.sql, q.arg)
			if err != nil {
				return fmt.Errorf("store: prune: %w", err)
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	return total, err
}
