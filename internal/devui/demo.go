package devui

import (
	"context"
	"fmt"

	"github.com/kycgate/kycgate/internal/kyc"
)

// DemoTenantName names the tenant development mode keeps for the demo page.
const DemoTenantName = "Demo"

// Tenants lists tenants (store.DB).
type Tenants interface {
	ListTenants(ctx context.Context) ([]kyc.Tenant, error)
}

// Keys creates tenants and keys (kyc.Service).
type Keys interface {
	CreateTenant(ctx context.Context, nt kyc.NewTenant) (kyc.Tenant, string, error)
	AddAPIKey(ctx context.Context, tenantID string) (kyc.APIKey, string, error)
}

// EnsureDemoTenant finds the tenant named Demo, or creates it, and returns
// a key for it. Only keyed hashes are stored, so an earlier start's key
// cannot be read back: each start adds one. Older keys are left alone
// rather than revoked, since a developer may have made a tenant of that
// name and use its keys themselves.
func EnsureDemoTenant(ctx context.Context, tenants Tenants, keys Keys) (tenantID, key string, err error) {
	all, err := tenants.ListTenants(ctx)
	if err != nil {
		return "", "", fmt.Errorf("demo tenant: list tenants: %w", err)
	}
	for _, t := range all {
		if t.Name == DemoTenantName {
			_, plain, err := keys.AddAPIKey(ctx, t.ID)
			if err != nil {
				return "", "", fmt.Errorf("demo tenant: %w", err)
			}
			return t.ID, plain, nil
		}
	}
	t, plain, err := keys.CreateTenant(ctx, kyc.NewTenant{Name: DemoTenantName})
	if err != nil {
		return "", "", fmt.Errorf("demo tenant: %w", err)
	}
	return t.ID, plain, nil
}
