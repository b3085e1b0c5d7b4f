package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

const (
	evmW1 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	evmW2 = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
	solW  = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"
)

func ids(p, e string) kyc.NewIDs { return kyc.NewIDs{Person: p, Enrollment: e} }

// setEmail gives the person an email, as a link proven elsewhere does.
func setEmail(t *testing.T, db *store.DB, personID, email string) {
	t.Helper()
	must(t, db.InTx(t.Context(), func(tx kyc.Tx) error {
		p, err := tx.PersonByID(t.Context(), personID)
		if err != nil {
			return err
		}
		p.Email = email
		return tx.UpdatePerson(t.Context(), p)
	}))
}

func TestPrepareEmail(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")

		e, created, err := db.PrepareEmail(ctx, "ta", ids("ps_1", "en_1"), "ann@example.com", t0)
		must(t, err)
		want := kyc.Enrollment{ID: "en_1", TenantID: "ta", PersonID: "ps_1", Email: "ann@example.com"}
		if d := cmp.Diff(want, e); d != "" || !created {
			t.Errorf("first PrepareEmail: created=%v, enrollment (-want +got):\n%s", created, d)
		}

		// Again for the same tenant: the same enrollment; the new ids are unused.
		e, created, err = db.PrepareEmail(ctx, "ta", ids("ps_2", "en_2"), "ann@example.com", t0)
		must(t, err)
		if d := cmp.Diff(want, e); d != "" || created {
			t.Errorf("second PrepareEmail: created=%v, enrollment (-want +got):\n%s", created, d)
		}

		// Another tenant: the same person, an enrollment of its own.
		e, created, err = db.PrepareEmail(ctx, "tb", ids("ps_3", "en_3"), "ann@example.com", t0)
		must(t, err)
		if !created || e.ID != "en_3" || e.PersonID != "ps_1" || e.TenantID != "tb" {
			t.Errorf("PrepareEmail for tb = %+v, created=%v", e, created)
		}

		// A proof shows in later calls, for that tenant only.
		f := otpFixture{t: t, db: db, tenant: "ta", address: "ann@example.com"}
		f.mustSend(t0, "h")
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "h", nil); err != nil || !ok {
			t.Fatalf("ConsumeOTP = %v, %v", ok, err)
		}
		e, created, err = db.PrepareEmail(ctx, "ta", ids("ps_4", "en_4"), "ann@example.com", t0)
		must(t, err)
		if created || !e.EmailVerified || e.WalletVerified() {
			t.Errorf("after the proof, ta sees %+v, created=%v", e, created)
		}
		e, _, err = db.PrepareEmail(ctx, "tb", ids("ps_4", "en_4"), "ann@example.com", t0)
		must(t, err)
		if e.EmailVerified {
			t.Error("ta's proof shows for tb")
		}

		// An address a wallet named but nobody proved belongs to nobody:
		// registering it makes a person of its own.
		w := mkWallet(t, db, "ta", evmW1, "bob@example.com")
		e, created, err = db.PrepareEmail(ctx, "ta", ids("ps_5", "en_5"), "bob@example.com", t0)
		must(t, err)
		if !created || e.PersonID != "ps_5" || e.ID == w.ID || e.Wallet != "" {
			t.Errorf("PrepareEmail of a pending address = %+v, created=%v; the wallet's enrollment is %+v", e, created, w)
		}
		if got := enrollmentOf(t, db, "ta", "bob@example.com"); got.ID != "en_5" {
			t.Errorf("the address finds %+v, want its own enrollment en_5", got)
		}

		// The email of a person this tenant knows only by wallet (linked at
		// another tenant): a second enrollment of the same person, registered
		// just now, with nothing proven.
		c := mkWallet(t, db, "tb", evmW2, "")
		setEmail(t, db, c.PersonID, "cat@example.com")
		e, created, err = db.PrepareEmail(ctx, "tb", ids("ps_6", "en_6"), "cat@example.com", t0)
		must(t, err)
		if !created || e.ID != "en_6" || e.PersonID != c.PersonID || e.Wallet != "" || e.Verified() {
			t.Errorf("PrepareEmail of a wallet user's linked address = %+v, created=%v; want a new enrollment of %s", e, created, c.PersonID)
		}
	})
}

func TestPrepareEmailConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		const n = 20
		got := make([]kyc.Enrollment, n)
		created := make([]bool, n)
		errs := make([]error, n)
		together(n, func(i int) {
			got[i], created[i], errs[i] = db.PrepareEmail(t.Context(), "ta", ids(fmt.Sprint("ps_", i), fmt.Sprint("en_", i)), "ann@example.com", t0)
		})
		noErrors(t, errs)
		nCreated := 0
		for i := range n {
			if got[i] != got[0] {
				t.Errorf("goroutine %d got %+v, goroutine 0 got %+v", i, got[i], got[0])
			}
			if created[i] {
				nCreated++
			}
		}
		if nCreated != 1 {
			t.Errorf("%d of %d concurrent PrepareEmail registered the address, want 1", nCreated, n)
		}
		if e := enrollmentOf(t, db, "ta", "ann@example.com"); e != got[0] {
			t.Errorf("FindEnrollment finds %+v, callers got %+v", e, got[0])
		}
	})
}

// A tenant finds a user only by an identifier it registered itself: what
// another tenant linked to the person is not a way in.
func TestFindEnrollment(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		byEmail := enrollmentOf(t, db, "ta", mkPerson(t, db, "ta", "ann@example.com").Email)
		byWallet := mkWallet(t, db, "tb", solW, "")
		// The wallet's person takes the address (a link proven at tc, say).
		must(t, db.InTx(ctx, func(tx kyc.Tx) error {
			if err := tx.MergePerson(ctx, byEmail.PersonID, byWallet.PersonID, t0); err != nil {
				return err
			}
			return tx.UpdatePerson(ctx, kyc.Person{ID: byWallet.PersonID, Email: "ann@example.com", Wallet: solW, WalletChain: "solana"})
		}))
		byEmail.PersonID = byWallet.PersonID
		for _, c := range []struct {
			tenant, email, wallet string
			want                  *kyc.Enrollment
		}{
			{"ta", "ann@example.com", "", &byEmail},
			{"ta", "", solW, nil},
			{"tb", "", solW, &byWallet},
			{"tb", "ann@example.com", "", nil},
			{"ta", "nobody@example.com", "", nil},
			{"ta", "", evmW2, nil},
			{"tb", "", "7ecdhsygxxyscszyep35khn8vvw3svaulktzxwcfltv", nil},
		} {
			e, err := db.FindEnrollment(ctx, c.tenant, c.email, c.wallet)
			switch {
			case c.want == nil && !isNotFound(err):
				t.Errorf("FindEnrollment(%s, %q, %q) = %+v, %v; want ErrNotFound", c.tenant, c.email, c.wallet, e, err)
			case c.want != nil && (err != nil || e != *c.want):
				t.Errorf("FindEnrollment(%s, %q, %q) = %+v, %v; want %+v", c.tenant, c.email, c.wallet, e, err, *c.want)
			}
		}
	})
}

func TestPendingLinks(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		for _, w := range []string{evmW1, evmW2, solW} {
			mkWallet(t, db, "ta", w, "ann@example.com")
		}
		mkWallet(t, db, "tb", evmW1, "ann@example.com")
		mkPerson(t, db, "ta", "ann@example.com") // the address's own enrollment is no pending link
		for _, c := range []struct {
			tenant, email string
			limit, want   int
		}{
			{"ta", "ann@example.com", 2, 2},
			{"ta", "ann@example.com", 5, 3},
			{"tb", "ann@example.com", 5, 1},
			{"ta", "bob@example.com", 5, 0},
		} {
			got, err := db.PendingLinks(ctx, c.tenant, c.email, c.limit)
			must(t, err)
			if len(got) != c.want {
				t.Errorf("PendingLinks(%s, %s, %d) = %d enrollments, want %d", c.tenant, c.email, c.limit, len(got), c.want)
			}
			for _, e := range got {
				if e.TenantID != c.tenant || e.PendingEmail != c.email || e.Wallet == "" {
					t.Errorf("PendingLinks(%s, %s) gave %+v", c.tenant, c.email, e)
				}
			}
		}
	})
}

func TestInTx(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		insert := func(id string) func(kyc.Tx) error {
			return func(tx kyc.Tx) error {
				return tx.InsertPerson(ctx, kyc.Person{ID: id, Email: id + "@example.com"}, t0)
			}
		}
		exists := func(id string) bool {
			var found bool
			must(t, db.InTx(ctx, func(tx kyc.Tx) error {
				_, err := tx.PersonByID(ctx, id)
				found = err == nil
				return nil
			}))
			return found
		}
		must(t, db.InTx(ctx, insert("committed")))
		if !exists("committed") {
			t.Error("a transaction that returned nil did not commit")
		}
		boom := errors.New("boom")
		if err := db.InTx(ctx, func(tx kyc.Tx) error { insert("rolled")(tx); return boom }); !errors.Is(err, boom) {
			t.Errorf("InTx = %v, want fn's error", err)
		}
		if exists("rolled") {
			t.Error("a transaction that failed left its write")
		}
		runs := 0
		must(t, db.InTx(ctx, func(tx kyc.Tx) error {
			runs++
			if err := insert(fmt.Sprint("run", runs))(tx); err != nil {
				return err
			}
			if runs < 3 {
				return fmt.Errorf("decided on stale reads: %w", kyc.ErrRace)
			}
			return nil
		}))
		if runs != 3 || exists("run1") || exists("run2") || !exists("run3") {
			t.Errorf("after two races: %d runs, run1 %v run2 %v run3 %v; want 3 runs and only run3's write",
				runs, exists("run1"), exists("run2"), exists("run3"))
		}
		runs = 0
		err := db.InTx(ctx, func(tx kyc.Tx) error { runs++; return kyc.ErrRace })
		if !errors.Is(err, kyc.ErrRace) || runs != 5 {
			t.Errorf("a transaction that always races: %d runs, err %v; want 5 runs and ErrRace", runs, err)
		}
	})
}

// A write that collides with an identifier someone else holds is a race,
// which InTx answers by running the transaction again.
func TestTxTakenIdentifiersAreRaces(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		ann := mkPerson(t, db, "ta", "ann@example.com")
		w := mkWallet(t, db, "ta", evmW1, "")
		for name, fn := range map[string]func(kyc.Tx) error{
			"a person with a taken wallet": func(tx kyc.Tx) error {
				return tx.InsertPerson(ctx, kyc.Person{ID: "ps_x", Wallet: evmW1, WalletChain: "evm"}, t0)
			},
			"a person given a taken email": func(tx kyc.Tx) error {
				return tx.UpdatePerson(ctx, kyc.Person{ID: w.PersonID, Email: "ann@example.com", Wallet: evmW1, WalletChain: "evm"})
			},
			"an enrollment with a taken address": func(tx kyc.Tx) error {
				return tx.InsertEnrollment(ctx, kyc.Enrollment{ID: "en_x", TenantID: "ta", PersonID: ann.ID, Email: "ann@example.com"}, t0)
			},
			"an enrollment given a taken wallet": func(tx kyc.Tx) error {
				e := enrollmentOf(t, db, "ta", "ann@example.com")
				e.Wallet = evmW1
				return tx.UpdateEnrollment(ctx, e)
			},
		} {
			if err := db.InTx(ctx, fn); !errors.Is(err, kyc.ErrRace) {
				t.Errorf("%s: %v, want ErrRace", name, err)
			}
		}
	})
}

// Ten wallet users claim one free address at once, each in a transaction
// that reads "nobody has it" and then takes it: exactly one gets it, and
// every other one, run again, sees it taken. On PostgreSQL this is the
// unique index's work, found out as ErrRace; on SQLite, one writer's.
func TestTxConcurrentClaimsOfOneAddress(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		const n = 10
		persons := make([]string, n)
		for i := range n {
			persons[i] = mkWallet(t, db, "ta", fmt.Sprintf("0x%040x", i+1), "").PersonID
		}
		warm(t, db, n)
		took := make([]bool, n)
		errs := make([]error, n)
		together(n, func(i int) {
			errs[i] = db.InTx(t.Context(), func(tx kyc.Tx) error {
				took[i] = false
				_, err := tx.PersonByEmail(t.Context(), "free@example.com")
				if err == nil {
					return nil // taken: the rule would refuse
				}
				if !isNotFound(err) {
					return err
				}
				p, err := tx.PersonByID(t.Context(), persons[i])
				if err != nil {
					return err
				}
				p.Email, took[i] = "free@example.com", true
				return tx.UpdatePerson(t.Context(), p)
			})
		})
		noErrors(t, errs)
		winners := 0
		for i := range n {
			if took[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Errorf("%d transactions took the address, want exactly 1", winners)
		}
	})
}

func TestMergePerson(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		from := mkPerson(t, db, "ta", "ann@example.com")
		mkPerson(t, db, "tb", "ann@example.com")
		into := mkWallet(t, db, "ta", evmW1, "ann@example.com")
		// A lapsed claim on the person merged away goes with it.
		if ok, err := db.ClaimSessionCreation(ctx, from.ID, "lapsed", at(2*time.Minute), at(time.Minute)); err != nil || !ok {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		must(t, db.InTx(ctx, func(tx kyc.Tx) error { return tx.MergePerson(ctx, from.ID, into.PersonID, at(2*time.Minute)) }))

		for _, tn := range []string{"ta", "tb"} {
			if e := enrollmentOf(t, db, tn, "ann@example.com"); e.PersonID != into.PersonID {
				t.Errorf("%s's enrollment by email points to %s, want %s", tn, e.PersonID, into.PersonID)
			}
		}
		if e, err := db.FindEnrollment(ctx, "ta", "", evmW1); err != nil || e != into {
			t.Errorf("the wallet's enrollment = %+v, %v; want it unchanged: %+v", e, err, into)
		}
		must(t, db.InTx(ctx, func(tx kyc.Tx) error {
			if _, err := tx.PersonByID(ctx, from.ID); !isNotFound(err) {
				t.Errorf("the merged person still exists: %v", err)
			}
			return nil
		}))
		// A create that resolved the person before the merge cannot claim it.
		if ok, err := db.ClaimSessionCreation(ctx, from.ID, "late", at(time.Hour), at(time.Minute)); !isNotFound(err) || ok {
			t.Errorf("claim for the merged person = %v, %v; want ErrNotFound", ok, err)
		}

		// A live claim on the person to merge away: a create is under way
		// for it, and the merge must not go through.
		busy := mkPerson(t, db, "ta", "busy@example.com")
		if ok, err := db.ClaimSessionCreation(ctx, busy.ID, "live", at(time.Hour), t0); err != nil || !ok {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		err := db.InTx(ctx, func(tx kyc.Tx) error { return tx.MergePerson(ctx, busy.ID, into.PersonID, at(time.Minute)) })
		if !errors.Is(err, kyc.ErrRace) {
			t.Errorf("merging away a person with a live claim: %v, want ErrRace", err)
		}
		if e := enrollmentOf(t, db, "ta", "busy@example.com"); e.PersonID != busy.ID {
			t.Errorf("the refused merge moved %+v", e)
		}
		// So must a session: merging away a person with a KYC history is a
		// decision made on stale reads.
		done := mkPerson(t, db, "ta", "done@example.com")
		insert(t, db, newSession("s-done", done.ID, at(time.Minute)))
		err = db.InTx(ctx, func(tx kyc.Tx) error { return tx.MergePerson(ctx, done.ID, into.PersonID, at(time.Hour)) })
		if !errors.Is(err, kyc.ErrRace) {
			t.Errorf("merging away a person with a session: %v, want ErrRace", err)
		}
		if s, err := db.SessionByID(ctx, "s-done"); err != nil || s.PersonID != done.ID {
			t.Errorf("session s-done = %+v, %v; want it unmoved", s, err)
		}
	})
}

func TestKYCHistory(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		ann := mkPerson(t, db, "ta", "ann@example.com")
		history := func(now time.Time) bool {
			var h bool
			must(t, db.InTx(ctx, func(tx kyc.Tx) (err error) { h, err = tx.KYCHistory(ctx, ann.ID, now); return err }))
			return h
		}
		if history(t0) {
			t.Error("no session and no claim: history")
		}
		if ok, err := db.ClaimSessionCreation(ctx, ann.ID, "c", at(time.Minute), t0); err != nil || !ok {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		if !history(at(30 * time.Second)) {
			t.Error("a live creation claim: no history")
		}
		if history(at(time.Minute)) {
			t.Error("a lapsed claim: history")
		}
		must(t, db.ReleaseSessionClaim(ctx, ann.ID, "c"))
		insert(t, db, newSession("s1", ann.ID, t0))
		if !history(at(time.Hour)) {
			t.Error("a session: no history")
		}
	})
}

// TestMergePersonGivesBackALapsedClaimsUnit: a create that died holding a
// quota unit leaves a lapsed claim on its person; when a proven link then
// merges that person away, the claim goes and so must its unit — nothing
// else (sweep, take-over, release) can find it afterwards.
func TestMergePersonGivesBackALapsedClaimsUnit(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		from := mkPerson(t, db, "ta", "ann@example.com")
		into := mkWallet(t, db, "ta", evmW1, "ann@example.com")
		dead := kyc.QuotaHold{PersonID: from.ID, Token: "dead", TenantID: "ta", Month: "2030-03"}
		if ok, err := db.ClaimSessionCreation(ctx, dead.PersonID, dead.Token, at(time.Minute), t0); err != nil || !ok {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		if ok, err := db.ReserveQuota(ctx, dead, 5); err != nil || !ok {
			t.Fatalf("reserve = %v, %v", ok, err)
		}
		// The holder dies; its claim lapses; the link is proven before any
		// sweep runs.
		must(t, db.InTx(ctx, func(tx kyc.Tx) error { return tx.MergePerson(ctx, from.ID, into.PersonID, at(2*time.Minute)) }))
		if _, err := db.SweepLapsedClaims(ctx, at(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := db.QuotaUsed(ctx, "ta", "2030-03"); err != nil || n != 0 {
			t.Errorf("QuotaUsed = %d, %v after the merge and a sweep; want 0 (no session was stored)", n, err)
		}
	})
}
