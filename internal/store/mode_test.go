package store_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kycgate/kycgate/internal/store"
)

// TestSQLiteFileIsOwnerOnly: the database holds code hashes and emails; it
// must not be readable by other users whatever the umask.
func TestSQLiteFileIsOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "kyc.db")
	db, err := store.Open(t.Context(), "sqlite:"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range []string{path, path + "-wal"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", filepath.Base(p), st.Mode().Perm())
		}
	}
}

// TestSQLitePathWithURIChars: '#' and '?' in folder names are part of the
// path, not the end of it.
func TestSQLitePathWithURIChars(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%d")
	path := filepath.Join(dir, "kyc.db")
	db, err := store.Open(t.Context(), "sqlite:"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}
