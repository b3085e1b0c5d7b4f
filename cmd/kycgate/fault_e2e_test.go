package main

// Faults caused for real: a full filesystem under the database.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of size bytes for the test, or skips saying
// why it cannot (not root, no mount permission).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full filesystem needs a tmpfs mount, which needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the filesystem has no room left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	for _, n := range []int{4096, 512, 1} { // the last partial blocks too
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
}

// TestFullDisk: with the database's filesystem full, writes answer their
// documented 500, /readyz answers 503 (a load balancer stops sending
// traffic here), and both recover by themselves once space is free.
func TestFullDisk(t *testing.T) {
	if e := os.Getenv("KYCGATE_TEST_ENGINE"); e != "" && e != "sqlite" {
		t.Skip("the full disk is SQLite's: PostgreSQL's data directory is not ours to fill")
	}
	dir := smallDisk(t, 8<<20)
	mb := newMailbox(t)
	env := newEnv(t, mb.srv.URL())
	env["KYCGATE_DATABASE_URL"] = "sqlite:" + filepath.Join(dir, "kycgate.db")
	in := start(t, env)
	_, key := in.tenant("Full", "--rate-limit-per-minute", "0") // the writes that fill the disk come fast
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": "before@example.com"}), 201, "user_prepared")
	if r := in.call("GET", "/readyz", "", nil); r.Code != 200 {
		t.Fatalf("/readyz with room: %d %s", r.Code, r.Raw)
	}

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	// SQLite may still fit a few writes in its log's free pages: write
	// until the disk says no.
	failed := false
	for i := range 5000 {
		r := in.call("POST", "/kyc/prepare", key, map[string]string{"email": fmt.Sprintf("full%d-%s@example.com", i, strings.Repeat("x", 40))})
		if r.Code == 500 {
			expect(t, r, 500, "server_failed")
			failed = true
			break
		}
		expect(t, r, 201, "user_prepared")
	}
	if !failed {
		t.Fatal("5000 registrations on a full disk all succeeded")
	}
	if r := in.call("GET", "/readyz", "", nil); r.Code != 503 {
		t.Fatalf("/readyz while writes fail: %d %s, want 503", r.Code, r.Raw)
	}
	if r := in.call("GET", "/healthz", "", nil); r.Code != 200 {
		t.Fatalf("/healthz while writes fail: %d %s (the process is alive)", r.Code, r.Raw)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r := in.call("GET", "/readyz", "", nil)
		if r.Code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz a minute after space came back: %d %s", r.Code, r.Raw)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition, not synchronising
	}
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": "after@example.com"}), 201, "user_prepared")
	if !strings.Contains(in.logs.String(), `"not ready"`) {
		t.Error("no \"not ready\" line in the log")
	}
}
