// Package storetest gives tests fresh, isolated databases on every engine
// the store supports: always a SQLite file, plus PostgreSQL when one is
// reachable.
//
// PostgreSQL is found through KYCGATE_TEST_POSTGRES_URL (a postgres:// URL)
// or, when that is unset, the libpq variables PGHOST, PGPORT, PGUSER,
// PGPASSWORD, PGDATABASE and PGSSLMODE (used when PGHOST or PGPORT is set;
// `pg_virtualenv go test ./...` sets them). With KYCGATE_TEST_POSTGRES=require
// a missing or unreachable PostgreSQL fails the test instead of skipping the
// PostgreSQL runs.
//
// Each PostgreSQL URL selects its own fresh schema through the search_path
// runtime parameter; the schema is dropped when the test ends. (Measured
// with pg_virtualenv: a fresh, migrated store takes about 0.1 s on a new
// schema and 0.2 s on a new database.)
//
// Use the engine name in test names so `go test -v` shows which engine ran:
//
//	for _, e := range storetest.Engines(t) {
//		t.Run(e.Name, func(t *testing.T) { db := open(t, e.URL); … })
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Engine is one database to run a test on.
type Engine struct {
	Name string // "sqlite" or "postgres"
	URL  string // for store.Open
}

// Engines returns a fresh SQLite database and, when PostgreSQL is reachable,
// a fresh isolated PostgreSQL schema, both removed when tb ends.
func Engines(tb testing.TB) []Engine {
	tb.Helper()
	engines := []Engine{{Name: "sqlite", URL: SQLiteURL(tb)}}
	if u, ok := PostgresURL(tb); ok {
		engines = append(engines, Engine{Name: "postgres", URL: u})
	}
	return engines
}

// SQLiteURL returns the URL of a new SQLite file in tb.TempDir().
func SQLiteURL(tb testing.TB) string {
	tb.Helper()
	return "sqlite:" + filepath.Join(tb.TempDir(), "kycgate.db")
}

const (
	envURL     = "KYCGATE_TEST_POSTGRES_URL"
	envRequire = "KYCGATE_TEST_POSTGRES" // "require"
)

// server is the PostgreSQL server the tests use, found once per process.
var server struct {
	once       sync.Once
	configured bool     // some PostgreSQL was named
	base       *url.URL // what was named
	admin      *sql.DB  // creates and drops the schemas
	err        error    // why it cannot be used
	logged     atomic.Bool
}

func connect() {
	base, err := baseURL()
	if err != nil {
		server.configured, server.err = true, err
		return
	}
	if base == nil {
		return
	}
	server.configured, server.base = true, base
	db, err := sql.Open("pgx", base.String())
	if err != nil {
		server.err = err
		return
	}
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		server.err = err
		return
	}
	server.admin = db
}

// baseURL is the configured server, or nil when none is.
func baseURL() (*url.URL, error) {
	if s := os.Getenv(envURL); s != "" {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL", envURL)
		}
		return u, nil
	}
	if os.Getenv("PGHOST") == "" && os.Getenv("PGPORT") == "" {
		return nil, nil
	}
	q := url.Values{}
	for _, kv := range [][2]string{{"PGHOST", "host"}, {"PGPORT", "port"}, {"PGUSER", "user"},
		{"PGPASSWORD", "password"}, {"PGDATABASE", "dbname"}, {"PGSSLMODE", "sslmode"}} {
		if v := os.Getenv(kv[0]); v != "" {
			q.Set(kv[1], v)
		}
	}
	// postgres:///?host=… : everything in the query, as libpq allows, so
	// that a socket directory in PGHOST needs no escaping.
	return &url.URL{Scheme: "postgres", Host: "", Path: "/", RawQuery: q.Encode()}, nil
}

// PostgresURL returns the URL of a fresh PostgreSQL schema, dropped when tb
// ends, or false when no PostgreSQL is configured or reachable (a failure
// instead when KYCGATE_TEST_POSTGRES=require).
func PostgresURL(tb testing.TB) (string, bool) {
	tb.Helper()
	server.once.Do(connect)
	required := os.Getenv(envRequire) == "require"
	switch {
	case !server.configured && required:
		tb.Fatalf("storetest: %s=require but no PostgreSQL is configured: set %s, or PGHOST/PGPORT (e.g. run the tests under pg_virtualenv)", envRequire, envURL)
	case !server.configured:
		if server.logged.CompareAndSwap(false, true) {
			tb.Logf("storetest: PostgreSQL runs skipped: no PostgreSQL configured (set %s or PGHOST/PGPORT, or run under pg_virtualenv)", envURL)
		}
		return "", false
	case server.err != nil && required:
		tb.Fatalf("storetest: %s=require but PostgreSQL is not reachable: %v", envRequire, server.err)
	case server.err != nil:
		if server.logged.CompareAndSwap(false, true) {
			tb.Logf("storetest: PostgreSQL runs skipped: PostgreSQL is not reachable: %v", server.err)
		}
		return "", false
	}

	name := "kgt_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := server.admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("storetest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := server.admin.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("storetest: drop schema %s: %v", name, err)
		}
	})
	u := *server.base
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), true
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
