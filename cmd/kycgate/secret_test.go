package main

// Regression test (security review): two kycgate processes starting on a
// fresh embedded data folder (e.g. `kycgate migrate` and `kycgate serve`, or
// `tenant create` during the first boot) raced on the generated secret: the
// loser could read the file between its O_EXCL create and the write, find it
// empty and refuse to start. The secret is now written to a temporary file
// and hard-linked into place, so the file is never seen partially written
// and every interleaving ends with all processes on one secret: the test
// cannot fail by chance on fixed code.

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kycgate/kycgate/internal/config"
)

func TestSecretFirstBootRace(t *testing.T) {
	const rounds, procs = 100, 4
	for round := range rounds {
		dir := filepath.Join(t.TempDir(), "data")
		cfg := config.Config{DatabaseURL: "sqlite:" + filepath.Join(dir, "kycgate.db")}
		path := filepath.Join(dir, "secret")

		// A reader polls the secret file while the processes start: whenever
		// it exists it must hold a whole secret.
		var stop atomic.Bool
		var partial atomic.Value
		done := make(chan struct{})
		go func() {
			defer close(done)
			for !stop.Load() {
				if b, err := os.ReadFile(path); err == nil && !wholeSecret(string(b)) {
					partial.Store(string(b))
				}
			}
		}()
		var wg sync.WaitGroup
		errs := make([]error, procs)
		secrets := make([]string, procs)
		for i := range procs {
			wg.Go(func() {
				b, _, err := secret(cfg)
				errs[i], secrets[i] = err, string(b)
			})
		}
		wg.Wait()
		stop.Store(true)
		<-done

		if p := partial.Load(); p != nil {
			t.Fatalf("round %d: the secret file was seen partially written: %q", round, p)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: process %d failed to start: %v", round, i, err)
			}
			if secrets[i] != secrets[0] {
				t.Fatalf("round %d: processes use different secrets", round)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil || strings.TrimSpace(string(b)) != secrets[0] {
			t.Fatalf("round %d: secret file holds %q (%v), processes use %q", round, b, err, secrets[0])
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("round %d: secret file mode %v (%v), want 0600", round, fi.Mode(), err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("round %d: data folder holds %v, want only the secret", round, names)
		}
	}
}

func wholeSecret(s string) bool {
	s, ok := strings.CutSuffix(s, "\n")
	if _, err := hex.DecodeString(s); err != nil || !ok || len(s) != 64 {
		return false
	}
	return true
}

func TestSecretFile(t *testing.T) {
	newCfg := func(t *testing.T) (config.Config, string) {
		dir := t.TempDir()
		return config.Config{DatabaseURL: "sqlite:" + filepath.Join(dir, "kycgate.db")}, filepath.Join(dir, "secret")
	}
	t.Run("configured", func(t *testing.T) {
		if b, src, err := secret(config.Config{Secret: "s3cret", DatabaseURL: "postgres://x"}); err != nil || string(b) != "s3cret" || src != (secretSource{}) {
			t.Fatalf("secret = %q, %+v, %v", b, src, err)
		}
		if _, _, err := secret(config.Config{DatabaseURL: "postgres://x"}); err == nil {
			t.Fatal("no secret for postgres accepted")
		}
	})
	t.Run("generated once", func(t *testing.T) {
		cfg, path := newCfg(t)
		a, src, err := secret(cfg)
		if err != nil || !wholeSecret(string(a)+"\n") || src != (secretSource{path: path, generated: true}) {
			t.Fatalf("secret = %q, %+v, %v", a, src, err)
		}
		b, src, err := secret(cfg)
		if err != nil || string(b) != string(a) || src != (secretSource{path: path}) {
			t.Fatalf("second boot: %q, %+v, %v; first %q", b, src, err, a)
		}
	})
	t.Run("start-up says so", func(t *testing.T) {
		env := newEnv(t, newMailbox(t).srv.URL())
		if env["KYCGATE_SECRET"] != "" {
			t.Skip("this engine's tests configure the secret")
		}
		in := start(t, env)
		if !strings.Contains(in.logs.String(), "generated a server secret") {
			t.Fatalf("first start-up log does not say the secret was generated:\n%s", in.logs)
		}
		in.restart()
		if l := in.logs.String(); strings.Contains(l, "generated a server secret") || !strings.Contains(l, "server secret read from its file") {
			t.Fatalf("second start-up log:\n%s", l)
		}
	})
	t.Run("existing", func(t *testing.T) {
		cfg, path := newCfg(t)
		want := strings.Repeat("ab", 20)
		os.WriteFile(path, []byte(" "+want+"\n"), 0o600)
		if b, _, err := secret(cfg); err != nil || string(b) != want {
			t.Fatalf("secret = %q, %v", b, err)
		}
	})
	t.Run("too short", func(t *testing.T) {
		cfg, path := newCfg(t)
		os.WriteFile(path, []byte("short\n"), 0o600)
		if _, _, err := secret(cfg); err == nil || !strings.Contains(err.Error(), "too short") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("dangling symlink", func(t *testing.T) {
		// Reads as missing, yet cannot be created: an error, not a loop.
		cfg, path := newCfg(t)
		if err := os.Symlink(filepath.Join(filepath.Dir(path), "nowhere"), path); err != nil {
			t.Skip(err)
		}
		if _, _, err := secret(cfg); err == nil {
			t.Fatal("accepted")
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("temporary file left behind: %d entries", len(entries))
		}
	})
}
