package kyc

import (
	"context"
	"fmt"
	"strings"
)

// The operator's side of the service: what the admin API and the command
// line both call, so neither reads or writes the store itself.

// CodeInvalidRequest is an operator's request the rules refuse (a negative
// quota, an empty name); the admin API answers it 400.
const CodeInvalidRequest = "invalid_request"

func invalid(msg string) *Error { return NewError(CodeInvalidRequest, msg) }

// Validate checks what CreateTenant would refuse, as an *Error callers can
// show.
func (nt NewTenant) Validate() error {
	if strings.TrimSpace(nt.Name) == "" {
		return invalid("name is required")
	}
	return TenantLimits{MonthlyQuota: nt.MonthlyQuota, RatePerMinute: nt.RatePerMinute}.Validate()
}

// TenantLimits changes a tenant's limits; nil fields stay as they are.
type TenantLimits struct {
	MonthlyQuota  *int // 0 = unlimited
	RatePerMinute *int // 0 = unlimited
}

// Validate refuses negative limits.
func (l TenantLimits) Validate() error {
	if l.MonthlyQuota != nil && *l.MonthlyQuota < 0 {
		return invalid("monthly_quota must be zero (unlimited) or positive")
	}
	if l.RatePerMinute != nil && *l.RatePerMinute < 0 {
		return invalid("rate_limit_per_minute must be zero (unlimited) or positive")
	}
	return nil
}

// MonthUsage is what a tenant used in one calendar month (UTC).
type MonthUsage struct {
	Month     string // "2006-01"
	Sessions  int    // quota units: sessions created, or being created now
	CodesSent int    // verification codes mailed
}

// TenantUsage is a tenant's use of this month against its quota.
type TenantUsage struct {
	MonthUsage
	MonthlyQuota int // 0 = unlimited
}

// Tenant finds a tenant by id (ErrNotFound).
func (s *Service) Tenant(ctx context.Context, id string) (Tenant, error) {
	t, err := s.store.Tenant(ctx, id)
	if err != nil {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, err)
	}
	return t, nil
}

// ListTenants lists every tenant, oldest first.
func (s *Service) ListTenants(ctx context.Context) ([]Tenant, error) {
	ts, err := s.store.ListTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return ts, nil
}

// ListAPIKeys lists a tenant's keys, revoked ones too (ErrNotFound when
// the tenant does not exist). Only their prefixes and ids are known.
func (s *Service) ListAPIKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	if _, err := s.Tenant(ctx, tenantID); err != nil {
		return nil, err
	}
	keys, err := s.store.ListAPIKeys(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// UpdateTenantLimits changes a tenant's monthly quota and per-key rate
// limit. A lower quota than what the month used already only stops new
// sessions.
func (s *Service) UpdateTenantLimits(ctx context.Context, tenantID string, l TenantLimits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if l.MonthlyQuota == nil && l.RatePerMinute == nil {
		return nil
	}
	if err := s.store.UpdateTenantLimits(ctx, tenantID, l.MonthlyQuota, l.RatePerMinute); err != nil {
		return fmt.Errorf("update tenant limits: %w", err)
	}
	s.audit(ctx, tenantID, AuditTenantLimits, "", "ok")
	return nil
}

// SetKYCEnabled turns the kyc product on or off for a tenant; off, its
// keys still authenticate but every KYC route refuses them.
func (s *Service) SetKYCEnabled(ctx context.Context, tenantID string, enabled bool) error {
	if err := s.store.SetKYCEnabled(ctx, tenantID, enabled); err != nil {
		return fmt.Errorf("set products: %w", err)
	}
	s.audit(ctx, tenantID, AuditTenantProducts, "", "ok")
	return nil
}

// Usage is the tenant's use of the current month against its quota.
func (s *Service) Usage(ctx context.Context, tenantID string) (TenantUsage, error) {
	t, err := s.Tenant(ctx, tenantID)
	if err != nil {
		return TenantUsage{}, err
	}
	return s.usageOf(ctx, t)
}

// usageOf is Usage for a tenant already read.
func (s *Service) usageOf(ctx context.Context, t Tenant) (TenantUsage, error) {
	u, err := s.store.MonthUsage(ctx, t.ID, s.now().Format("2006-01"))
	if err != nil {
		return TenantUsage{}, fmt.Errorf("usage: %w", err)
	}
	return TenantUsage{MonthUsage: u, MonthlyQuota: t.MonthlyQuota}, nil
}

// TenantWithUsage is a tenant's settings and this month's usage together.
func (s *Service) TenantWithUsage(ctx context.Context, tenantID string) (Tenant, TenantUsage, error) {
	t, err := s.Tenant(ctx, tenantID)
	if err != nil {
		return Tenant{}, TenantUsage{}, err
	}
	u, err := s.usageOf(ctx, t)
	return t, u, err
}

// ListWebhookEndpoints lists a tenant's endpoints (ErrNotFound when the
// tenant does not exist).
func (s *Service) ListWebhookEndpoints(ctx context.Context, tenantID string) ([]WebhookEndpoint, error) {
	if _, err := s.Tenant(ctx, tenantID); err != nil {
		return nil, err
	}
	eps, err := s.store.ListWebhookEndpoints(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return eps, nil
}

// MaxDeliveries bounds one read of a delivery log.
const MaxDeliveries = 1000

// Deliveries is an endpoint's delivery log, newest first, at most limit
// (1 to MaxDeliveries) lines; ErrNotFound when the tenant has no such
// endpoint.
func (s *Service) Deliveries(ctx context.Context, tenantID, endpointID string, limit int) ([]DeliveryRecord, error) {
	if _, err := s.store.WebhookEndpoint(ctx, tenantID, endpointID); err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	recs, err := s.store.ListDeliveries(ctx, tenantID, endpointID, min(max(limit, 1), MaxDeliveries))
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	return recs, nil
}
