package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/kycgate/kycgate/internal/config"
	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// run is the whole program, parameterised on everything it touches so tests
// can start it as a user would.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, args, cliIO{getenv: getenv, stdout: stdout, stderr: stderr})
}

const serveHelp = `Configuration comes from KYCGATE_* environment variables (the README's
configuration table lists them all). With none set, kycgate runs its
development defaults on http://127.0.0.1:8080: SQLite in ./data, the
built-in Didit simulator and a development mailbox.`

func serveCmd(_ *flag.FlagSet, cio cliIO) func(context.Context) error {
	return func(ctx context.Context) error { return serve(ctx, cio.getenv, cio.stdout, cio.stderr) }
}

func migrateCmd(_ *flag.FlagSet, cio cliIO) func(context.Context) error {
	return func(ctx context.Context) error { return migrate(ctx, cio.getenv, cio.stdout) }
}

const diditSimHelp = `A stand-alone Didit simulator: Didit's session and decision API, its
hosted page (pick the outcome), and webhooks signed as Didit signs them.
Configured by environment variables:

  DIDITSIM_ADDR                listen address (default 127.0.0.1:8090)
  DIDITSIM_API_KEY             required: the x-api-key clients must send
  DIDITSIM_BASE_URL            required: the simulator's public URL, e.g. http://127.0.0.1:8090
  DIDITSIM_WEBHOOK_URL         where to send webhooks, e.g. http://127.0.0.1:8080/webhooks/didit
  DIDITSIM_WEBHOOK_SECRET      required with DIDITSIM_WEBHOOK_URL: the signing secret
  DIDITSIM_WEBHOOK_VERSION     v3 (default) or v2
  DIDITSIM_WORKFLOW_ID         accepted workflow UUIDs, comma-separated (default: any)
  DIDITSIM_RETRY_SCALE         scales Didit's 1 min / 4 min webhook retries (1 = real, 0 = at once)
  DIDITSIM_SANDBOX_KEY         a second API key whose sessions are "sandbox"
  DIDITSIM_NOT_STARTED_WEBHOOK when to send "Not Started": create (default) or open

Point kycgate at it with KYCGATE_DIDIT_URL, KYCGATE_DIDIT_API_KEY and
KYCGATE_DIDIT_WEBHOOK_SECRET. kycgate serve in development mode runs one
itself, under /_didit/, so this command is for setups that want it apart.`

func diditSimCmd(_ *flag.FlagSet, cio cliIO) func(context.Context) error {
	return func(ctx context.Context) error { return diditSim(ctx, cio.getenv, cio.stderr) }
}

func versionCmd(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	asJSON := fs.Bool("json", false, "print JSON")
	return func(context.Context) error {
		v := buildVersion()
		if *asJSON {
			return json.NewEncoder(cio.stdout).Encode(v)
		}
		_, err := fmt.Fprintln(cio.stdout, v)
		return err
	}
}

// version is what the binary knows of its build.
type version struct {
	Module   string `json:"version"` // the module version, "(devel)" for a source build
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
}

func buildVersion() version {
	v := version{Module: "(unknown)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Module = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// short is the version in a few characters, for the development landing
// page: the module version, else the commit (12 characters, "+dirty" for
// a modified tree), else "devel".
func (v version) short() string {
	switch {
	case v.Module == "(unknown)":
		return "unknown"
	case v.Module != "" && v.Module != "(devel)":
		return v.Module
	case v.Commit != "":
		rev := v.Commit[:min(12, len(v.Commit))]
		if v.Modified {
			rev += "+dirty"
		}
		return "devel " + rev
	}
	return "devel"
}

func (v version) String() string {
	s := "kycgate " + v.Module
	if v.Commit != "" {
		s += " commit " + v.Commit
		if v.Time != "" {
			s += " (" + v.Time + ")"
		}
		if v.Modified {
			s += " with uncommitted changes"
		}
	}
	return s + ", " + v.Go
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// secretSource says where the server secret came from: the variable, a
// file beside the database, or a file this call just created.
type secretSource struct {
	path      string // "" when KYCGATE_SECRET gave it
	generated bool
}

// secret returns the configured server secret, or for the embedded SQLite
// default one generated once and kept beside the database.
func secret(cfg config.Config) ([]byte, secretSource, error) {
	if cfg.Secret != "" {
		return []byte(cfg.Secret), secretSource{}, nil
	}
	if !strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
		return nil, secretSource{}, &config.Error{Var: "KYCGATE_SECRET", Problem: "is required"}
	}
	dir := filepath.Dir(store.SQLitePath(cfg.DatabaseURL))
	src := secretSource{path: filepath.Join(dir, "secret")}
	b, generated, err := secretFile(dir, src.path)
	src.generated = generated
	return b, src, err
}

// previousSecrets are the secrets KYCGATE_SECRET_PREVIOUS lists, less the
// current one: listing it too (a step of the rotation done early on one
// replica) would only cost a hash per miss.
func previousSecrets(cfg config.Config, current []byte) [][]byte {
	var out [][]byte
	for _, p := range cfg.PreviousSecrets {
		if p != string(current) {
			out = append(out, []byte(p))
		}
	}
	return out
}

// secretFile reads the secret at path, creating it first if there is none.
func secretFile(dir, path string) ([]byte, bool, error) {
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
		return b, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data folder: %w", err)
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
		return nil, false, fmt.Errorf("write secret: %w", err)
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
		return nil, false, fmt.Errorf("write secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		b, err := read()
		return b, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("write secret: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable; best effort
		d.Sync()
		d.Close()
	}
	return []byte(s), true, nil
}

// openService opens the store and builds a service for admin commands,
// which need the secret (API keys are keyed hashes) but no mail or Didit.
func openService(ctx context.Context, getenv func(string) string) (*kyc.Service, *store.DB, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, err
	}
	sec, _, err := secret(cfg)
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, nil, err
	}
	// Real Didit (not the server's built-in simulator, which only the
	// server reaches): an erasure deletes the person's sessions there.
	var provider kyc.Provider
	if !cfg.Embedded() {
		client, err := didit.NewClient(didit.ClientConfig{BaseURL: cfg.DiditURL, APIKey: cfg.DiditAPIKey,
			WorkflowID: cfg.DiditWorkflowID, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("didit client: %w", err)
		}
		provider = client
	}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMail{}, Provider: provider},
		kyc.Config{Secret: sec, PreviousSecrets: previousSecrets(cfg, sec)})
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
