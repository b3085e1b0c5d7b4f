package main

// Issue 16, erasure end to end: kycgate started through run() beside a
// Didit simulator on its own HTTP server, the CLI run against the same
// configuration (so it deletes at the simulator as it would at Didit).

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

type eraseOut struct {
	PersonErased bool     `json:"person_erased"`
	Enrollments  int      `json:"enrollments"`
	Sessions     int      `json:"sessions"`
	DiditDeleted []string `json:"didit_deleted"`
	DiditPending []string `json:"didit_pending"`
	DiditError   string   `json:"didit_error"`
}

// erase runs `person erase` with args and decodes its report; the error
// is the command's (exit 1 while a Didit deletion is pending).
func (r *diditRig) erase(t *testing.T, args ...string) (eraseOut, error) {
	t.Helper()
	out, err := r.in.cli(append([]string{"person", "erase", "--json"}, args...)...)
	var rep eraseOut
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("person erase printed %q (%v)", out, err)
	}
	return rep, err
}

// approvedPerson verifies email at key's tenant and approves their session.
func (r *diditRig) approvedPerson(t *testing.T, key, email string) string {
	t.Helper()
	r.in.verifyEmail(r.mb, key, email)
	c := r.newSession(t, diditCreatePath, key, email)
	r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetApproved})
	r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, simDefaultIP))
	return c.Session.SessionID
}

func (r *diditRig) deletedAtDidit(t *testing.T, id string) bool {
	t.Helper()
	info, err := r.sim.Session(id)
	if err != nil {
		t.Fatalf("simulator session %s: %v", id, err)
	}
	return info.Deleted
}

func TestErasePersonE2E(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	_, key := r.in.tenant("A", "--rate-limit-per-minute", "0")
	const email = "gone@example.com"
	id := r.approvedPerson(t, key, email)
	out, err := r.in.cli("person", "show", "--email", email, "--json")
	if err != nil || !strings.Contains(out, id) || strings.Contains(out, simDefaultIP.IPAddress) {
		t.Fatalf("person show: %s %v", out, err)
	}
	if got := r.in.adminCall("GET", "/admin/v1/people?email="+email, "", ""); got.Code != 200 || !strings.Contains(string(got.Raw), id) {
		t.Fatalf("admin lookup before erasure: %d %s", got.Code, got.Raw)
	}
	stranger := r.in.call("GET", "/kyc/status?email=never@example.com", key, nil)

	rep, err := r.erase(t, "--email", "GONE@example.com")
	if err != nil || !rep.PersonErased || rep.Sessions != 1 || !slices.Equal(rep.DiditDeleted, []string{id}) || len(rep.DiditPending) != 0 {
		t.Fatalf("erase: %+v, %v", rep, err)
	}
	if !r.deletedAtDidit(t, id) || r.sim.Calls("DELETE", "/v3/session/"+id+"/delete/") != 1 {
		t.Fatalf("the simulator did not record one DELETE of %s", id)
	}
	// A stranger to status, prepare and the lookup.
	got := r.in.call("GET", "/kyc/status?email="+email, key, nil)
	if got.Code != stranger.Code || got.Env.Status != stranger.Env.Status || got.Env.Message != stranger.Env.Message {
		t.Fatalf("status after erasure %d %s, a stranger gets %d %s", got.Code, got.Raw, stranger.Code, stranger.Raw)
	}
	expect(t, r.in.call("POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")
	if _, err := r.erase(t, "--email", email); err != nil {
		t.Fatalf("erasing the fresh registration: %v", err)
	}
	if out, err := r.in.cli("person", "show", "--email", email); err == nil || !strings.Contains(err.Error(), "nobody with email") {
		t.Fatalf("person show after erasure: %q, %v", out, err)
	}
	if out, err := r.in.cli("person", "erasures"); err != nil || !strings.Contains(out, "no Didit deletions pending") {
		t.Fatalf("person erasures: %q, %v", out, err)
	}
	if got := r.in.adminCall("GET", "/admin/v1/people?email="+email, "", ""); got.Code != 404 || got.Env.Status != "not_found" {
		t.Fatalf("admin lookup after erasure: %d %s", got.Code, got.Raw)
	}
	// The chain still verifies, records both erasures, and names nobody.
	if out, err := r.in.cli("audit", "verify"); err != nil || !strings.Contains(out, "every chain holds") {
		t.Fatalf("audit verify after erasure: %q, %v", out, err)
	}
	out, err = r.in.cli("audit", "list", "--action", "person.erased", "--json")
	if err != nil || strings.Count(out, `"person.erased"`) != 2 || strings.Contains(strings.ToLower(out), "gone@") {
		t.Fatalf("audit list of erasures: %q, %v", out, err)
	}
}

// TestErasePersonOneTenantE2E: erasing A's enrollment leaves B's status
// answer byte for byte as it was, and the session at Didit.
func TestErasePersonOneTenantE2E(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	tenantA, keyA := r.in.tenant("A", "--rate-limit-per-minute", "0")
	_, keyB := r.in.tenant("B", "--rate-limit-per-minute", "0")
	const email = "shared-erase@example.com"
	id := r.approvedPerson(t, keyA, email)
	r.in.verifyEmail(r.mb, keyB, email)
	before := r.in.call("GET", "/kyc/status?email="+email, keyB, nil)
	expect(t, before, 200, "kyc_status_retrieved")

	rep, err := r.erase(t, "--email", email, "--tenant", tenantA)
	if err != nil || rep.PersonErased || rep.Enrollments != 1 || rep.Sessions != 0 || len(rep.DiditDeleted) != 0 {
		t.Fatalf("erase at A: %+v, %v", rep, err)
	}
	after := r.in.call("GET", "/kyc/status?email="+email, keyB, nil)
	if after.Code != before.Code || string(after.Raw) != string(before.Raw) {
		t.Fatalf("B's status changed:\n%s\n%s", before.Raw, after.Raw)
	}
	expect(t, r.in.call("GET", "/kyc/status?email="+email, keyA, nil), 404, "user_not_found")
	if r.deletedAtDidit(t, id) {
		t.Fatal("a per-tenant erasure deleted a session another tenant shows")
	}
	if _, err := r.in.cli("person", "show", "--email", email, "--tenant", tenantA); err == nil {
		t.Fatal("person show at A found the erased enrollment")
	}
}

// TestErasePersonDiditDownE2E: Didit failing deletes leaves the erasure
// reported pending (exit 1); the server's retry job deletes the session
// once Didit works again.
func TestErasePersonDiditDownE2E(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	_, key := r.in.tenant("A", "--rate-limit-per-minute", "0")
	id := r.approvedPerson(t, key, "down@example.com")
	if err := r.sim.SetFaults(diditsim.Fault{Kind: diditsim.FaultError, Method: "DELETE", PathPrefix: "/v3/session/",
		Status: 503, Count: -1}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.erase(t, "--email", "down@example.com")
	if err == nil || !strings.Contains(err.Error(), "pending") || !strings.Contains(err.Error(), "retries") {
		t.Fatalf("erase with Didit down: %v, want a pending deletion reported", err)
	}
	if !rep.PersonErased || !slices.Equal(rep.DiditPending, []string{id}) || !strings.Contains(rep.DiditError, "503") {
		t.Fatalf("report %+v", rep)
	}
	out, err := r.in.cli("person", "erasures", "--json")
	if err != nil || !strings.Contains(out, id) {
		t.Fatalf("person erasures: %q, %v", out, err)
	}
	if r.deletedAtDidit(t, id) {
		t.Fatal("deleted while Didit failed")
	}
	r.sim.ClearFaults()
	// The server's job retries it when due (10 s after the failure).
	waitUntil(t, 90*time.Second, "the retry job deletes the session", func() bool { return r.deletedAtDidit(t, id) })
	waitUntil(t, 30*time.Second, "the queue empties", func() bool {
		out, err := r.in.cli("person", "erasures", "--json")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out) == "[]"
	})
}

// waitUntil waits until cond holds, looking every 100 ms, and fails t
// after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}
