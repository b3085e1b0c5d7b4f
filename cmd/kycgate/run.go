package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kycgate/kycgate/internal/config"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

const usage = `usage: kycgate [command]

commands:
  serve                    run the server (default)
  migrate                  apply database migrations and exit
  tenant create --name NAME [--quota N] [--rate-limit-per-minute N] [--json]
  tenant list [--json]
  tenant key add --tenant ID [--json]
  tenant key list --tenant ID [--json]
  tenant key revoke --tenant ID --key KEY_ID
  tenant set-quota --tenant ID [--quota N] [--rate-limit-per-minute N]
  tenant set-products --tenant ID --kyc on|off
  tenant webhook add --tenant ID --url URL [--events LIST] [--json]
  tenant webhook list --tenant ID [--json]
  tenant webhook remove --tenant ID --endpoint EP_ID
  tenant webhook rotate-secret --tenant ID --endpoint EP_ID [--json]
  tenant webhook deliveries --tenant ID --endpoint EP_ID [--limit N] [--json]
  tenant webhook redeliver --tenant ID --event MSG_ID [--endpoint EP_ID]
  didit-sim                run the Didit simulator on its own (see README)

Configuration is read from KYCGATE_* environment variables (see README).`

// run is the whole program, parameterised on everything it touches so tests
// can start it as a user would.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, getenv, stdout)
	case "tenant":
		return tenant(ctx, args, getenv, stdout)
	case "didit-sim":
		return diditSim(ctx, getenv, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// secret returns the configured server secret, or for the embedded SQLite
// default one generated once and kept beside the database.
func secret(cfg config.Config) ([]byte, error) {
	if cfg.Secret != "" {
		return []byte(cfg.Secret), nil
	}
	if !strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
		return nil, &config.Error{Var: "KYCGATE_SECRET", Problem: "is required"}
	}
	dir := filepath.Dir(store.SQLitePath(cfg.DatabaseURL))
	path := filepath.Join(dir, "secret")
	read := func() ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read secret: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("secret file %s is too short; delete it or set KYCGATE_SECRET", path)
		}
		return []byte(s), nil
	}
	if b, err := read(); !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	var b [32]byte
	rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	// Two processes may start together on a fresh folder. The secret is
	// written whole to a temporary file (0600) and then hard-linked into
	// place, so the secret file never exists half-written, and the link
	// fails if another process linked its secret first: then we use theirs.
	tmp, err := os.CreateTemp(dir, ".secret-*")
	if err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(s + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return read()
	} else if err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable; best effort
		d.Sync()
		d.Close()
	}
	return []byte(s), nil
}

// openService opens the store and builds a service for admin commands,
// which need the secret (API keys are keyed hashes) but no mail or Didit.
func openService(ctx context.Context, getenv func(string) string) (*kyc.Service, *store.DB, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, err
	}
	sec, err := secret(cfg)
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, nil, err
	}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMail{}}, kyc.Config{Secret: sec})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return svc, db, nil
}

type noMail struct{}

func (noMail) SendCode(context.Context, kyc.CodeMail) error {
	return errors.New("admin commands send no mail")
}

func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	db, err := store.OpenNoMigrate(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
