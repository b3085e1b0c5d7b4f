package main

// The audit log end to end: the email path and a Didit approval through a
// real server, then `kycgate audit list` and `kycgate audit verify` as an
// operator runs them, and rows tampered with behind kycgate's back, on
// the engine the suite runs on (scripts/test runs both).

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/store"
)

// rawDB opens kycgate's database directly, as someone with access to it
// but not to kycgate would.
func rawDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if strings.HasPrefix(url, "sqlite:") {
		db, err = sql.Open("sqlite", "file:"+store.SQLitePath(url)+"?_pragma=busy_timeout(10000)")
	} else {
		db, err = sql.Open("pgx", url)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func auditEntries(t *testing.T, in *instance, args ...string) []auditJSON {
	t.Helper()
	out, err := in.cli(append([]string{"audit", "list", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("audit list: %v", err)
	}
	var es []auditJSON
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("audit list --json printed %q: %v", out, err)
	}
	return es
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	tenantID, key := r.in.tenant("Audited", "--rate-limit-per-minute", "0")
	out, err := r.in.cli("tenant", "key", "list", "--tenant", tenantID, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var keys []struct {
		ID string `json:"key_id"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("key list %q: %v", out, err)
	}
	const email = "audit.person@example.com"
	r.in.verifyEmail(r.mb, key, email)
	c := r.newSession(t, diditCreatePath, key, email)
	r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetApproved})

	es := auditEntries(t, r.in, "--tenant", tenantID)
	byAction := map[string]auditJSON{}
	for _, e := range es {
		if _, seen := byAction[e.Action]; !seen || e.Action == "session.status_changed" && e.Result == "Approved" {
			byAction[e.Action] = e
		}
	}
	partner := "api_key:" + keys[0].ID
	for action, actor := range map[string]string{
		"tenant.created": "cli", "api_key.added": "cli",
		"email.prepared": partner, "email.code_sent": partner, "email.verify": partner,
		"session.created": partner, "session.status_changed": "didit",
	} {
		e, ok := byAction[action]
		if !ok {
			t.Errorf("no %s entry in %+v", action, es)
			continue
		}
		if e.Actor != actor || e.TenantID != tenantID {
			t.Errorf("%s: %+v, want actor %s", action, e, actor)
		}
		if strings.HasPrefix(actor, "api_key:") && (e.RequestID == "" || e.Result != "ok") {
			t.Errorf("%s: %+v, want a request id and ok", action, e)
		}
	}
	if e := byAction["session.status_changed"]; e.Result != "Approved" || e.Subject != "session:"+c.Session.SessionID {
		t.Errorf("approval entry %+v", e)
	}
	if e := byAction["email.verify"]; len(e.Subject) != 64 {
		t.Errorf("email subject %q, want a keyed hash", e.Subject)
	}
	// By person: the address as a person would type it finds their
	// entries (prepared, code sent, verified; the session's are under
	// session:<id>), and only theirs.
	mine := auditEntries(t, r.in, "--email", " Audit.Person@EXAMPLE.com")
	if len(mine) != 3 {
		t.Errorf("--email: %d entries, want 3: %+v", len(mine), mine)
	}
	for _, e := range mine {
		if e.Subject != byAction["email.verify"].Subject {
			t.Errorf("--email found %+v", e)
		}
	}
	if _, err := r.in.cli("audit", "list", "--email", "not-an-email"); err == nil {
		t.Error("audit list --email not-an-email succeeded")
	}
	// Filters: the partner's key, Didit.
	if got := auditEntries(t, r.in, "--actor", partner); len(got) != 4 {
		t.Errorf("--actor %s: %d entries, want 4", partner, len(got))
	}
	if got := auditEntries(t, r.in, "--actor", "didit", "--action", "session.status_changed", "--limit", "1"); len(got) != 1 || got[0].Actor != "didit" {
		t.Errorf("--actor didit: %+v", got)
	}

	// The email is nowhere: not in what the CLI prints, not in the rows.
	text, err := r.in.cli("audit", "list")
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, r.in.env["KYCGATE_DATABASE_URL"])
	rows, err := db.Query(`SELECT tenant_id, actor, action, subject, result, request_id, prev_hash, hash FROM audit_log
		UNION ALL SELECT tenant_id, actor, action, subject, result, request_id, '', '' FROM audit_pending`)
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for rows.Next() {
		f := make([]string, 8)
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]); err != nil {
			t.Fatal(err)
		}
		dump.WriteString(strings.Join(f, " ") + "\n")
	}
	rows.Close()
	for what, s := range map[string]string{"audit list": text, "audit list --json": fmt.Sprint(es), "audit rows": dump.String()} {
		if strings.Contains(strings.ToLower(s), "audit.person") {
			t.Errorf("%s names the email:\n%s", what, s)
		}
	}

	verifyAuditTampering(t, r.in, db, tenantID)
}

// verifyAuditTampering checks a clean chain verifies, then that an edited
// row and a deleted one are each named by `kycgate audit verify`.
func verifyAuditTampering(t *testing.T, in *instance, db *sql.DB, tenantID string) {
	if out, err := in.cli("audit", "verify"); err != nil || !strings.Contains(out, "every chain holds") {
		t.Fatalf("clean log: %q, %v", out, err)
	}
	es := auditEntries(t, in, "--tenant", tenantID, "--limit", "1000")
	var verify, sent auditJSON
	for _, e := range es {
		switch e.Action {
		case "email.verify":
			verify = e
		case "email.code_sent":
			sent = e
		}
	}
	if verify.Seq == 0 || sent.Seq == 0 {
		t.Fatalf("entries not sealed after verify: %+v %+v", verify, sent)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE audit_log SET result = 'refused' WHERE id = $1`, verify.ID)
	out, err := in.cli("audit", "verify", "--tenant", tenantID)
	want := fmt.Sprintf("entry %d (tenant %s, seq %d)", verify.ID, tenantID, verify.Seq)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(out, "BROKEN at "+want) {
		t.Fatalf("edited row: out %q, err %v; want it named: %s", out, err, want)
	}
	out, err = in.cli("audit", "verify", "--json")
	var v struct {
		OK     bool `json:"ok"`
		Broken struct {
			ID     int64  `json:"id"`
			Reason string `json:"reason"`
		} `json:"broken"`
	}
	if err == nil || json.Unmarshal([]byte(out), &v) != nil || v.OK || v.Broken.ID != verify.ID {
		t.Fatalf("edited row, --json: %q, %v", out, err)
	}
	exec(`UPDATE audit_log SET result = $2 WHERE id = $1`, verify.ID, verify.Result)
	if _, err := in.cli("audit", "verify"); err != nil {
		t.Fatalf("restored row: %v", err)
	}
	// A deleted entry: the one after it no longer follows its predecessor.
	exec(`DELETE FROM audit_log WHERE id = $1`, sent.ID)
	_, err = in.cli("audit", "verify")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("seq %d)", sent.Seq+1)) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("deleted row seq %d: %v", sent.Seq, err)
	}
}
