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

// AppendAudit writes e into audit_pending, the unsealed entries' table,
// and returns once it is committed. Entries that
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
	sb.WriteString(`INSERT INTO audit_pending (tenant_id, at, actor, action, subject, result, request_id) VALUES `)
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

// pendingCols reads an audit_pending row as auditCols reads an audit_log
// one: not sealed yet, so no place in a chain.
const pendingCols = `id, tenant_id, at, actor, action, subject, result, request_id,
	CAST(NULL AS BIGINT) AS seq, '' AS prev_hash, '' AS hash`

// SealAudit moves up to limit entries from audit_pending into audit_log,
// chained, in one transaction. On PostgreSQL it first takes an advisory
// lock held until it ends, so two replicas never read the same chain head;
// every statement after the lock sees what the previous sealer committed
// (READ COMMITTED). On SQLite the transaction is the one writer. The
// unique (tenant_id, seq) index is the last guard: a duplicate place fails
// the whole batch. It deletes exactly the rows it read: on PostgreSQL an
// entry with a lower id may commit after them, and is sealed next time.
func (db *DB) SealAudit(ctx context.Context, limit int, hash func(kyc.AuditEntry) string) (int, error) {
	sealed := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		sealed = 0
		if db.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, auditSealLock); err != nil {
				return fmt.Errorf("store: seal audit log: lock: %w", err)
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+pendingCols+` FROM audit_pending ORDER BY id LIMIT $1`, limit)
		if err != nil {
			return fmt.Errorf("store: seal audit log: %w", err)
		}
		pending, err := scanAudits(rows, "seal audit log")
		if err != nil {
			return err
		}
		heads := map[string]kyc.AuditEntry{}
		for i := range pending {
			e := &pending[i]
			head, ok := heads[e.TenantID]
			if !ok {
				if head, err = auditHead(ctx, tx, e.TenantID); err != nil {
					return err
				}
			}
			e.Seq, e.PrevHash = head.Seq+1, head.Hash
			e.Hash = hash(*e)
			heads[e.TenantID] = *e
		}
		if db.dialect == SQLite {
			sealed, err = moveAuditsSQLite(ctx, tx, pending)
			return err
		}
		for len(pending) > 0 {
			n := min(len(pending), auditMoveMax)
			if err := moveAudits(ctx, tx, pending[:n]); err != nil {
				return err
			}
			pending = pending[n:]
			sealed += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return sealed, nil
}

// moveAuditsSQLite moves sealed entries one cached INSERT at a time: the
// single writer makes no round trip, and a multi-row INSERT would be
// compiled anew for every batch size. Inside the write transaction every
// pending row is visible, so the entries read (the lowest ids, in order)
// are exactly those up to the last one.
func moveAuditsSQLite(ctx context.Context, tx *sql.Tx, es []kyc.AuditEntry) (int, error) {
	if len(es) == 0 {
		return 0, nil
	}
	for _, e := range es {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			auditArgs(e)...); err != nil {
			return 0, fmt.Errorf("store: seal audit entry %d: %w", e.ID, err)
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM audit_pending WHERE id <= $1`, es[len(es)-1].ID)
	if err := movedAll(res, err, len(es)); err != nil {
		return 0, err
	}
	return len(es), nil
}

// auditArgs are e's fields in auditCols order, the order scanAudit reads.
func auditArgs(e kyc.AuditEntry) []any {
	return []any{e.ID, e.TenantID, ms(e.At), e.Actor, e.Action, e.Subject, e.Result, e.RequestID, e.Seq, e.PrevHash, e.Hash}
}

// movedAll checks a move's DELETE from audit_pending: exactly the n
// entries just inserted into the log left it, or the seal rolls back.
func movedAll(res sql.Result, err error, n int) error {
	if err != nil {
		return fmt.Errorf("store: seal %d audit entries: %w", n, err)
	}
	if got, err := res.RowsAffected(); err != nil || got != int64(n) {
		return fmt.Errorf("store: seal %d audit entries: %d left the pending table (%v)", n, got, err)
	}
	return nil
}

// auditMoveMax bounds one move's parameters (11 per entry) well inside both
// engines' limits.
const auditMoveMax = 200

// moveAudits writes sealed entries into audit_log, under the ids they had,
// and deletes them from audit_pending, in two statements per batch: on
// PostgreSQL each statement is a round trip.
func moveAudits(ctx context.Context, tx *sql.Tx, es []kyc.AuditEntry) error {
	var ins, del strings.Builder
	ins.WriteString(`INSERT INTO audit_log (` + auditCols + `) VALUES `)
	del.WriteString(`DELETE FROM audit_pending WHERE id IN (`)
	args := make([]any, 0, 11*len(es))
	ids := make([]any, 0, len(es))
	for i, e := range es {
		if i > 0 {
			ins.WriteByte(',')
			del.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&ins, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11)
		args = append(args, auditArgs(e)...)
		fmt.Fprintf(&del, "$%d", i+1)
		ids = append(ids, e.ID)
	}
	del.WriteByte(')')
	if _, err := tx.ExecContext(ctx, ins.String(), args...); err != nil {
		return fmt.Errorf("store: seal %d audit entries: %w", len(es), err)
	}
	res, err := tx.ExecContext(ctx, del.String(), ids...)
	return movedAll(res, err, len(es))
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
// column or a range on the primary key the scan walks anyway. The same
// WHERE selects from the sealed log and from audit_pending (a few seconds
// of entries, no index but the key), in one statement so that an entry the
// sealer moves meanwhile is read once.
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
	cond := ""
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, ` AND `)
	}
	tail := fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args)+1)
	q := `SELECT * FROM (SELECT ` + auditCols + ` FROM audit_log` + cond + tail + `) AS sealed
		UNION ALL SELECT * FROM (SELECT ` + pendingCols + ` FROM audit_pending` + cond + tail + `) AS pending` + tail
	rows, err := db.r.QueryContext(ctx, q, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: list audit log: %w", err)
	}
	return scanAudits(rows, "list audit log")
}

// AuditChains counts each tenant's pending entries; a tenant with sealed
// entries only counts none (MAX of 0 and nothing).
func (db *DB) AuditChains(ctx context.Context) ([]kyc.AuditChain, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT tenant_id, MAX(n) FROM (
			SELECT tenant_id, 0 AS n FROM audit_log GROUP BY tenant_id
			UNION ALL SELECT tenant_id, COUNT(*) AS n FROM audit_pending GROUP BY tenant_id) AS c
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
// Unsealed entries (audit_pending) stay, however old. Deleting below a
// seq is the same whoever does it, so replicas pruning together delete
// each entry once.
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
