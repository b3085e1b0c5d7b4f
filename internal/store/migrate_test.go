package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// Migration 6 carries a database of the earlier linking rule over: every
// enrollment keeps the lookups it had, a pending email stays pending (and a
// live code mailed to it stays usable, for that link), an OTP proof that
// never made the address the person's goes back to pending, and nothing
// else is lost.
func TestMigrationCarriesLinksOver(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, exec := legacyDB(t, e.URL)
			const w1, w2, w3 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"
			exec(`INSERT INTO tenants (id, name, kyc_enabled, monthly_quota, rate_limit_per_minute, created_at)
				VALUES ('ta', 'A', TRUE, 0, 0, 1), ('tb', 'B', TRUE, 0, 0, 1)`)
			exec(`INSERT INTO persons (id, email, wallet, wallet_chain, created_at) VALUES
				('ps_ann', 'ann@example.com', NULL, NULL, 1),
				('ps_bob', 'bob@example.com', $1, 'evm', 1),
				('ps_w2', NULL, $2, 'evm', 1),
				('ps_w3', NULL, $3, 'solana', 1)`, w1, w2, w3)
			exec(`INSERT INTO enrollments (tenant_id, person_id, email_verified, wallet_verified, pending_email, created_at) VALUES
				('ta', 'ps_ann', TRUE, FALSE, NULL, 1),
				('tb', 'ps_ann', FALSE, FALSE, NULL, 2),
				('ta', 'ps_bob', TRUE, TRUE, NULL, 3),
				('tb', 'ps_bob', FALSE, TRUE, NULL, 4),
				('ta', 'ps_w2', FALSE, TRUE, 'carol@example.com', 5),
				('ta', 'ps_w3', TRUE, TRUE, 'dan@example.com', 6)`)
			exec(`INSERT INTO otps (tenant_id, subject, code_hash, expires_at, attempts, sent1, gap_from) VALUES
				('ta', 'carol@example.com', 'h-carol', 99, 2, 10, 10),
				('ta', 'ann@example.com', 'h-ann', 99, 0, 20, 20),
				('tb', 'ann@example.com', NULL, 99, 0, 30, NULL)`)
			exec(`INSERT INTO session_claims (person_id, token, claimed_until) VALUES ('ps_ann', 'c', 5), ('ps_gone', 'd', 5)`)

			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}

			for _, c := range []struct {
				tenant, email, wallet string
				want                  kyc.Enrollment
			}{
				{"ta", "ann@example.com", "", kyc.Enrollment{ID: "en_ta_ps_ann", PersonID: "ps_ann", Email: "ann@example.com", EmailVerified: true}},
				{"tb", "ann@example.com", "", kyc.Enrollment{ID: "en_tb_ps_ann", PersonID: "ps_ann", Email: "ann@example.com"}},
				{"ta", "bob@example.com", w1, kyc.Enrollment{ID: "en_ta_ps_bob", PersonID: "ps_bob", Email: "bob@example.com", Wallet: w1, EmailVerified: true}},
				{"tb", "bob@example.com", w1, kyc.Enrollment{ID: "en_tb_ps_bob", PersonID: "ps_bob", Email: "bob@example.com", Wallet: w1}},
				{"ta", "", w2, kyc.Enrollment{ID: "en_ta_ps_w2", PersonID: "ps_w2", Wallet: w2, PendingEmail: "carol@example.com"}},
				// Proven by OTP, never the person's: pending again.
				{"ta", "", w3, kyc.Enrollment{ID: "en_ta_ps_w3", PersonID: "ps_w3", Wallet: w3, PendingEmail: "dan@example.com"}},
			} {
				c.want.TenantID = c.tenant
				for _, by := range [][2]string{{c.email, ""}, {"", c.wallet}} {
					if by[0] == "" && by[1] == "" {
						continue
					}
					got, err := db.FindEnrollment(ctx, c.tenant, by[0], by[1])
					if err != nil || got != c.want {
						t.Errorf("%s by %q: %+v, %v; want %+v", c.tenant, by, got, err, c.want)
					}
				}
			}
			for _, c := range []struct {
				ref  kyc.CodeRef
				hash string
			}{
				// The pending address's live code is now that link's.
				{kyc.CodeRef{TenantID: "ta", Address: "carol@example.com", Wallet: w2}, "h-carol"},
				{kyc.CodeRef{TenantID: "ta", Address: "ann@example.com"}, "h-ann"},
			} {
				if h, res, err := db.CountOTPAttempt(ctx, c.ref, 5, fromMS(50)); err != nil || res != kyc.OTPCounted || h != c.hash {
					t.Errorf("code %+v: %q, %v, %v; want %q counted", c.ref, h, res, err, c.hash)
				}
			}
			var attempts int
			if err := db.w.QueryRowContext(ctx, `SELECT attempts FROM otp_codes WHERE address = 'carol@example.com'`).Scan(&attempts); err != nil || attempts != 3 {
				t.Errorf("carol's code: %d attempts, %v; want its 2 and the one just counted", attempts, err)
			}
			// The send history stays with the address.
			for _, c := range []struct {
				tenant, address string
				sent1           int64
				gap             sql.NullInt64
			}{
				{"ta", "carol@example.com", 10, sql.NullInt64{Int64: 10, Valid: true}},
				{"tb", "ann@example.com", 30, sql.NullInt64{}},
			} {
				var sent1 int64
				var gap sql.NullInt64
				if err := db.w.QueryRowContext(ctx, `SELECT sent1, gap_from FROM otp_sends WHERE tenant_id = $1 AND address = $2`,
					c.tenant, c.address).Scan(&sent1, &gap); err != nil || sent1 != c.sent1 || gap != c.gap {
					t.Errorf("sends to %s at %s: %d %v, %v; want %d %v", c.address, c.tenant, sent1, gap, err, c.sent1, c.gap)
				}
			}
			var claims int
			if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM session_claims WHERE person_id = 'ps_ann'`).Scan(&claims); err != nil || claims != 1 {
				t.Errorf("ann's claim: %d, %v; want it kept", claims, err)
			}
			if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM session_claims`).Scan(&claims); err != nil || claims != 1 {
				t.Errorf("%d claims, %v; want the one of a person that does not exist dropped", claims, err)
			}
		})
	}
}

// legacyDB is a database migrated up to version 5 (the earlier linking
// rule), and a function that runs SQL on it.
func legacyDB(t *testing.T, url string) (*DB, func(q string, args ...any)) {
	t.Helper()
	db, err := OpenNoMigrate(t.Context(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.migrate(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	return db, func(q string, args ...any) {
		t.Helper()
		if _, err := db.w.ExecContext(t.Context(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

type noMail struct{}

func (noMail) SendCode(context.Context, kyc.CodeMail) error { return nil }

// A code mailed before the upgrade to an address then only pending on a
// wallet, while another person had the address: under the earlier rule it
// could give the wallet nothing of that person's. After the upgrade it must
// not complete the link either (which would merge the two and hand the
// wallet the person's approval on a mail that never named it): it is gone.
func TestMigrationDropsCodesThatWouldLinkAnOwnedAddress(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, exec := legacyDB(t, e.URL)
			const w, victim = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "victim@example.com"
			secret := []byte(strings.Repeat("k", 32))
			svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMail{}}, kyc.Config{Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			exec(`INSERT INTO tenants (id, name, kyc_enabled, monthly_quota, rate_limit_per_minute, created_at)
				VALUES ('ta', 'A', TRUE, 0, 0, 1), ('tb', 'B', TRUE, 0, 0, 1)`)
			exec(`INSERT INTO persons (id, email, wallet, wallet_chain, created_at) VALUES
				('ps_victim', $1, NULL, NULL, 1), ('ps_w', NULL, $2, 'evm', 1)`, victim, w)
			exec(`INSERT INTO enrollments (tenant_id, person_id, email_verified, wallet_verified, pending_email, created_at) VALUES
				('tb', 'ps_victim', TRUE, FALSE, NULL, 1), ('ta', 'ps_w', FALSE, TRUE, $1, 2)`, victim)
			exec(`INSERT INTO kyc_sessions (id, person_id, tenant_id, url, status, ip_info, blocklisted, decision,
				event_at, created_at, updated_at, checked_at, watch, version)
				VALUES ('sess-victim', 'ps_victim', 'tb', 'https://v/1', 'Approved', '[]', FALSE, NULL, 1, 1, 1, 1, FALSE, 0)`)
			hash := kycHash(t, secret, "ta", victim, "135790")
			exec(`INSERT INTO otps (tenant_id, subject, code_hash, expires_at, attempts, sent1, gap_from) VALUES
				('ta', $1, $2, $3, 0, $4, $4)`, victim, hash, now.Add(9*time.Minute).UnixMilli(), now.Add(-time.Minute).UnixMilli())
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			ta := kyc.Tenant{ID: "ta", Name: "A", KYCEnabled: true}
			for _, wallet := range []string{"", w} {
				if err := svc.VerifyOTP(ctx, ta, kyc.OTPInput{Email: victim, Code: "135790", Wallet: wallet}); err == nil {
					t.Errorf("the pre-upgrade code (wallet %q) was accepted", wallet)
				}
			}
			if st, err := svc.Status(ctx, ta, kyc.Identity{Wallet: w}); err == nil {
				t.Fatalf("the wallet shows session %s (%s)", st.Session.ID, st.Status)
			}
			var n int
			if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM otp_codes`).Scan(&n); err != nil || n != 0 {
				t.Errorf("%d codes left, %v; want the pre-upgrade one dropped", n, err)
			}
		})
	}
}

// kycHash is the keyed code hash the service stores (HMAC-SHA256 of the
// purpose and the length-prefixed parts), for a code stored by hand.
func kycHash(t *testing.T, secret []byte, tenantID, email, code string) string {
	t.Helper()
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("otp"))
	for _, p := range []string{tenantID, email, code} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestMigrationChecksums: every applied migration is recorded with its
// file's checksum; a database from before checksums adopts them; and a
// migration file edited after it ran stops start-up with a message naming
// it, instead of leaving databases silently different.
func TestMigrationChecksums(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := t.Context()
			db, exec := legacyDB(t, e.URL)
			// As a build before checksums left it: no column at all.
			exec(`ALTER TABLE schema_migrations DROP COLUMN checksum`)
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("migrating a database from before checksums: %v", err)
			}
			files, err := migrationFiles(db.dialect)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE checksum IS NOT NULL`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != len(files) {
				t.Fatalf("%d migrations carry a checksum, want all %d", n, len(files))
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("migrating again: %v", err)
			}
			// The text that ran as version 2 was not the file's text now.
			exec(`UPDATE schema_migrations SET checksum = $1 WHERE version = 2`, strings.Repeat("0", 64))
			err = db.Migrate(ctx)
			if err == nil || !strings.Contains(err.Error(), files[1].name) || !strings.Contains(err.Error(), "changed after it ran") {
				t.Fatalf("Migrate with an edited migration 2 = %v; want it refused, naming %s", err, files[1].name)
			}
		})
	}
}

// Migration 14 moves the unsealed audit entries into audit_pending under
// the ids they had: they list as before, seal into the chain after the
// sealed ones, and entries appended after the upgrade get ids above them
// all.
func TestMigrationMovesUnsealedAudit(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := t.Context()
			db, err := OpenNoMigrate(ctx, e.URL, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.migrate(ctx, 13); err != nil {
				t.Fatal(err)
			}
			if _, err := db.w.ExecContext(ctx, `INSERT INTO audit_log (tenant_id, at, actor, action, result, request_id) VALUES
					('ta', 1, 'cli', 'a', 'ok', 'r1'), ('ta', 2, 'cli', 'a', 'ok', 'r2'), ('ta', 3, 'cli', 'a', 'ok', 'r3'),
					('ta', 4, 'cli', 'a', 'ok', 'r4')`); err != nil {
				t.Fatal(err)
			}
			// r1 and r2 sealed before the upgrade (as its sealer did, in
			// place), r3 and r4 not.
			var prev kyc.AuditEntry
			for id := int64(1); id <= 2; id++ {
				e, err := scanAudit(db.w.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE id = $1`, id))
				if err != nil {
					t.Fatal(err)
				}
				e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
				e.Hash = kyc.AuditHash(e)
				if _, err := db.w.ExecContext(ctx, `UPDATE audit_log SET seq = $2, prev_hash = $3, hash = $4 WHERE id = $1`,
					e.ID, e.Seq, e.PrevHash, e.Hash); err != nil {
					t.Fatal(err)
				}
				prev = e
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if chains, err := db.AuditChains(ctx); err != nil || fmt.Sprint(chains) != "[{ta 2}]" {
				t.Fatalf("chains after the upgrade: %v, %v", chains, err)
			}
			if err := db.AppendAudit(ctx, kyc.AuditEntry{TenantID: "ta", At: time.UnixMilli(5), Actor: "cli", Action: "a", Result: "ok", RequestID: "r5"}); err != nil {
				t.Fatal(err)
			}
			if n, err := db.SealAudit(ctx, 10, kyc.AuditHash); err != nil || n != 3 {
				t.Fatalf("sealing after the upgrade: %d, %v", n, err)
			}
			es, err := db.ListAudit(ctx, kyc.AuditFilter{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, e := range es {
				got = append(got, fmt.Sprintf("%s:%d:%d", e.RequestID, e.ID, e.Seq))
				if i+1 < len(es) && es[i+1].Hash != e.PrevHash {
					t.Errorf("%s does not link to %s", e.RequestID, es[i+1].RequestID)
				}
				if e.Hash != kyc.AuditHash(e) {
					t.Errorf("%s: hash %s, want %s", e.RequestID, e.Hash, kyc.AuditHash(e))
				}
			}
			if fmt.Sprint(got) != "[r5:5:5 r4:4:4 r3:3:3 r2:2:2 r1:1:1]" {
				t.Errorf("log after the upgrade (request:id:seq): %v", got)
			}
		})
	}
}
