package kyc_test

// Secret rotation at the service: what was hashed under a previous secret
// still works, used API keys move to the current secret once (replicas
// racing), and without a previous secret a miss costs nothing more.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

var (
	oldSecret = []byte(strings.Repeat("o", 32))
	newSecret = []byte(strings.Repeat("n", 32))
)

// countingStore is the real store, counting the key lookups.
type countingStore struct {
	*store.DB
	lookups, rehashes atomic.Int64
}

func (c *countingStore) TenantByKeyHash(ctx context.Context, hash string) (kyc.Tenant, error) {
	c.lookups.Add(1)
	return c.DB.TenantByKeyHash(ctx, hash)
}

func (c *countingStore) RehashAPIKey(ctx context.Context, hash string, old []string) (kyc.Tenant, bool, error) {
	c.rehashes.Add(1)
	return c.DB.RehashAPIKey(ctx, hash, old)
}

// rotationRig is one database and the services of a rotation's steps.
type rotationRig struct {
	db    *countingStore
	clock *testClock
	mail  *sessMailer
}

func newRotationRig(t *testing.T, url string) *rotationRig {
	t.Helper()
	db, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &rotationRig{db: &countingStore{DB: db}, clock: &testClock{t: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)},
		mail: &sessMailer{codes: map[string]string{}}}
}

// service is a replica configured with secret and previous.
func (r *rotationRig) service(t *testing.T, secret []byte, previous ...[]byte) *kyc.Service {
	t.Helper()
	svc, err := kyc.NewService(kyc.Deps{Store: r.db, Mailer: r.mail, Clock: r.clock},
		kyc.Config{Secret: secret, PreviousSecrets: previous})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestRotationKeepsKeysAndCodes(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			r := newRotationRig(t, e.URL)
			before := r.service(t, oldSecret)
			tenant, used, err := before.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
			must(t, err)
			revokedKey, revoked, err := before.AddAPIKey(ctx, tenant.ID)
			must(t, err)
			_, unused, err := before.AddAPIKey(ctx, tenant.ID)
			must(t, err)
			_, polled, err := before.AddAPIKey(ctx, tenant.ID)
			must(t, err)
			must(t, before.RevokeAPIKey(ctx, tenant.ID, revokedKey.ID))
			const email = "rot@example.com"
			_, err = before.Prepare(ctx, tenant, email)
			must(t, err)
			must(t, before.SendOTP(ctx, tenant, kyc.OTPInput{Email: email}))

			during := r.service(t, newSecret, oldSecret)
			got, hash, err := during.Authenticate(ctx, used)
			if err != nil || got.ID != tenant.ID {
				t.Fatalf("old key under the previous secret: %v, %v", got.ID, err)
			}
			if _, err := r.db.TenantByKeyHash(ctx, hash); err != nil {
				t.Fatalf("the used key is not stored under the current secret's hash: %v", err)
			}
			// Status joins the key lookup with its read; an old key falls
			// back to the lookup alone.
			got, _, read, _, err := during.AuthenticatedStatus(ctx, polled, kyc.Identity{Email: email})
			if err != nil || read || got.ID != tenant.ID {
				t.Fatalf("status with an old key: %v, read %v, %v", got.ID, read, err)
			}
			if _, _, err := during.Authenticate(ctx, revoked); !errors.Is(err, kyc.ErrNotFound) {
				t.Fatalf("a revoked key under the previous secret: %v, want ErrNotFound", err)
			}
			r.mail.mu.Lock()
			c := r.mail.codes[email]
			r.mail.mu.Unlock()
			if err := during.VerifyOTP(ctx, tenant, kyc.OTPInput{Email: email, Code: c}); err != nil {
				t.Fatalf("a code mailed under the previous secret: %v", err)
			}

			after := r.service(t, newSecret)
			if _, _, err := after.Authenticate(ctx, used); err != nil {
				t.Fatalf("the re-hashed key without the previous secret: %v", err)
			}
			// The joined read now finds the key: the answer is the status's.
			got, _, read, _, err = after.AuthenticatedStatus(ctx, polled, kyc.Identity{Email: email})
			if got.ID != tenant.ID || !read || code(err) != kyc.CodeKYCNotFound {
				t.Fatalf("status with the re-hashed key: %q, read %v, %v; want the status read (kyc_not_found)", got.ID, read, err)
			}
			if _, _, err := after.Authenticate(ctx, unused); !errors.Is(err, kyc.ErrNotFound) {
				t.Fatalf("a key never used during the rotation: %v, want ErrNotFound", err)
			}
			// The old secret no longer names the moved key.
			if _, _, err := r.service(t, oldSecret).Authenticate(ctx, used); !errors.Is(err, kyc.ErrNotFound) {
				t.Fatalf("the moved key under the old secret alone: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestRotationRehashRace: replicas that all meet an old key at once each
// authenticate it, and it ends stored once, under the current secret.
func TestRotationRehashRace(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			r := newRotationRig(t, e.URL)
			tenant, key, err := r.service(t, oldSecret).CreateTenant(ctx, kyc.NewTenant{Name: "T"})
			must(t, err)
			const n = 8
			replicas := make([]*kyc.Service, n)
			for i := range replicas {
				replicas[i] = r.service(t, newSecret, []byte(strings.Repeat("x", 40)), oldSecret)
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					var got kyc.Tenant
					got, _, errs[i] = replicas[i].Authenticate(ctx, key)
					if errs[i] == nil && got.ID != tenant.ID {
						errs[i] = errors.New("wrong tenant " + got.ID)
					}
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
			}
			keys, err := r.db.ListAPIKeys(ctx, tenant.ID)
			must(t, err)
			if len(keys) != 1 {
				t.Fatalf("%d keys stored, want 1", len(keys))
			}
			if _, _, err := r.service(t, newSecret).Authenticate(ctx, key); err != nil {
				t.Fatalf("after the race, under the current secret alone: %v", err)
			}
		})
	}
}

// TestRotationCostsNothingWithoutPrevious: with no previous secret an
// unknown key is one lookup, as before rotation existed; with one, a miss
// is one more, and a key under the current secret never takes it.
func TestRotationCostsNothingWithoutPrevious(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRotationRig(t, storetest.SQLiteURL(t))
	plain := r.service(t, newSecret)
	_, key, err := plain.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
	must(t, err)
	if _, _, err := plain.Authenticate(ctx, "kg_unknown"); !errors.Is(err, kyc.ErrNotFound) {
		t.Fatal(err)
	}
	if l, rh := r.db.lookups.Load(), r.db.rehashes.Load(); l != 1 || rh != 0 {
		t.Fatalf("a miss without a previous secret: %d lookups, %d fallbacks; want 1, 0", l, rh)
	}
	rotating := r.service(t, newSecret, oldSecret)
	if _, _, err := rotating.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	if l, rh := r.db.lookups.Load(), r.db.rehashes.Load(); l != 2 || rh != 0 {
		t.Fatalf("a current key while rotating: %d lookups, %d fallbacks; want 2, 0", l, rh)
	}
	if _, _, err := rotating.Authenticate(ctx, "kg_unknown"); !errors.Is(err, kyc.ErrNotFound) {
		t.Fatal(err)
	}
	if l, rh := r.db.lookups.Load(), r.db.rehashes.Load(); l != 3 || rh != 1 {
		t.Fatalf("a miss while rotating: %d lookups, %d fallbacks; want 3, 1", l, rh)
	}
}

// TestRotationIdempotencyKeys: a request run under the old secret is
// replayed by a replica on the new one, and a request running on a new
// replica holds the key against a replica still on the old secret.
func TestRotationIdempotencyKeys(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			r := newRotationRig(t, e.URL)
			old := r.service(t, oldSecret)
			tenant, _, err := old.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
			must(t, err)
			req := kyc.IdempotentRequest{Method: "POST", Path: "/kyc/prepare", Body: []byte(`{}`)}
			call, _, err := old.BeginIdempotent(ctx, tenant.ID, "k1", req)
			must(t, err)
			answer := kyc.StoredAnswer{Status: 201, ContentType: "application/json", Body: []byte(`{"ok":1}`)}
			old.FinishIdempotent(ctx, call, &answer)

			rotating := r.service(t, newSecret, oldSecret)
			call, replay, err := rotating.BeginIdempotent(ctx, tenant.ID, "k1", req)
			if err != nil || call != nil || replay == nil || string(replay.Body) != `{"ok":1}` {
				t.Fatalf("retry after the rotation: call %v, replay %v, err %v; want the first answer replayed", call, replay, err)
			}

			call, _, err = rotating.BeginIdempotent(ctx, tenant.ID, "k2", req)
			if err != nil || call == nil {
				t.Fatalf("new key: %v, %v", call, err)
			}
			if c, _, err := old.BeginIdempotent(ctx, tenant.ID, "k2", req); c != nil || code(err) != kyc.CodeIdempotencyKeyInUse {
				t.Fatalf("old replica while a new one runs the key: %v, %v; want in use", c, err)
			}
			rotating.FinishIdempotent(ctx, call, &answer)
			if c, replay, err := old.BeginIdempotent(ctx, tenant.ID, "k2", req); c != nil || err != nil || replay == nil {
				t.Fatalf("old replica after the new one answered: %v, %v, %v; want the answer replayed", c, replay, err)
			}
		})
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
