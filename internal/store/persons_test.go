package store_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

const (
	evmW1 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	evmW2 = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
	solW  = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"
)

func evm(w string) kyc.WalletProof { return kyc.WalletProof{Wallet: w, Chain: "evm"} }

func TestPrepareEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")

		p, e, created, err := db.PrepareEmail(ctx, "ta", "ps_1", "ann@example.com", t0)
		must(t, err)
		if !created {
			t.Error("first PrepareEmail: created = false")
		}
		if d := cmp.Diff(kyc.Person{ID: "ps_1", Email: "ann@example.com"}, p); d != "" {
			t.Errorf("person (-want +got):\n%s", d)
		}
		if d := cmp.Diff(kyc.Enrollment{TenantID: "ta", PersonID: "ps_1"}, e); d != "" {
			t.Errorf("enrollment (-want +got):\n%s", d)
		}

		// Again for the same tenant: same person, not created; the new id is unused.
		p, e, created, err = db.PrepareEmail(ctx, "ta", "ps_2", "ann@example.com", t0)
		must(t, err)
		if created || p.ID != "ps_1" || e.PersonID != "ps_1" {
			t.Errorf("second PrepareEmail = %+v, %+v, created=%v", p, e, created)
		}

		// Another tenant: same person, a new enrollment.
		p, e, created, err = db.PrepareEmail(ctx, "tb", "ps_3", "ann@example.com", t0)
		must(t, err)
		if !created || p.ID != "ps_1" || e.TenantID != "tb" {
			t.Errorf("PrepareEmail for tb = %+v, %+v, created=%v", p, e, created)
		}

		// Verification shows in later calls, for that tenant only.
		f := otpFixture{t: t, db: db, tenant: "ta", person: "ps_1"}
		f.mustSend(t0, "h")
		if ok, err := db.ConsumeOTP(ctx, "ta", "ps_1", "ps_1", "h"); err != nil || !ok {
			t.Fatalf("ConsumeOTP = %v, %v", ok, err)
		}
		_, e, created, err = db.PrepareEmail(ctx, "ta", "ps_4", "ann@example.com", t0)
		must(t, err)
		if created || !e.EmailVerified || e.WalletVerified {
			t.Errorf("after verification, ta sees %+v, created=%v", e, created)
		}
		_, e, _, err = db.PrepareEmail(ctx, "tb", "ps_4", "ann@example.com", t0)
		must(t, err)
		if e.EmailVerified {
			t.Error("ta's verification shows for tb")
		}

		// An email a wallet user named but never proved (pending at ta)
		// belongs to nobody: elsewhere it makes its own person.
		w, _, _, err := db.PrepareWallet(ctx, "ta", "ps_w", evm(evmW1), "bob@example.com", t0)
		must(t, err)
		p, e, created, err = db.PrepareEmail(ctx, "tb", "ps_5", "bob@example.com", t0)
		must(t, err)
		if p.ID == w.ID || p.Email != "bob@example.com" || p.Wallet != "" || !created || e.WalletVerified || e.EmailVerified {
			t.Errorf("PrepareEmail of a pending email = %+v, %+v, created=%v; wallet person %+v", p, e, created, w)
		}
	})
}

func TestPrepareEmailConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		const n = 20
		persons := make([]kyc.Person, n)
		created := make([]bool, n)
		errs := make([]error, n)
		together(n, func(i int) {
			persons[i], _, created[i], errs[i] = db.PrepareEmail(t.Context(), "ta", fmt.Sprint("ps_", i), "ann@example.com", t0)
		})
		noErrors(t, errs)
		nCreated := 0
		for i := range n {
			if persons[i].ID != persons[0].ID {
				t.Errorf("goroutine %d got person %s, goroutine 0 got %s", i, persons[i].ID, persons[0].ID)
			}
			if created[i] {
				nCreated++
			}
		}
		if nCreated != 1 {
			t.Errorf("%d of %d concurrent PrepareEmail created the enrollment, want 1", nCreated, n)
		}
		p, _, err := db.FindEnrollment(t.Context(), "ta", "ann@example.com", "")
		must(t, err)
		if p.ID != persons[0].ID {
			t.Errorf("FindEnrollment finds %s, callers got %s", p.ID, persons[0].ID)
		}
	})
}

func TestFindEnrollment(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		want, _, _, err := db.PrepareWallet(ctx, "ta", "ps_1", kyc.WalletProof{Wallet: solW, Chain: "solana"}, "ann@example.com", t0)
		must(t, err)
		wantE := kyc.Enrollment{TenantID: "ta", PersonID: "ps_1", WalletVerified: true}
		for _, id := range [][2]string{{"ann@example.com", ""}, {"", solW}} {
			p, e, err := db.FindEnrollment(ctx, "ta", id[0], id[1])
			must(t, err)
			if d := cmp.Diff(want, p); d != "" {
				t.Errorf("FindEnrollment(%q, %q) person (-want +got):\n%s", id[0], id[1], d)
			}
			if d := cmp.Diff(wantE, e); d != "" {
				t.Errorf("FindEnrollment(%q, %q) enrollment (-want +got):\n%s", id[0], id[1], d)
			}
			if _, _, err := db.FindEnrollment(ctx, "tb", id[0], id[1]); !isNotFound(err) {
				t.Errorf("FindEnrollment for a tenant that did not enroll: err = %v", err)
			}
		}
		for _, id := range [][2]string{{"nobody@example.com", ""}, {"", evmW2}, {"", ""}, {"", "7ecdhsygxxyscszyep35khn8vvw3svaulktzxwcfltv"}} {
			if _, _, err := db.FindEnrollment(ctx, "ta", id[0], id[1]); !isNotFound(err) {
				t.Errorf("FindEnrollment(%q, %q): err = %v, want ErrNotFound", id[0], id[1], err)
			}
		}
	})
}

// PrepareWallet's linking rules (api.md §6).
func TestPrepareWallet(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		var seq int
		id := func() string { seq++; return fmt.Sprint("ps_", seq) }
		prep := func(tenant string, w kyc.WalletProof, email string) (kyc.Person, kyc.Enrollment, bool, error) {
			return db.PrepareWallet(ctx, tenant, id(), w, email, t0)
		}
		notEnrolled := func(t *testing.T, email, wallet string) {
			t.Helper()
			for _, tn := range []string{"ta", "tb"} {
				if _, _, err := db.FindEnrollment(ctx, tn, email, wallet); !isNotFound(err) {
					t.Errorf("%s finds (%q, %q) after a refused PrepareWallet: %v", tn, email, wallet, err)
				}
			}
		}

		t.Run("new wallet", func(t *testing.T) {
			w := kyc.WalletProof{Wallet: solW, Chain: "solana"}
			p, e, created, err := prep("ta", w, "")
			must(t, err)
			if d := cmp.Diff(kyc.Person{ID: p.ID, Wallet: solW, WalletChain: "solana"}, p); d != "" || p.ID != fmt.Sprint("ps_", seq) {
				t.Errorf("person %+v (-want +got):\n%s", p, d)
			}
			if !created || e != (kyc.Enrollment{TenantID: "ta", PersonID: p.ID, WalletVerified: true}) {
				t.Errorf("enrollment %+v created=%v", e, created)
			}
		})
		t.Run("new wallet and new email", func(t *testing.T) {
			p, e, created, err := prep("ta", evm(evmW1), "w1@example.com")
			must(t, err)
			// The email is pending on ta's enrollment, not the person's.
			if p.Email != "" || p.Wallet != evmW1 || p.WalletChain != "evm" {
				t.Errorf("person %+v", p)
			}
			if !created || !e.WalletVerified || e.EmailVerified {
				t.Errorf("enrollment %+v created=%v; a linked email is not verified", e, created)
			}
			q, _, err := db.FindEnrollment(ctx, "ta", "w1@example.com", "")
			must(t, err)
			if q.ID != p.ID {
				t.Errorf("email finds %s, wallet made %s", q.ID, p.ID)
			}
		})
		t.Run("re-prepare same wallet", func(t *testing.T) {
			p0, _, err := db.FindEnrollment(ctx, "ta", "", evmW1)
			must(t, err)
			for _, email := range []string{"", "w1@example.com"} {
				p, e, created, err := prep("ta", evm(evmW1), email)
				must(t, err)
				if created || p != p0 || !e.WalletVerified {
					t.Errorf("re-prepare with email %q = %+v, %+v, created=%v", email, p, e, created)
				}
			}
			// Another tenant: same person, new enrollment, wallet verified there.
			p, e, created, err := prep("tb", evm(evmW1), "")
			must(t, err)
			if !created || p != p0 || e != (kyc.Enrollment{TenantID: "tb", PersonID: p0.ID, WalletVerified: true}) {
				t.Errorf("PrepareWallet for tb = %+v, %+v, created=%v", p, e, created)
			}
		})
		t.Run("a wallet never joins an email's person", func(t *testing.T) {
			// Even with ann's email verified at ta, naming it proves nothing
			// about who holds the wallet: the wallet gets its own person.
			ann := mkPerson(t, db, "ta", "ann@example.com")
			f := otpFixture{t: t, db: db, tenant: "ta", person: "ann@example.com"}
			f.mustSend(t0, "h")
			if ok, err := db.ConsumeOTP(ctx, "ta", "ann@example.com", ann.ID, "h"); err != nil || !ok {
				t.Fatalf("ConsumeOTP = %v, %v", ok, err)
			}
			p, e, created, err := prep("ta", evm(evmW2), "ann@example.com")
			must(t, err)
			if p.ID == ann.ID || p.Email != "" || p.Wallet != evmW2 {
				t.Errorf("person %+v joined or took ann's email", p)
			}
			if !created || e != (kyc.Enrollment{TenantID: "ta", PersonID: p.ID, WalletVerified: true}) {
				t.Errorf("enrollment %+v created=%v", e, created)
			}
			if q, _, err := db.FindEnrollment(ctx, "ta", "ann@example.com", ""); err != nil || q.ID != ann.ID || q.Wallet != "" {
				t.Errorf("ann's email finds %+v, %v; want ann, unchanged", q, err)
			}
		})
		t.Run("wallet and an email proven nowhere here", func(t *testing.T) {
			// carl's email is only enrolled (unproven) at ta: a wallet at
			// tb must not join carl, or it would claim carl's identity.
			carl := mkPerson(t, db, "ta", "carl@example.com")
			w := evm("0x1111111111111111111111111111111111111111")
			p, e, created, err := prep("tb", w, "carl@example.com")
			must(t, err)
			if p.ID == carl.ID || p.Email != "" || !created || e != (kyc.Enrollment{TenantID: "tb", PersonID: p.ID, WalletVerified: true}) {
				t.Errorf("= %+v, %+v, created=%v", p, e, created)
			}
			if c, _, err := db.FindEnrollment(ctx, "ta", "carl@example.com", ""); err != nil || c.ID != carl.ID || c.Wallet != "" {
				t.Errorf("carl at ta = %+v, %v", c, err)
			}
			if q, _, err := db.FindEnrollment(ctx, "tb", "carl@example.com", ""); err != nil || q.ID != p.ID {
				t.Errorf("carl@ at tb = %+v, %v; want the wallet person through its pending email", q, err)
			}
		})
		t.Run("email of a person with another wallet", func(t *testing.T) {
			w := evm("0x2222222222222222222222222222222222222222")
			if _, _, _, err := prep("ta", w, "w1@example.com"); !isConflict(err) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
			notEnrolled(t, "", w.Wallet)
			p, _, err := db.FindEnrollment(ctx, "ta", "w1@example.com", "")
			must(t, err)
			if p.Wallet != evmW1 {
				t.Errorf("w1@example.com now has wallet %s", p.Wallet)
			}
		})
		t.Run("wallet person already has a different email", func(t *testing.T) {
			// hal's email became the wallet person's through its OTP.
			w := evm("0x7777777777777777777777777777777777777777")
			hal, _, _, err := prep("ta", w, "hal@example.com")
			must(t, err)
			f := otpFixture{t: t, db: db, tenant: "ta", person: "hal@example.com"}
			f.mustSend(t0, "h")
			if ok, err := db.ConsumeOTP(ctx, "ta", "hal@example.com", hal.ID, "h"); err != nil || !ok {
				t.Fatalf("ConsumeOTP = %v, %v", ok, err)
			}
			if _, _, _, err := prep("ta", w, "other@example.com"); !isConflict(err) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
			notEnrolled(t, "other@example.com", "")
			p, _, err := db.FindEnrollment(ctx, "ta", "", w.Wallet)
			must(t, err)
			if p.Email != "hal@example.com" {
				t.Errorf("wallet's email is now %q", p.Email)
			}
		})
		t.Run("a later pending email replaces an unproven one", func(t *testing.T) {
			p0, _, err := db.FindEnrollment(ctx, "ta", "", evmW1)
			must(t, err)
			p, _, _, err := prep("ta", evm(evmW1), "typo-fixed@example.com")
			must(t, err)
			if p.ID != p0.ID {
				t.Fatalf("person changed: %+v", p)
			}
			if q, _, err := db.FindEnrollment(ctx, "ta", "typo-fixed@example.com", ""); err != nil || q.ID != p0.ID {
				t.Errorf("new pending email finds %+v, %v", q, err)
			}
			if _, _, err := db.FindEnrollment(ctx, "ta", "w1@example.com", ""); !isNotFound(err) {
				t.Errorf("old pending email still finds someone: %v", err)
			}
		})
		t.Run("wallet-only person gets a new email", func(t *testing.T) {
			p0, _, err := db.FindEnrollment(ctx, "ta", "", solW)
			must(t, err)
			p, e, created, err := prep("ta", kyc.WalletProof{Wallet: solW, Chain: "solana"}, "sol@example.com")
			must(t, err)
			if created || p.ID != p0.ID || p.Email != "" || e.EmailVerified {
				t.Errorf("= %+v, %+v, created=%v", p, e, created)
			}
			q, _, err := db.FindEnrollment(ctx, "ta", "sol@example.com", "")
			must(t, err)
			if q.ID != p0.ID {
				t.Errorf("email finds %s, want %s", q.ID, p0.ID)
			}
		})
		t.Run("wallet-only person and another person's email", func(t *testing.T) {
			w := evm("0x3333333333333333333333333333333333333333")
			p0, _, _, err := prep("ta", w, "")
			must(t, err)
			mkPerson(t, db, "ta", "dora@example.com")
			// Pending only: dora, enrolled here by email, still owns it.
			if _, _, _, err := prep("ta", w, "dora@example.com"); err != nil {
				t.Fatalf("err = %v", err)
			}
			p, _, err := db.FindEnrollment(ctx, "ta", "", w.Wallet)
			must(t, err)
			if p != p0 {
				t.Errorf("wallet person changed: %+v", p)
			}
			d, _, err := db.FindEnrollment(ctx, "ta", "dora@example.com", "")
			must(t, err)
			if d.Wallet != "" {
				t.Errorf("dora got wallet %s", d.Wallet)
			}
		})
		t.Run("email enrollment keeps its proofs when a wallet names it", func(t *testing.T) {
			eve := mkPerson(t, db, "tb", "eve@example.com")
			w := evm("0x4444444444444444444444444444444444444444")
			p, e, created, err := prep("tb", w, "eve@example.com")
			must(t, err)
			if p.ID == eve.ID || !created || !e.WalletVerified {
				t.Errorf("= %+v, %+v, created=%v", p, e, created)
			}
			// eve, enrolled here by email, still owns the address here.
			q, qe, _, err := db.PrepareEmail(ctx, "tb", id(), "eve@example.com", t0)
			must(t, err)
			if q.ID != eve.ID || qe.WalletVerified {
				t.Errorf("PrepareEmail = %+v %+v", q, qe)
			}
		})

	})
}

func TestPrepareWalletConcurrentOneWallet(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		const n = 20
		persons := make([]kyc.Person, n)
		created := make([]bool, n)
		errs := make([]error, n)
		together(n, func(i int) {
			tenant := []string{"ta", "tb"}[i%2]
			persons[i], _, created[i], errs[i] = db.PrepareWallet(t.Context(), tenant, fmt.Sprint("ps_", i), evm(evmW1), "", t0)
		})
		noErrors(t, errs)
		nCreated := 0
		for i := range n {
			if persons[i].ID != persons[0].ID {
				t.Errorf("goroutine %d got person %s, goroutine 0 got %s", i, persons[i].ID, persons[0].ID)
			}
			if created[i] {
				nCreated++
			}
		}
		if nCreated != 2 {
			t.Errorf("%d enrollments created for 2 tenants", nCreated)
		}
	})
}

// Many wallets race to join one email-only person: one wins, the others
// conflict, and the person keeps the winner's wallet.
func TestPrepareWalletConcurrentOneEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		const n, rounds = 20, 10
		warm(t, db, n)
		for r := range rounds {
			email := fmt.Sprintf("ann%d@example.com", r)
			errs := make([]error, n)
			wallet := func(i int) string { return fmt.Sprintf("0x%020x%020x", r+1, i+1) }
			together(n, func(i int) {
				_, _, _, errs[i] = db.PrepareWallet(t.Context(), "ta", fmt.Sprint("ps_", r, "_", i), evm(wallet(i)), email, t0)
			})
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: wallets %d and %d both hold %s", r, winner, i, email)
				case err == nil:
					winner = i
				case !isConflict(err):
					t.Fatalf("round %d: goroutine %d: %v, want nil or ErrConflict", r, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no wallet holds the email", r)
			}
			p, _, err := db.FindEnrollment(t.Context(), "ta", email, "")
			must(t, err)
			if p.Wallet != wallet(winner) || p.Email != "" {
				t.Fatalf("round %d: email finds %+v, want wallet %s (pending)", r, p, wallet(winner))
			}
			for i := range n {
				if _, _, err := db.FindEnrollment(t.Context(), "ta", "", wallet(i)); (err == nil) != (i == winner) {
					t.Errorf("round %d: wallet %d enrolled: %v", r, i, err)
				}
			}
		}
	})
}

// Many emails race onto one wallet-only person: each is only a pending
// claim at this tenant, so the last write wins and exactly one email finds
// the person.
func TestPrepareWalletConcurrentOneWalletManyEmails(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		const n, rounds = 20, 10
		warm(t, db, n)
		for r := range rounds {
			w := evm(fmt.Sprintf("0x%040x", r+1))
			w0, _, _, err := db.PrepareWallet(t.Context(), "ta", fmt.Sprint("ps_w", r), w, "", t0)
			must(t, err)
			errs := make([]error, n)
			email := func(i int) string { return fmt.Sprintf("u%d.%d@example.com", r, i) }
			together(n, func(i int) {
				_, _, _, errs[i] = db.PrepareWallet(t.Context(), "ta", fmt.Sprint("ps_", r, "_", i), w, email(i), t0)
			})
			found := 0
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d: goroutine %d: %v", r, i, err)
				}
				p, _, err := db.FindEnrollment(t.Context(), "ta", email(i), "")
				switch {
				case err == nil && p.ID == w0.ID:
					found++
				case err == nil:
					t.Fatalf("round %d: email %d finds %+v", r, i, p)
				case !isNotFound(err):
					t.Fatal(err)
				}
			}
			if found != 1 {
				t.Fatalf("round %d: %d emails find the wallet person, want 1", r, found)
			}
		}
	})
}

// PrepareEmail and PrepareWallet for one new email at once: the email
// person and the wallet person stay apart (the wallet never proved the
// email), with no error, and each tenant finds its own.
func TestPrepareEmailAndWalletRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		const rounds = 20
		for r := range rounds {
			email := fmt.Sprintf("r%d@example.com", r)
			w := evm(fmt.Sprintf("0x%040x", r+1))
			var pe, pw kyc.Person
			var errE, errW error
			together(2, func(i int) {
				if i == 0 {
					pe, _, _, errE = db.PrepareEmail(t.Context(), "ta", "pe_"+email, email, t0)
				} else {
					pw, _, _, errW = db.PrepareWallet(t.Context(), "tb", "pw_"+email, w, email, t0)
				}
			})
			if errE != nil || errW != nil {
				t.Fatalf("round %d: PrepareEmail: %v; PrepareWallet: %v", r, errE, errW)
			}
			if pe.ID == pw.ID || pe.Email != email || pw.Email != "" || pw.Wallet != w.Wallet {
				t.Fatalf("round %d: PrepareEmail made %+v, PrepareWallet %+v", r, pe, pw)
			}
			if q, _, err := db.FindEnrollment(t.Context(), "tb", email, ""); err != nil || q.ID != pw.ID {
				t.Fatalf("round %d: tb finds %+v, %v", r, q, err)
			}
		}
	})
}

// A pending email becomes the person's once proven at that tenant, unless
// another person owns the address by then (then it stays a link there).
func TestPendingEmailPromotion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		// Codes are keyed by the address they were mailed to.
		prove := func(tenant, person, email string) {
			t.Helper()
			f := otpFixture{t: t, db: db, tenant: tenant, person: email}
			f.mustSend(t0, "h")
			if ok, err := db.ConsumeOTP(ctx, tenant, email, person, "h"); err != nil || !ok {
				t.Fatalf("ConsumeOTP = %v, %v", ok, err)
			}
		}
		w := evm("0x5555555555555555555555555555555555555555")
		p, _, _, err := db.PrepareWallet(ctx, "ta", "ps_pw", w, "fay@example.com", t0)
		must(t, err)
		prove("ta", p.ID, "fay@example.com")
		got, e, err := db.FindEnrollment(ctx, "ta", "fay@example.com", "")
		must(t, err)
		if got.ID != p.ID || got.Email != "fay@example.com" || got.Wallet != w.Wallet || !e.EmailVerified || !e.WalletVerified {
			t.Fatalf("after proof: %+v %+v", got, e)
		}
		// Now a real email of the person: another tenant finds it by email.
		if _, _, created, err := db.PrepareEmail(ctx, "tb", "ps_x", "fay@example.com", t0); err != nil || !created {
			t.Fatalf("PrepareEmail at tb = %v, %v", created, err)
		}
		if q, _, err := db.FindEnrollment(ctx, "tb", "fay@example.com", ""); err != nil || q.ID != p.ID {
			t.Fatalf("tb finds %+v, %v", q, err)
		}

		// Taken in the meantime: the proof still counts here, the address
		// stays with its owner.
		w2 := evm("0x6666666666666666666666666666666666666666")
		p2, _, _, err := db.PrepareWallet(ctx, "ta", "ps_pw2", w2, "gus@example.com", t0)
		must(t, err)
		gus := mkPerson(t, db, "tb", "gus@example.com")
		prove("ta", p2.ID, "gus@example.com")
		if q, e, err := db.FindEnrollment(ctx, "ta", "gus@example.com", ""); err != nil || q.ID != p2.ID || q.Email != "" || !e.EmailVerified {
			t.Fatalf("ta finds %+v %+v, %v; want the wallet person, proven, email still pending", q, e, err)
		}
		if q, _, err := db.FindEnrollment(ctx, "tb", "gus@example.com", ""); err != nil || q.ID != gus.ID {
			t.Fatalf("tb finds %+v, %v; want gus", q, err)
		}
	})
}
