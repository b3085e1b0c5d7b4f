package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Prune deletes rows that no rule needs any more; lapsed claims give back
// the quota units they held. The small kinds go in one transaction; codes,
// send histories and decisions, which grow with every user, go in batches
// of their own, so no statement holds locks for long (SQLite has one
// writer; a replica's requests wait behind it).
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
	if err != nil {
		return total, err
	}
	n, err := db.pruneBatched(ctx, p)
	total += n
	if err != nil || p.Audit.IsZero() {
		return total, err
	}
	n, err = db.pruneAudit(ctx, p.Audit)
	return total + n, err
}

// pruneBatch bounds the rows one pruning statement touches.
const pruneBatch = 500

// Each batched statement names its rows by a sub-select with a LIMIT and
// repeats the condition outside it: on PostgreSQL a row that a concurrent
// request changed after the sub-select's snapshot is re-checked against
// the condition as it is now (a code sent again meanwhile stays), and on
// SQLite the statement runs alone. Replicas pruning together delete each
// row once; the other's statement finds it gone.
const (
	pruneCodes = `DELETE FROM otp_codes WHERE expires_at < $1 AND (tenant_id, address, wallet) IN (
		SELECT tenant_id, address, wallet FROM otp_codes WHERE expires_at < $1 LIMIT $2)`
	sendsIdle  = `COALESCE(sent1, 0) < $1 AND COALESCE(gap_from, 0) < $1 AND COALESCE(delivering_until, 0) < $1`
	pruneSends = `DELETE FROM otp_sends WHERE ` + sendsIdle + ` AND (tenant_id, address) IN (
		SELECT tenant_id, address FROM otp_sends WHERE ` + sendsIdle + ` LIMIT $2)`
	// A pruned session keeps '{}' for its decision, as one that came
	// without a body: it counts as decided, so the reconciler does not
	// fetch the decision again. The version moves, so an event applied
	// concurrently re-reads instead of writing the old facts back.
	decisionOld = `watch = FALSE AND updated_at < $1 AND status IN (%s)
		AND (decision <> '{}' OR ip_info <> '[]')`
	pruneDecisions = `UPDATE kyc_sessions SET decision = '{}', ip_info = '[]', version = version + 1
		WHERE ` + decisionOld + ` AND id IN (SELECT id FROM kyc_sessions WHERE ` + decisionOld + ` LIMIT $2)`
)

// pruneBatched runs the batched statements, each until a batch comes back
// short.
func (db *DB) pruneBatched(ctx context.Context, p kyc.PruneBefore) (int64, error) {
	type job struct {
		name, sql string
		args      []any
	}
	var jobs []job
	if !p.OTPCodes.IsZero() {
		jobs = append(jobs, job{"otp codes", pruneCodes, []any{ms(p.OTPCodes), pruneBatch}})
	}
	if !p.OTPSends.IsZero() {
		jobs = append(jobs, job{"otp sends", pruneSends, []any{ms(p.OTPSends), pruneBatch}})
	}
	if !p.Decisions.IsZero() && len(p.FinalStatuses) > 0 {
		args := []any{ms(p.Decisions), pruneBatch}
		marks := make([]string, len(p.FinalStatuses))
		for i, st := range p.FinalStatuses {
			args = append(args, string(st))
			marks[i] = fmt.Sprintf("$%d", i+3)
		}
		jobs = append(jobs, job{"decisions", strings.ReplaceAll(pruneDecisions, "%s", strings.Join(marks, ", ")), args})
	}
	var total int64
	for _, j := range jobs {
		for {
			res, err := db.w.ExecContext(ctx, j.sql, j.args...)
			if err != nil {
				return total, fmt.Errorf("store: prune %s: %w", j.name, err)
			}
			n, _ := res.RowsAffected()
			total += n
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}
