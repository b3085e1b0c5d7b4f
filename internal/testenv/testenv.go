// Package testenv decides what a test does when a tool it needs (node and
// the wallet signers, python3, Chromium) is missing: skip when someone
// runs `go test` by hand, fail under the README's test command, which
// installs those tools and must not pass by skipping what it could not run.
package testenv

import (
	"os"
	"testing"
)

// Complete reports whether the suite must run whole: scripts/test sets
// KYCGATE_TEST_COMPLETE=1, and CI counts too.
func Complete() bool {
	return os.Getenv("KYCGATE_TEST_COMPLETE") == "1" || os.Getenv("CI") != ""
}

// Missing skips t, or fails it under Complete, because what it needs is
// missing; fix says how to get it.
func Missing(t testing.TB, what, fix string) {
	t.Helper()
	if Complete() {
		t.Fatalf("%s is missing (%s); scripts/test installs it, or says why it cannot", what, fix)
	}
	t.Skipf("skipping: %s is missing (%s)", what, fix)
}
