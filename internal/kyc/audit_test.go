package kyc_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// auditEnv is a service on a SQLite file the test can also write behind
// its back, with a moved clock and an audit retention of 30 days.
type auditEnv struct {
	svc    *kyc.Service
	clock  *testClock
	mail   *otpMail
	raw    *sql.DB
	tenant kyc.Tenant
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kyc.db")
	db, err := store.Open(ctx, "sqlite:"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	e := &auditEnv{clock: &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, mail: &otpMail{codes: map[string]string{}}, raw: raw}
	e.svc, err = kyc.NewService(kyc.Deps{Store: db, Mailer: e.mail, Clock: e.clock},
		kyc.Config{Secret: []byte(strings.Repeat("s", 32)), AuditRetention: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cli := kyc.WithActor(ctx, kyc.Actor{Kind: kyc.ActorCLI})
	if e.tenant, _, err = e.svc.CreateTenant(cli, kyc.NewTenant{Name: "T"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// verifyEmail runs prepare, send-otp and verify-otp for email as the
// partner's key keyID, with request ids rq-1, rq-2, rq-3.
func (e *auditEnv) verifyEmail(t *testing.T, keyID, email string) {
	t.Helper()
	as := func(rq string) context.Context {
		return kyc.WithActorRequest(context.Background(), kyc.Actor{Kind: kyc.ActorAPIKey, ID: keyID}, rq)
	}
	if _, err := e.svc.Prepare(as("rq-1"), e.tenant, email); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SendOTP(as("rq-2"), e.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.VerifyOTP(as("rq-3"), e.tenant, kyc.OTPInput{Email: email, Code: e.mail.last(mustNorm(t, email))}); err != nil {
		t.Fatal(err)
	}
}

func TestAuditRecordsChanges(t *testing.T) {
	t.Parallel()
	e := newAuditEnv(t)
	ctx := context.Background()
	const email = "Audit.Person@Example.com"
	as := func(rq string) context.Context {
		return kyc.WithActorRequest(ctx, kyc.Actor{Kind: kyc.ActorAPIKey, ID: "key_1"}, rq)
	}
	if _, err := e.svc.Prepare(as("rq-1"), e.tenant, email); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SendOTP(as("rq-2"), e.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	// A wrong code counts an attempt: logged with its refusal.
	if err := e.svc.VerifyOTP(as("rq-3"), e.tenant, kyc.OTPInput{Email: email, Code: "000000"}); code(err) != kyc.CodeOTPInvalid {
		t.Fatalf("wrong code: %v", err)
	}
	if err := e.svc.VerifyOTP(as("rq-4"), e.tenant, kyc.OTPInput{Email: email, Code: e.mail.last(mustNorm(t, email))}); err != nil {
		t.Fatal(err)
	}
	// A used code counts nothing: nothing changed, nothing logged.
	if err := e.svc.VerifyOTP(as("rq-5"), e.tenant, kyc.OTPInput{Email: email, Code: "000000"}); err == nil {
		t.Fatal("a used code verified again")
	}
	got, err := e.svc.AuditLog(ctx, kyc.AuditFilter{TenantID: e.tenant.ID})
	if err != nil {
		t.Fatal(err)
	}
	subject := e.svc.AuditSubject("audit.person@example.com")
	want := []struct{ actor, action, subject, result, rq string }{
		{"api_key:key_1", kyc.AuditEmailVerify, subject, "ok", "rq-4"},
		{"api_key:key_1", kyc.AuditEmailVerify, subject, kyc.CodeOTPInvalid, "rq-3"},
		{"api_key:key_1", kyc.AuditEmailCodeSent, subject, "ok", "rq-2"},
		{"api_key:key_1", kyc.AuditEmailPrepared, subject, "ok", "rq-1"},
		{"cli", kyc.AuditKeyAdded, "", "ok", ""},
		{"cli", kyc.AuditTenantCreated, "", "ok", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Actor != w.actor || g.Action != w.action || g.Result != w.result || g.RequestID != w.rq ||
			(w.subject != "" && g.Subject != w.subject) || g.TenantID != e.tenant.ID {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
		if strings.Contains(strings.ToLower(g.Subject), "example.com") {
			t.Errorf("entry %d names the email: %q", i, g.Subject)
		}
	}
	if !strings.HasPrefix(got[4].Subject, "key:key_") {
		t.Errorf("key entry subject = %q, want key:<id>", got[4].Subject)
	}
	// Filters: an actor's kind, paging.
	page, err := e.svc.AuditLog(ctx, kyc.AuditFilter{Actor: kyc.ActorAPIKey, Limit: 2})
	if err != nil || len(page) != 2 || page[0].RequestID != "rq-4" {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	page, err = e.svc.AuditLog(ctx, kyc.AuditFilter{Actor: kyc.ActorAPIKey, Limit: 2, BeforeID: page[1].ID})
	if err != nil || len(page) != 2 || page[0].RequestID != "rq-2" || page[1].RequestID != "rq-1" {
		t.Fatalf("second page = %+v, %v", page, err)
	}
}

func TestVerifyAuditFindsTampering(t *testing.T) {
	t.Parallel()
	e := newAuditEnv(t)
	ctx := context.Background()
	e.verifyEmail(t, "key_1", "a@example.com")
	e.verifyEmail(t, "key_1", "b@example.com")
	v, err := e.svc.VerifyAudit(ctx, "")
	if err != nil || v.Broken != nil || v.Unsealed != 0 || v.Entries != 8 || v.Tenants != 1 || v.Heads[e.tenant.ID] == "" {
		t.Fatalf("clean log: %+v, %v", v, err)
	}
	entries, err := e.svc.AuditLog(ctx, kyc.AuditFilter{TenantID: e.tenant.ID})
	if err != nil {
		t.Fatal(err)
	}
	victim := entries[3] // b's prepare, seq 5
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := e.raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE audit_log SET result = 'ok-edited' WHERE id = $1`, victim.ID)
	v, err = e.svc.VerifyAudit(ctx, e.tenant.ID)
	if err != nil || v.Broken == nil || v.Broken.ID != victim.ID || !strings.Contains(v.Reason, "changed") {
		t.Fatalf("edited entry %d: %+v, %v", victim.ID, v, err)
	}
	exec(`UPDATE audit_log SET result = $2 WHERE id = $1`, victim.ID, victim.Result)
	if v, err = e.svc.VerifyAudit(ctx, ""); err != nil || v.Broken != nil {
		t.Fatalf("restored: %+v, %v", v, err)
	}
	exec(`DELETE FROM audit_log WHERE id = $1`, victim.ID)
	v, err = e.svc.VerifyAudit(ctx, "")
	if err != nil || v.Broken == nil || v.Broken.ID != entries[2].ID || !strings.Contains(v.Reason, "missing") {
		t.Fatalf("deleted entry %d: %+v, %v", victim.ID, v, err)
	}
}

func TestAuditRetention(t *testing.T) {
	t.Parallel()
	e := newAuditEnv(t)
	ctx := context.Background()
	e.verifyEmail(t, "key_1", "old@example.com")
	e.clock.add(20 * 24 * time.Hour)
	e.verifyEmail(t, "key_1", "new@example.com")
	// Unsealed entries stay whatever their age.
	e.clock.add(15 * 24 * time.Hour)
	if _, err := e.svc.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.log(t)); n != 8 {
		t.Fatalf("%d entries after pruning with unsealed ones; want all 8", n)
	}
	// The five older than 30 days go, sealed; the rest still verifies
	// from the oldest entry left.
	if _, err := e.svc.SealAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	left := e.log(t)
	if len(left) != 3 || left[2].Seq != 6 {
		t.Fatalf("left %+v; want seq 6-8", left)
	}
	if n, err := e.svc.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("pruning again = %d, %v; want nothing", n, err)
	}
	if v, err := e.svc.VerifyAudit(ctx, ""); err != nil || v.Broken != nil || v.Entries != 3 {
		t.Fatalf("after pruning: %+v, %v", v, err)
	}
	// Everything old: the head stays, so the next entry still links.
	e.clock.add(60 * 24 * time.Hour)
	if _, err := e.svc.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if left := e.log(t); len(left) != 1 || left[0].Seq != 8 {
		t.Fatalf("left %+v; want the head alone", left)
	}
	if _, err := e.svc.Challenge(ctx, e.tenant, "0x8ba1f109551bD432803012645Ac136ddd64DBA72", ""); err != nil {
		t.Fatal(err)
	}
	if v, err := e.svc.VerifyAudit(ctx, ""); err != nil || v.Broken != nil || v.Entries != 2 {
		t.Fatalf("after the head alone: %+v, %v", v, err)
	}
}

func (e *auditEnv) log(t *testing.T) []kyc.AuditEntry {
	t.Helper()
	out, err := e.svc.AuditLog(context.Background(), kyc.AuditFilter{TenantID: e.tenant.ID})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditHashCoversEveryField(t *testing.T) {
	t.Parallel()
	base := kyc.AuditEntry{TenantID: "tn", At: time.UnixMilli(1700000000123), Actor: "cli", Action: "a",
		Subject: "s", Result: "ok", RequestID: "r", Seq: 3, PrevHash: "p"}
	h := kyc.AuditHash(base)
	for name, change := range map[string]func(*kyc.AuditEntry){
		"tenant": func(e *kyc.AuditEntry) { e.TenantID = "tn2" }, "at": func(e *kyc.AuditEntry) { e.At = e.At.Add(time.Millisecond) },
		"actor": func(e *kyc.AuditEntry) { e.Actor = "didit" }, "action": func(e *kyc.AuditEntry) { e.Action = "b" },
		"subject": func(e *kyc.AuditEntry) { e.Subject = "t" }, "result": func(e *kyc.AuditEntry) { e.Result = "no" },
		"request": func(e *kyc.AuditEntry) { e.RequestID = "q" }, "seq": func(e *kyc.AuditEntry) { e.Seq = 4 },
		"prev": func(e *kyc.AuditEntry) { e.PrevHash = "q" },
		// Length prefixes: moving a byte between fields changes the hash.
		"boundary": func(e *kyc.AuditEntry) { e.Action, e.Subject = "as", "" },
	} {
		e := base
		change(&e)
		if kyc.AuditHash(e) == h {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func mustNorm(t *testing.T, email string) string {
	t.Helper()
	n, ok := kyc.NormalizeEmail(email)
	if !ok {
		t.Fatalf("bad email %q", email)
	}
	return n
}
