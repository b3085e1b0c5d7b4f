package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// auditSealLock is the PostgreSQL advisory lock a sealing transaction
// holds, so replicas seal one at a time (migrations use 7294401).
const auditSealLock = 7294402

const auditCols = `id, tenant_id, at, actor, action, subject, result, request_id, seq, prev_hash, hash`

func scanAudit(row interface{ Scan(...any) error }) (kyc.AuditEntry, error) {
	var e kyc.AuditEntry
	var at int64
	var seq sql.NullInt64
	err := row.Scan(&e.ID, &e.TenantID, &at, &e.Actor, &e.Action, &e.Subject, &e.Result, &e.RequestID,
		&seq, &e.PrevHash, &e.Hash)
	e.At, e.Seq = fromMS(at), seq.Int64
	return e, err
}

func scanAudits(rows *sql.Rows, what string) ([]kyc.AuditEntry, error) {
	defer rows.Close()
	var out []kyc.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// AppendAudit writes e and returns once it is committed. Entries that
// arrive while another batch is being written are written together, in
// one multi-row INSERT, by whichever caller finds the writer idle: every
// state change would otherwise pay one more commit (on SQLite, one more
// turn of the single writer), and under load that commit is most of the
// cost (BENCHMARKS.md, "Audit log"). It runs outside the change's own
// transaction and takes no lock another request waits for beyond the
// insert's own.
func (db *DB) AppendAudit(ctx context.Context, e kyc.AuditEntry) error {
	done := make(chan error, 1)
	q := &db.audits
	q.mu.Lock()
	q.waiting = append(q.waiting, auditWaiter{e, done})
	lead := !q.writing
	q.writing = true
	q.mu.Unlock()
	if lead {
		db.writeAudits(context.WithoutCancel(ctx))
	}
	return <-done
}

// auditQueue holds the entries waiting for the next batch.
type auditQueue struct {
	mu      sync.Mutex
	waiting []auditWaiter
	writing bool // a batch is being written: new entries wait for the next
}

type auditWaiter struct {
	e    kyc.AuditEntry
	done chan error
}

// auditBatchMax bounds one INSERT's parameters (7 per entry) well inside
// both engines' limits.
const auditBatchMax = 500

// writeAudits writes one batch of what waits and answers its callers.
// If more arrived meanwhile, a new goroutine writes the next batch, so
// the caller that led this one is not held up by the ones after it.
//
// The batch is taken only once a connection is in hand: on SQLite the
// wait is for the single writer, and every entry that arrived during it
// rides along in the same commit.
func (db *DB) writeAudits(ctx context.Context) {
	conn, err := db.w.Conn(ctx)
	q := &db.audits
	q.mu.Lock()
	n := min(len(q.waiting), auditBatchMax)
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	q.mu.Unlock()

	if err == nil {
		err = insertAudits(ctx, conn, batch)
		conn.Close()
	}
	if err != nil {
		db.NoteFault(err)
		err = fmt.Errorf("store: append %d audit entries: %w", len(batch), err)
	}
	for _, w := range batch {
		w.done <- err
	}

	q.mu.Lock()
	more := len(q.waiting) > 0
	q.writing = more
	q.mu.Unlock()
	if more {
		go db.writeAudits(ctx)
	}
}

func insertAudits(ctx context.Context, conn *sql.Conn, batch []auditWaiter) error {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO audit_log (tenant_id, at, actor, action, subject, result, request_id) VALUES `)
	args := make([]any, 0, 7*len(batch))
	for i, w := range batch {
		if i > 0 {
			sb.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7)
		e := w.e
		args = append(args, e.TenantID, ms(e.At), e.Actor, e.Action, e.Subject, e.Result, e.RequestID)
	}
	_, err := conn.ExecContext(ctx, sb.String(), args...)
	return err
}

// SealAudit runs in one transaction. On PostgreSQL it first takes an
// advisory lock held until it ends, so two replicas never read the same
// chain head; every statement after the lock sees what the previous sealer
// committed (READ COMMITTED). On SQLite the transaction is the one writer.
// The unique (tenant_id, seq) index is the last guard: a duplicate place
// fails the whole batch.
func (db *DB) SealAudit(ctx context.Context, limit int, hash func(kyc.AuditEntry) string) (int, error) {
	sealed := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		sealed = 0
		if db.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, auditSealLock); err != nil {
				return fmt.Errorf("store: seal audit log: lock: %w", err)
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT $1`, limit)
		if err != nil {
			return fmt.Errorf("store: seal audit log: %w", err)
		}
		pending, err := scanAudits(rows, "seal audit log")
		if err != nil {
			return err
		}
		heads := map[string]kyc.AuditEntry{}
		for _, e := range pending {
			head, ok := heads[e.TenantID]
			if !ok {
				if head, err = auditHead(ctx, tx, e.TenantID); err != nil {
					return err
				}
			}
			e.Seq, e.PrevHash = head.Seq+1, head.Hash
			e.Hash = hash(e)
			if _, err := tx.ExecContext(ctx, `UPDATE audit_log SET seq = $2, prev_hash = $3, hash = $4
				WHERE id = $1 AND seq IS NULL`, e.ID, e.Seq, e.PrevHash, e.Hash); err != nil {
				return fmt.Errorf("store: seal audit entry %d: %w", e.ID, err)
			}
			heads[e.TenantID] = e
			sealed++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return sealed, nil
}

// auditHead is the last sealed entry of a tenant's chain (its Seq and
// Hash), zero when the chain is empty.
func auditHead(ctx context.Context, tx *sql.Tx, tenantID string) (kyc.AuditEntry, error) {
	var head kyc.AuditEntry
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log WHERE tenant_id = $1 AND seq IS NOT NULL
		ORDER BY seq DESC LIMIT 1`, tenantID).Scan(&head.Seq, &head.Hash)
	if err == sql.ErrNoRows {
		return kyc.AuditEntry{}, nil
	}
	if err != nil {
		return head, fmt.Errorf("store: audit chain head: %w", err)
	}
	return head, nil
}

// ListAudit builds its WHERE from the filters given: each is an indexed
// column or a range on the primary key the scan walks anyway.
func (db *DB) ListAudit(ctx context.Context, f kyc.AuditFilter) ([]kyc.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(args)), 1)
		}
		where = append(where, cond)
	}
	if f.TenantID != "" {
		add(`tenant_id = ?`, f.TenantID)
	}
	switch {
	case strings.Contains(f.Actor, ":"):
		add(`actor = ?`, f.Actor)
	case f.Actor != "":
		// A kind alone: the actor itself ("didit") or any of its ids
		// ("api_key:…").
		add(`(actor = ? OR actor LIKE ?)`, f.Actor, f.Actor+":%")
	}
	if f.Action != "" {
		add(`action = ?`, f.Action)
	}
	if f.Subject != "" {
		add(`subject = ? AND subject <> ''`, f.Subject)
	}
	if !f.Since.IsZero() {
		add(`at >= ?`, ms(f.Since))
	}
	if !f.Until.IsZero() {
		add(`at < ?`, ms(f.Until))
	}
	if f.BeforeID > 0 {
		add(`id < ?`, f.BeforeID)
	}
	q := `SELECT ` + auditCols + ` FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args)+1)
	rows, err := db.r.QueryContext(ctx, q, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: list audit log: %w", err)
	}
	return scanAudits(rows, "list audit log")
}

func (db *DB) AuditChains(ctx context.Context) ([]kyc.AuditChain, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT tenant_id, COUNT(*) - COUNT(seq) FROM audit_log
		GROUP BY tenant_id ORDER BY tenant_id`)
	if err != nil {
		return nil, fmt.Errorf("store: audit chains: %w", err)
	}
	defer rows.Close()
	var out []kyc.AuditChain
	for rows.Next() {
		var c kyc.AuditChain
		if err := rows.Scan(&c.TenantID, &c.Unsealed); err != nil {
			return nil, fmt.Errorf("store: audit chains: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit chains: %w", err)
	}
	return out, nil
}

func (db *DB) AuditChain(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]kyc.AuditEntry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log
		WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, tenantID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("store: read audit chain: %w", err)
	}
	return scanAudits(rows, "read audit chain")
}

// pruneAudit deletes, per chain, the sealed entries before the first one
// at or after before (by seq, so clocks that disagree between replicas
// cannot make a hole), never the chain's head: the next entry links to it.
// Unsealed entries stay, however old. Deleting below a seq is the same
// whoever does it, so replicas pruning together delete each entry once.
func (db *DB) pruneAudit(ctx context.Context, before time.Time) (int64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT tenant_id, MIN(seq), MAX(seq), MIN(CASE WHEN at >= $1 THEN seq END)
		FROM audit_log WHERE seq IS NOT NULL GROUP BY tenant_id`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune audit log: %w", err)
	}
	type cut struct {
		tenant       string
		oldest, keep int64
	}
	var cuts []cut
	for rows.Next() {
		var c cut
		var head int64
		var fresh sql.NullInt64
		if err := rows.Scan(&c.tenant, &c.oldest, &head, &fresh); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: prune audit log: %w", err)
		}
		c.keep = head
		if fresh.Valid {
			c.keep = fresh.Int64
		}
		if c.oldest < c.keep {
			cuts = append(cuts, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: prune audit log: %w", err)
	}
	var total int64
	for _, c := range cuts {
		for lo := c.oldest; lo < c.keep; lo += pruneBatch {
			res, err := db.w.ExecContext(ctx, `DELETE FROM audit_log WHERE tenant_id = $1 AND seq < $2`,
				c.tenant, min(lo+pruneBatch, c.keep))
			if err != nil {
				return total, fmt.Errorf("store: prune audit log: %w", err)
			}
			n, _ := res.RowsAffected()
			total += n
		}
	}
	return total, nil
}
