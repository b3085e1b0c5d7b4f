package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

func openPostgres(ctx context.Context, url string, opt Options) (*DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	n := opt.MaxOpenConns
	if n <= 0 {
		n = 20
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect postgres: %w", err)
	}
	return &DB{dialect: Postgres, w: db, r: db}, nil
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func isPgUnique(err error) bool { return pgCode(err) == "23505" }

// isPgRetryable reports a transaction PostgreSQL aborted for a concurrent
// one's sake (deadlock_detected, serialization_failure): running it again
// is the documented answer.
func isPgRetryable(err error) bool {
	c := pgCode(err)
	return c == "40P01" || c == "40001"
}
