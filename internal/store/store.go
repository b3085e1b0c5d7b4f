// Package store implements kyc.Store on SQLite (embedded default) and
// PostgreSQL with one set of SQL texts ($N placeholders, which both
// modernc.org/sqlite and pgx bind by number).
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrations embed.FS

// Dialect names a database engine.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a kyc.Store. Writes go through w; reads through r. On SQLite w is
// a single connection whose transactions begin IMMEDIATE: SQLite allows one
// writer, and deferred transactions that upgrade to writing fail with
// SQLITE_BUSY under concurrency instead of waiting.
type DB struct {
	dialect Dialect
	w, r    *sql.DB
	ck      *checkpointer // SQLite only
	audits  auditQueue

	lastFault atomic.Int64 // Unix nanoseconds of the last storage fault (see Ready)
}

// Options tune the pools.
type Options struct {
	MaxOpenConns int // PostgreSQL pool size; SQLite read pool size

	checkpointEvery time.Duration // tests: the SQLite checkpoint interval
}

// Open connects to url ("sqlite:PATH" or "postgres://…") and runs the
// migrations.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	db, err := open(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenNoMigrate connects without migrating (for `kycgate migrate` and
// replicas that leave migrations to the deploy step).
func OpenNoMigrate(ctx context.Context, url string, opt Options) (*DB, error) {
	return open(ctx, url, opt)
}

func open(ctx context.Context, url string, opt Options) (*DB, error) {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		return openSQLite(ctx, SQLitePath(url), opt)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url, opt)
	}
	return nil, fmt.Errorf("store: unsupported database URL scheme (want sqlite:PATH or postgres://…)")
}

// SQLitePath extracts the file path from "sqlite:PATH" (also "sqlite://PATH").
func SQLitePath(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
}

func openSQLite(ctx context.Context, path string, opt Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: sqlite path is empty")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create database folder: %w", err)
		}
	}
	// Codes' hashes and people's emails live here: owner-only, whatever
	// the umask. SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create database file: %w", err)
	}
	f.Close()
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	w, err := openSQLiteDB("file:" + dsnPath(path) + "?" + pragmas + "&_txlock=immediate" +
		"&_pragma=wal_autocheckpoint(0)" + fmt.Sprintf("&_pragma=journal_size_limit(%d)", walSizeLimit))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	// Create the file and switch it to WAL before readers connect.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r, err := openSQLiteDB("file:" + dsnPath(path) + "?" + pragmas + "&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite reader: %w", err)
	}
	n := opt.MaxOpenConns
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	ck, err := openSQLiteDB("file:" + dsnPath(path) + "?" + pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("store: open sqlite checkpointer: %w", err)
	}
	ck.SetMaxOpenConns(1)
	every := opt.checkpointEvery
	if every <= 0 {
		every = checkpointEvery
	}
	return &DB{dialect: SQLite, w: w, r: r, ck: startCheckpointer(ck, every)}, nil
}

// dsnPath escapes what would end the path in a file: URI (a '?' or '#' in
// a folder name would otherwise open a different file).
func dsnPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(p)
}

// Dialect reports the engine.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes both pools.
func (db *DB) Close() error {
	var err error
	if db.ck != nil {
		err = db.ck.close()
	}
	err = errors.Join(err, db.w.Close())
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Ping checks that both pools reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	var one int
	if err := db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping reader: %w", err)
	}
	return nil
}

// Migrate applies the embedded migrations that have not run yet, each in its
// own transaction. On PostgreSQL an advisory lock serialises replicas that
// start together.
func (db *DB) Migrate(ctx context.Context) error { return db.migrate(ctx, math.MaxInt64) }

// migrate applies the migrations up to version upTo.
func (db *DB) migrate(ctx context.Context, upTo int64) error {
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	if db.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(7294401)"); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7294401)")
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, checksum TEXT)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	// Databases migrated before checksums were recorded lack the column.
	if _, err := conn.ExecContext(ctx, `SELECT checksum FROM schema_migrations WHERE 1 = 0`); err != nil {
		if _, aerr := conn.ExecContext(ctx, `ALTER TABLE schema_migrations ADD COLUMN checksum TEXT`); aerr != nil {
			// Another process may have added it meanwhile (SQLite has no
			// ADD COLUMN IF NOT EXISTS): what counts is that it is there.
			if _, err := conn.ExecContext(ctx, `SELECT checksum FROM schema_migrations WHERE 1 = 0`); err != nil {
				return fmt.Errorf("store: migrate: add checksums: %w", aerr)
			}
		}
	}
	files, err := migrationFiles(db.dialect)
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.version > upTo {
			break
		}
		if err := migrateOne(ctx, conn, f); err != nil {
			return err
		}
	}
	return nil
}

// migrateOne applies one migration file unless it already ran. A file that
// ran is checked against the checksum recorded then: an edited migration
// would leave databases that ran the old text and databases that run the new
// one different without anyone noticing, so the server refuses to start.
// A migration recorded before checksums existed adopts the file's.
func migrateOne(ctx context.Context, conn *sql.Conn, f migrationFile) error {
	body, err := fs.ReadFile(migrations, "migrations/"+f.name)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	sum := sha256.Sum256(body)
	checksum := hex.EncodeToString(sum[:])
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	// Check inside the transaction: on SQLite it begins IMMEDIATE, which
	// serialises processes migrating one file together (PostgreSQL has the
	// advisory lock).
	var recorded sql.NullString
	err = tx.QueryRowContext(ctx, "SELECT checksum FROM schema_migrations WHERE version = $1", f.version).Scan(&recorded)
	switch {
	case err == nil && recorded.Valid && recorded.String != checksum:
		return fmt.Errorf("store: migration %s was changed after it ran here (sha256 %s then, %s now): "+
			"restore the file as it was and put the change in a new migration", f.name, recorded.String[:12], checksum[:12])
	case err == nil && recorded.Valid:
		return nil
	case err == nil:
		_, err = tx.ExecContext(ctx, "UPDATE schema_migrations SET checksum = $2 WHERE version = $1", f.version, checksum)
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("store: migrate %s: %w", f.name, err)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at, checksum) VALUES ($1, $2, $3)",
			f.version, time.Now().UnixMilli(), checksum)
	}
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", f.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate %s: %w", f.name, err)
	}
	return nil
}

type migrationFile struct {
	version int64
	name    string
}

// migrationFiles lists the migrations for an engine in version order. One
// file serves both engines where their SQL is the same (NNNN_name.sql); where
// it differs, NNNN_name.sqlite.sql and NNNN_name.postgres.sql carry the
// version for one engine each.
func migrationFiles(d Dialect) ([]migrationFile, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	var out []migrationFile
	seen := map[int64]string{}
	for _, e := range entries {
		name := e.Name()
		base, ok := strings.CutSuffix(name, ".sql")
		if !ok {
			return nil, fmt.Errorf("store: migrate: %s is not a .sql file", name)
		}
		if i := strings.LastIndexByte(base, '.'); i >= 0 {
			switch Dialect(base[i+1:]) {
			case d:
			case SQLite, Postgres:
				continue // the other engine's
			default:
				return nil, fmt.Errorf("store: migrate: %s names no engine", name)
			}
		}
		var version int64
		if _, err := fmt.Sscanf(name, "%d_", &version); err != nil || version <= 0 {
			return nil, fmt.Errorf("store: migrate: bad file name %s", name)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("store: migrate: %s and %s share version %d", other, name, version)
		}
		seen[version] = name
		out = append(out, migrationFile{version, name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// MigrationVersions lists the versions Migrate applies on an engine, for
// checks that every one was recorded exactly once.
func MigrationVersions(d Dialect) ([]int64, error) {
	files, err := migrationFiles(d)
	if err != nil {
		return nil, err
	}
	v := make([]int64, len(files))
	for i, f := range files {
		v[i] = f.version
	}
	return v, nil
}

// isUnique reports whether err is a uniqueness violation on either engine.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return isPgUnique(err)
}

// isForeignKey reports whether err is a foreign-key violation on either
// engine: a row referred to a person that a concurrent merge removed.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return pgCode(err) == "23503"
}

// pointCtx is the context for a one-row read by key on the read pool. On
// SQLite such a read never waits (readers in WAL mode take no locks that a
// writer holds) and takes microseconds, while a cancellable context costs
// two goroutines per query — database/sql's and the driver's watchers —
// about 8 % of GET /kyc/status's CPU. So the read keeps the caller's values
// and drops only its cancellation. PostgreSQL reads cross the network and
// keep it.
func (db *DB) pointCtx(ctx context.Context) context.Context {
	if db.dialect == SQLite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// tx runs fn in a write transaction, committing when it returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		db.NoteFault(err)
		return err
	}
	if err := tx.Commit(); err != nil {
		db.NoteFault(err)
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// Pools names the database/sql pools, for their metrics: SQLite's single
// writer connection and its readers apart (a writer starved of its one
// connection is the thing to see), PostgreSQL's one shared pool.
func (db *DB) Pools() map[string]*sql.DB {
	if db.r == db.w {
		return map[string]*sql.DB{string(db.dialect): db.w}
	}
	return map[string]*sql.DB{string(db.dialect) + "_write": db.w, string(db.dialect) + "_read": db.r}
}
