package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// faultHold is how long a write that failed for want of storage keeps the
// replica not ready: long enough for a load balancer polling every few
// seconds to see it, short enough that readiness comes back by itself once
// space is free again.
const faultHold = 10 * time.Second

// Ready reports whether this replica can serve writes: it writes the probe
// row (reachable is not enough: a database on a full disk or turned
// read-only still answers reads and pings), and it refuses for faultHold
// after any write failed with a storage fault (see NoteFault) — with
// SQLite a small probe can still fit in the log's free space while real
// writes fail.
func (db *DB) Ready(ctx context.Context) error {
	if at := db.lastFault.Load(); at != 0 {
		if since := time.Since(time.Unix(0, at)); since < faultHold {
			return fmt.Errorf("store: a write failed for want of storage %s ago", since.Round(time.Millisecond))
		}
	}
	if _, err := db.w.ExecContext(ctx, `INSERT INTO ready_probe (id, at) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET at = excluded.at`, time.Now().UnixMilli()); err != nil {
		db.NoteFault(err)
		return fmt.Errorf("store: write probe: %w", err)
	}
	var one int
	if err := db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping reader: %w", err)
	}
	return nil
}

// NoteFault records err if it says the database cannot write (full disk,
// I/O error, read-only), for Ready, and reports whether it did. Other
// errors are ignored.
func (db *DB) NoteFault(err error) bool {
	if err == nil || !StorageFault(err) {
		return false
	}
	db.lastFault.Store(time.Now().UnixNano())
	return true
}

// StorageFault reports whether err is the database saying it cannot write
// for want of storage, whatever the statement: retrying elsewhere helps,
// retrying here does not.
func StorageFault(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
			return true
		}
		return false
	}
	switch pgCode(err) {
	case "53100", // disk_full
		"58030", // io_error
		"25006": // read_only_sql_transaction (a standby, or default_transaction_read_only)
		return true
	}
	return false
}
