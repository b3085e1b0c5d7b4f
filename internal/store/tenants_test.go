package store_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

func intp(v int) *int { return &v }

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		a := kyc.Tenant{ID: "ten_a", Name: "Alpha", KYCEnabled: true, MonthlyQuota: 250, RateLimitPerMinute: 90, CreatedAt: at(1234 * time.Millisecond)}
		b := kyc.Tenant{ID: "ten_b", Name: "Beta", KYCEnabled: false, MonthlyQuota: 0, RateLimitPerMinute: 0, CreatedAt: at(2000 * time.Millisecond)}
		must(t, db.CreateTenant(ctx, a, kyc.APIKey{ID: "k_a", TenantID: "ten_a", Hash: "h_a", Prefix: "kg_a", CreatedAt: at(1234 * time.Millisecond)}))
		must(t, db.CreateTenant(ctx, b, kyc.APIKey{ID: "k_b", TenantID: "ten_b", Hash: "h_b", Prefix: "kg_b", CreatedAt: at(2000 * time.Millisecond)}))

		got, err := db.ListTenants(ctx)
		must(t, err)
		if d := cmp.Diff([]kyc.Tenant{a, b}, got); d != "" {
			t.Errorf("ListTenants (-want +got):\n%s", d)
		}
		// Found by a key, the tenant names it (the audit log's actor).
		ka, kb := a, b
		ka.KeyID, kb.KeyID = "k_a", "k_b"
		for hash, want := range map[string]kyc.Tenant{"h_a": ka, "h_b": kb} {
			got, err := db.TenantByKeyHash(ctx, hash)
			must(t, err)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("TenantByKeyHash(%s) (-want +got):\n%s", hash, d)
			}
		}

		t.Run("duplicate id writes nothing", func(t *testing.T) {
			err := db.CreateTenant(ctx, kyc.Tenant{ID: "ten_a", Name: "Again", CreatedAt: t0},
				kyc.APIKey{ID: "k_dup", TenantID: "ten_a", Hash: "h_dup", Prefix: "kg_d", CreatedAt: t0})
			if err == nil {
				t.Fatal("CreateTenant with an existing id succeeded")
			}
			if _, err := db.TenantByKeyHash(ctx, "h_dup"); !isNotFound(err) {
				t.Errorf("the key of a failed CreateTenant was stored: err = %v", err)
			}
		})
		t.Run("duplicate key hash writes nothing", func(t *testing.T) {
			err := db.CreateTenant(ctx, kyc.Tenant{ID: "ten_c", Name: "Gamma", CreatedAt: t0},
				kyc.APIKey{ID: "k_c", TenantID: "ten_c", Hash: "h_a", Prefix: "kg_c", CreatedAt: t0})
			if err == nil {
				t.Fatal("CreateTenant with another tenant's key hash succeeded")
			}
			ts, err := db.ListTenants(ctx)
			must(t, err)
			if len(ts) != 2 {
				t.Errorf("tenant of a failed CreateTenant was stored: %d tenants", len(ts))
			}
			if got, _ := db.TenantByKeyHash(ctx, "h_a"); got.ID != "ten_a" {
				t.Errorf("h_a now belongs to %q", got.ID)
			}
		})
	})
}

func TestListTenantsEmptyAndOrdered(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ts, err := db.ListTenants(ctx)
		must(t, err)
		if len(ts) != 0 {
			t.Fatalf("fresh database lists %d tenants", len(ts))
		}
		// Ordered by creation time, then id.
		for _, id := range []string{"t3", "t1", "t2"} {
			created := at(0)
			if id == "t3" {
				created = at(-1000 * time.Millisecond)
			}
			must(t, db.CreateTenant(ctx, kyc.Tenant{ID: id, Name: id, CreatedAt: created},
				kyc.APIKey{ID: "k" + id, TenantID: id, Hash: "h" + id, Prefix: "p", CreatedAt: at(0)}))
		}
		ts, err = db.ListTenants(ctx)
		must(t, err)
		var ids []string
		for _, tn := range ts {
			ids = append(ids, tn.ID)
		}
		if d := cmp.Diff([]string{"t3", "t1", "t2"}, ids); d != "" {
			t.Errorf("order (-want +got):\n%s", d)
		}
	})
}

func TestTenantByKeyHash(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		must(t, db.AddAPIKey(ctx, kyc.APIKey{ID: "k2", TenantID: "ta", Hash: "second", Prefix: "kg_2", CreatedAt: at(1000 * time.Millisecond)}))

		if _, err := db.TenantByKeyHash(ctx, "nope"); !isNotFound(err) {
			t.Errorf("unknown hash: err = %v, want ErrNotFound", err)
		}
		if _, err := db.TenantByKeyHash(ctx, ""); !isNotFound(err) {
			t.Errorf("empty hash: err = %v, want ErrNotFound", err)
		}
		must(t, db.RevokeAPIKey(ctx, "ta", "key_ta", at(5000*time.Millisecond)))
		if _, err := db.TenantByKeyHash(ctx, "hash_ta"); !isNotFound(err) {
			t.Errorf("revoked key: err = %v, want ErrNotFound", err)
		}
		got, err := db.TenantByKeyHash(ctx, "second")
		must(t, err)
		if got.ID != "ta" {
			t.Errorf("second key finds tenant %q, want ta", got.ID)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")

		if err := db.AddAPIKey(ctx, kyc.APIKey{ID: "kx", TenantID: "ghost", Hash: "hx", Prefix: "p", CreatedAt: t0}); !isNotFound(err) {
			t.Errorf("AddAPIKey for an unknown tenant: err = %v, want ErrNotFound", err)
		}
		if _, err := db.TenantByKeyHash(ctx, "hx"); !isNotFound(err) {
			t.Errorf("key for an unknown tenant was stored: err = %v", err)
		}
		must(t, db.AddAPIKey(ctx, kyc.APIKey{ID: "k_b", TenantID: "ta", Hash: "hb", Prefix: "kg_b", CreatedAt: at(2000 * time.Millisecond)}))
		must(t, db.AddAPIKey(ctx, kyc.APIKey{ID: "k_a", TenantID: "ta", Hash: "ha", Prefix: "kg_a", CreatedAt: at(2000 * time.Millisecond)}))
		if err := db.AddAPIKey(ctx, kyc.APIKey{ID: "k_c", TenantID: "tb", Hash: "ha", Prefix: "kg_c", CreatedAt: at(3000 * time.Millisecond)}); err == nil {
			t.Error("AddAPIKey accepted a hash already in use")
		}

		t.Run("revoke", func(t *testing.T) {
			if err := db.RevokeAPIKey(ctx, "tb", "k_a", at(4000*time.Millisecond)); !isNotFound(err) {
				t.Errorf("revoking another tenant's key: err = %v, want ErrNotFound", err)
			}
			if _, err := db.TenantByKeyHash(ctx, "ha"); err != nil {
				t.Errorf("key revoked through the wrong tenant: %v", err)
			}
			if err := db.RevokeAPIKey(ctx, "ta", "ghost", at(4000*time.Millisecond)); !isNotFound(err) {
				t.Errorf("revoking an unknown key: err = %v, want ErrNotFound", err)
			}
			must(t, db.RevokeAPIKey(ctx, "ta", "k_a", at(4000*time.Millisecond)))
			if err := db.RevokeAPIKey(ctx, "ta", "k_a", at(5000*time.Millisecond)); !isNotFound(err) {
				t.Errorf("revoking twice: err = %v, want ErrNotFound", err)
			}
		})

		keys, err := db.ListAPIKeys(ctx, "ta")
		must(t, err)
		revoked := at(4000 * time.Millisecond) // the first revocation stays
		want := []kyc.APIKey{
			{ID: "key_ta", TenantID: "ta", Prefix: "kg_ta", CreatedAt: t0},
			{ID: "k_a", TenantID: "ta", Prefix: "kg_a", CreatedAt: at(2000 * time.Millisecond), RevokedAt: &revoked},
			{ID: "k_b", TenantID: "ta", Prefix: "kg_b", CreatedAt: at(2000 * time.Millisecond)},
		}
		if d := cmp.Diff(want, keys); d != "" {
			t.Errorf("ListAPIKeys (-want +got):\n%s", d)
		}
		keys, err = db.ListAPIKeys(ctx, "ghost")
		must(t, err)
		if len(keys) != 0 {
			t.Errorf("unknown tenant has %d keys", len(keys))
		}
	})
}

func TestUpdateTenantLimits(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta") // quota 100, rate 600
		mkTenant(t, db, "tb")
		limits := func(id string) [2]int {
			t.Helper()
			ts, err := db.ListTenants(ctx)
			must(t, err)
			for _, tn := range ts {
				if tn.ID == id {
					return [2]int{tn.MonthlyQuota, tn.RateLimitPerMinute}
				}
			}
			t.Fatalf("tenant %s missing", id)
			return [2]int{}
		}
		steps := []struct {
			quota, rate *int
			want        [2]int
		}{
			{intp(7), nil, [2]int{7, 600}},
			{nil, intp(42), [2]int{7, 42}},
			{nil, nil, [2]int{7, 42}},
			{intp(0), intp(0), [2]int{0, 0}}, // zero is a value, not "unchanged"
			{intp(1000000), intp(3), [2]int{1000000, 3}},
		}
		for i, s := range steps {
			must(t, db.UpdateTenantLimits(ctx, "ta", s.quota, s.rate))
			if got := limits("ta"); got != s.want {
				t.Errorf("step %d: limits = %v, want %v", i, got, s.want)
			}
		}
		if got := limits("tb"); got != [2]int{100, 600} {
			t.Errorf("other tenant changed: %v", got)
		}
		if err := db.UpdateTenantLimits(ctx, "ghost", intp(1), nil); !isNotFound(err) {
			t.Errorf("unknown tenant: err = %v, want ErrNotFound", err)
		}
	})
}
