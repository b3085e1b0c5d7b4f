package kyc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Default tenant limits (docs/api.md §1; the quota protects a new partner from a
// surprise Didit bill).
const (
	DefaultRatePerMinute = 600
	DefaultMonthlyQuota  = 1000
)

// NewTenant is what `kycgate tenant create` asks for.
type NewTenant struct {
	Name          string
	MonthlyQuota  *int
	RatePerMinute *int
}

// CreateTenant creates a tenant with the kyc product enabled and its first
// API key. The plain key is returned once and never stored.
func (s *Service) CreateTenant(ctx context.Context, nt NewTenant) (Tenant, string, error) {
	name := strings.TrimSpace(nt.Name)
	if name == "" {
		return Tenant{}, "", errors.New("tenant name is required")
	}
	t := Tenant{ID: newID("tn_"), Name: name, KYCEnabled: true,
		MonthlyQuota: DefaultMonthlyQuota, RateLimitPerMinute: DefaultRatePerMinute, CreatedAt: s.now()}
	if nt.MonthlyQuota != nil {
		t.MonthlyQuota = *nt.MonthlyQuota
	}
	if nt.RatePerMinute != nil {
		t.RateLimitPerMinute = *nt.RatePerMinute
	}
	if t.MonthlyQuota < 0 || t.RateLimitPerMinute < 0 {
		return Tenant{}, "", errors.New("quota and rate limit must be zero (unlimited) or positive")
	}
	plain, key := s.newAPIKey(t.ID)
	if err := s.store.CreateTenant(ctx, t, key); err != nil {
		return Tenant{}, "", fmt.Errorf("create tenant: %w", err)
	}
	s.audit(ctx, t.ID, AuditTenantCreated, "", "ok")
	s.auditObject(ctx, t.ID, AuditKeyAdded, "key", key.ID, "ok")
	return t, plain, nil
}

// AddAPIKey gives a tenant another key (for rotation).
func (s *Service) AddAPIKey(ctx context.Context, tenantID string) (APIKey, string, error) {
	plain, key := s.newAPIKey(tenantID)
	if err := s.store.AddAPIKey(ctx, key); err != nil {
		return APIKey{}, "", fmt.Errorf("add api key: %w", err)
	}
	s.auditObject(ctx, tenantID, AuditKeyAdded, "key", key.ID, "ok")
	return key, plain, nil
}

// RevokeAPIKey stops a key from working; it takes effect on the next request
// (within Config.AuthCacheTTL when a server caches validated keys).
func (s *Service) RevokeAPIKey(ctx context.Context, tenantID, keyID string) error {
	if err := s.store.RevokeAPIKey(ctx, tenantID, keyID, s.now()); err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	s.auditObject(ctx, tenantID, AuditKeyRevoked, "key", keyID, "ok")
	return nil
}

func (s *Service) newAPIKey(tenantID string) (plain string, key APIKey) {
	var b [24]byte
	rand.Read(b[:])
	plain = "kg_" + idEncoding.EncodeToString(b[:])
	return plain, APIKey{ID: newID("key_"), TenantID: tenantID, Hash: s.apiKeyHash(plain),
		Prefix: plain[:10], CreatedAt: s.now()}
}

func (s *Service) apiKeyHash(plain string) string { return s.mac("apikey", plain) }

// Authenticate returns the tenant owning an unrevoked key, and the key's
// hash (a safe name for the key in rate-limit buckets). The lookup is by
// keyed hash, so timing reveals nothing about stored keys.
func (s *Service) Authenticate(ctx context.Context, plain string) (Tenant, string, error) {
	hash, ok := s.keyHash(plain)
	if !ok {
		return Tenant{}, "", ErrNotFound
	}
	if t, ok := s.cachedTenant(hash); ok {
		return t, hash, nil
	}
	t, err := s.storedTenant(ctx, plain, hash)
	if err != nil {
		return Tenant{}, "", err
	}
	return t, hash, nil
}

// storedTenant is the store's answer for a presented key (hash is its
// name under the current secret), cached when caching is on.
func (s *Service) storedTenant(ctx context.Context, plain, hash string) (Tenant, error) {
	now := s.clock.Now()
	t, err := s.store.TenantByKeyHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		t, err = s.previousKey(ctx, plain, hash)
	}
	if err != nil {
		return Tenant{}, err
	}
	s.cacheAuth(hash, t, now)
	return t, nil
}

// previousKey looks for a key the current secret does not know under the
// secrets it replaced, and moves one it finds to hash, its name under the
// current secret, so the previous secrets can be dropped once every key
// was used. Without previous secrets it is ErrNotFound at no cost: the hot
// path pays for rotation only while one is configured, and then only on a
// miss (one more hash per previous secret and one more query).
func (s *Service) previousKey(ctx context.Context, plain, hash string) (Tenant, error) {
	if len(s.cfg.PreviousSecrets) == 0 {
		return Tenant{}, ErrNotFound
	}
	old := make([]string, len(s.cfg.PreviousSecrets))
	for i, p := range s.cfg.PreviousSecrets {
		old[i] = macWith(p, "apikey", plain)
	}
	t, moved, err := s.store.RehashAPIKey(ctx, hash, old)
	if err != nil {
		return Tenant{}, err
	}
	if moved {
		s.log.InfoContext(ctx, "api key re-hashed under the current secret", "tenant", t.ID, "key_prefix", plain[:min(len(plain), 10)])
	}
	return t, nil
}

// keyHash is the stored name of a presented key; ok is false for what
// cannot be a key at all.
func (s *Service) keyHash(plain string) (hash string, ok bool) {
	if plain == "" || len(plain) > 200 {
		return "", false
	}
	return s.apiKeyHash(plain), true
}

// cachedTenant is the tenant of a key validated within the cache's TTL,
// when caching is on.
func (s *Service) cachedTenant(hash string) (Tenant, bool) {
	if s.auth == nil {
		return Tenant{}, false
	}
	return s.auth.get(hash, s.clock.Now())
}

// cacheAuth remembers a key the store just validated, when caching is on.
// Its TTL runs from now, taken before the read, so a key revoked during
// the read is served for at most the TTL.
func (s *Service) cacheAuth(hash string, t Tenant, now time.Time) {
	if s.auth != nil {
		s.auth.put(hash, t, now)
	}
}

// authCache holds keys Authenticate validated, by keyed hash, each until
// its TTL runs out (Config.AuthCacheTTL). Only keys that resolved to a
// tenant are kept, so unknown keys cannot fill it.
type authCache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]authEntry
}

type authEntry struct {
	t     Tenant
	until time.Time
}

// maxAuthEntries bounds the cache; a deployment has far fewer live keys.
const maxAuthEntries = 10000

func newAuthCache(ttl time.Duration) *authCache {
	return &authCache{ttl: ttl, m: make(map[string]authEntry)}
}

func (c *authCache) get(hash string, now time.Time) (Tenant, bool) {
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return Tenant{}, false
	}
	return e.t, true
}

func (c *authCache) put(hash string, t Tenant, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxAuthEntries {
		for h, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, h)
			}
		}
		if len(c.m) >= maxAuthEntries {
			clear(c.m)
		}
	}
	c.m[hash] = authEntry{t: t, until: now.Add(c.ttl)}
}
