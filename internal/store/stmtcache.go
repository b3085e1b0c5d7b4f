package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"

	"modernc.org/sqlite"
)

// openSQLiteDB is sql.Open("sqlite", dsn) with each connection's compiled
// statements kept (see cachingConnector).
func openSQLiteDB(dsn string) (*sql.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(cachingConnector{c}), nil
}

// SQLite spends most of a simple query compiling its SQL: under load,
// sqlite3_prepare_v2 took 30 % of kycgate's CPU on GET /kyc/status, more
// than running the three queries did. cachingConnector keeps each
// connection's compiled statements, keyed by SQL text, so every statement
// is compiled once per connection and then only bound, stepped and reset.
// Callers keep using QueryContext/ExecContext with plain SQL strings, inside
// transactions too; nothing about what a statement does or sees changes.
// (pgx already caches prepared statements per connection the same way.)
//
// database/sql uses a driver connection from one goroutine at a time, so
// the per-connection map needs no lock.
type cachingConnector struct{ inner driver.Connector }

func (c cachingConnector) Driver() driver.Driver { return c.inner.Driver() }

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	conn, ok := dc.(sqliteConn)
	if !ok {
		dc.Close()
		return nil, errors.New("store: sqlite driver connection lacks a context method this store relies on")
	}
	return &cachedConn{sqliteConn: conn, stmts: make(map[string]*cachedStmt)}, nil
}

// sqliteConn is what modernc.org/sqlite's connection implements and
// database/sql uses.
type sqliteConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// maxCachedStmts bounds a connection's cache. The store's SQL is a fixed
// set of texts well below this; anything beyond runs uncached.
const maxCachedStmts = 256

type cachedConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	st interface {
		driver.Stmt
		driver.StmtQueryContext
		driver.StmtExecContext
	}
	busy bool // rows from it are still open
}

// stmt returns the connection's compiled statement for query, or nil when
// query should run uncached: a script of several statements, a full cache,
// or the statement's rows still being read (a statement steps one result at
// a time).
func (c *cachedConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if len(c.stmts) >= maxCachedStmts || strings.Contains(query, ";") {
		return nil, nil
	}
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(interface {
		driver.Stmt
		driver.StmtQueryContext
		driver.StmtExecContext
	})
	if !ok {
		ds.Close()
		return nil, nil
	}
	s := &cachedStmt{st: st}
	c.stmts[query] = s
	return s, nil
}

func (c *cachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.st.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s}, nil
}

func (c *cachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return s.st.ExecContext(ctx, args)
}

func (c *cachedConn) Close() error {
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(append(errs, c.sqliteConn.Close())...)
}

// cachedRows frees its statement for the next query when closed (the driver
// resets it then).
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	return err
}
