package storetest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

func TestBaseURL(t *testing.T) {
	clear := func(t *testing.T) {
		for _, k := range []string{envURL, "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE"} {
			t.Setenv(k, "")
		}
	}
	t.Run("none", func(t *testing.T) {
		clear(t)
		t.Setenv("PGUSER", "someone") // not enough on its own
		if u, err := baseURL(); u != nil || err != nil {
			t.Errorf("baseURL() = %v, %v; want nothing", u, err)
		}
	})
	t.Run("libpq variables", func(t *testing.T) {
		clear(t)
		t.Setenv("PGHOST", "/run/postgresql")
		t.Setenv("PGPORT", "5433")
		t.Setenv("PGUSER", "postgres")
		t.Setenv("PGPASSWORD", "p@ss&word")
		t.Setenv("PGDATABASE", "postgres")
		u, err := baseURL()
		if err != nil || u == nil {
			t.Fatalf("baseURL() = %v, %v", u, err)
		}
		want := "postgres:///?dbname=postgres&host=%2Frun%2Fpostgresql&password=p%40ss%26word&port=5433&user=postgres"
		if u.String() != want {
			t.Errorf("baseURL() = %s\nwant         %s", u, want)
		}
	})
	t.Run("only a port", func(t *testing.T) {
		clear(t)
		t.Setenv("PGPORT", "5433")
		if u, err := baseURL(); err != nil || u == nil || u.Query().Get("port") != "5433" {
			t.Errorf("baseURL() = %v, %v", u, err)
		}
	})
	t.Run("explicit URL wins", func(t *testing.T) {
		clear(t)
		t.Setenv("PGHOST", "ignored")
		t.Setenv(envURL, "postgres://u:p@db.example:6543/kyc?sslmode=disable")
		u, err := baseURL()
		if err != nil || u == nil || u.Host != "db.example:6543" || u.Query().Get("host") != "" {
			t.Errorf("baseURL() = %v, %v", u, err)
		}
	})
	t.Run("not a URL", func(t *testing.T) {
		clear(t)
		t.Setenv(envURL, "host=localhost port=5432")
		if _, err := baseURL(); err == nil || !strings.Contains(err.Error(), envURL) {
			t.Errorf("baseURL() err = %v, want one naming %s", err, envURL)
		}
	})
}

func TestEnginesAreFreshAndIsolated(t *testing.T) {
	a, b := Engines(t), Engines(t)
	if a[0].Name != "sqlite" || b[0].Name != "sqlite" || a[0].URL == b[0].URL {
		t.Fatalf("SQLite engines: %+v, %+v", a[0], b[0])
	}
	if len(a) != len(b) {
		t.Fatalf("engine lists differ: %d and %d", len(a), len(b))
	}
	if len(a) == 1 {
		return // no PostgreSQL here (PostgresURL logged why)
	}
	if a[1].Name != "postgres" || a[1].URL == b[1].URL {
		t.Fatalf("PostgreSQL engines: %+v, %+v", a[1], b[1])
	}
	ctx := context.Background()
	open := func(u string) *sql.DB {
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	da, db := open(a[1].URL), open(b[1].URL)
	if _, err := da.ExecContext(ctx, "CREATE TABLE probe (x INTEGER)"); err != nil {
		t.Fatalf("create a table in the fresh schema: %v", err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE probe (x INTEGER)"); err != nil {
		t.Errorf("a table made through one URL is visible through another: %v", err)
	}
	var schema string
	if err := da.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil || !strings.HasPrefix(schema, "kgt_") {
		t.Errorf("current_schema() = %q, %v; want kgt_…", schema, err)
	}
}
