package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// The admin API's JSON shapes (api/openapi.yaml, components Admin*).

type tenantJSON struct {
	TenantID           string `json:"tenant_id"`
	Name               string `json:"name"`
	KYCEnabled         bool   `json:"kyc_enabled"`
	MonthlyQuota       int    `json:"monthly_quota"`
	RateLimitPerMinute int    `json:"rate_limit_per_minute"`
	CreatedAt          string `json:"created_at"`
}

func tenantOut(t kyc.Tenant) tenantJSON {
	return tenantJSON{t.ID, t.Name, t.KYCEnabled, t.MonthlyQuota, t.RateLimitPerMinute, rfc(t.CreatedAt)}
}

type usageJSON struct {
	Month        string `json:"month"`
	Sessions     int    `json:"sessions"`
	MonthlyQuota int    `json:"monthly_quota"`
	// Remaining is omitted when the quota is unlimited (0).
	Remaining *int `json:"sessions_remaining,omitempty"`
	CodesSent int  `json:"codes_sent"`
}

func usageOut(u kyc.TenantUsage) usageJSON {
	out := usageJSON{Month: u.Month, Sessions: u.Sessions, MonthlyQuota: u.MonthlyQuota, CodesSent: u.CodesSent}
	if u.MonthlyQuota > 0 {
		left := max(u.MonthlyQuota-u.Sessions, 0)
		out.Remaining = &left
	}
	return out
}

type keyJSON struct {
	KeyID     string `json:"key_id"`
	Prefix    string `json:"prefix"`
	CreatedAt string `json:"created_at"`
	RevokedAt string `json:"revoked_at,omitempty"`
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func rfcp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return rfc(*t)
}

func (a API) listTenants(r *http.Request) (reply, error) {
	ts, err := a.Service.ListTenants(r.Context())
	if err != nil {
		return reply{}, err
	}
	out := make([]tenantJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, tenantOut(t))
	}
	return reply{200, "Tenants", map[string]any{"tenants": out}}, nil
}

func (a API) createTenant(r *http.Request) (reply, error) {
	var in struct {
		Name          string `json:"name"`
		MonthlyQuota  *int   `json:"monthly_quota"`
		RatePerMinute *int   `json:"rate_limit_per_minute"`
	}
	if err := decode(r, &in); err != nil {
		return reply{}, err
	}
	nt := kyc.NewTenant{Name: in.Name, MonthlyQuota: in.MonthlyQuota, RatePerMinute: in.RatePerMinute}
	if err := nt.Validate(); err != nil {
		return reply{}, err
	}
	t, plain, err := a.Service.CreateTenant(r.Context(), nt)
	if err != nil {
		return reply{}, err
	}
	// CreateTenant returns the plain key alone; its id is the tenant's
	// only key's.
	keys, err := a.Service.ListAPIKeys(r.Context(), t.ID)
	if err != nil {
		return reply{}, err
	}
	if len(keys) != 1 {
		return reply{}, fmt.Errorf("admin: new tenant %s has %d keys", t.ID, len(keys))
	}
	k := keys[0]
	return reply{201, "Tenant created; its API key is shown only now", map[string]any{
		"tenant": tenantOut(t), "key": keyJSON{k.ID, k.Prefix, rfc(k.CreatedAt), ""}, "api_key": plain}}, nil
}

func (a API) showTenant(r *http.Request) (reply, error) {
	t, u, err := a.Service.TenantWithUsage(r.Context(), r.PathValue("tenant_id"))
	if err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	return reply{200, "Tenant", map[string]any{"tenant": tenantOut(t), "usage": usageOut(u)}}, nil
}

// patchTenant changes the fields given; the limits first, then the
// product, each a change of its own in the audit log.
func (a API) patchTenant(r *http.Request) (reply, error) {
	var in struct {
		MonthlyQuota  *int  `json:"monthly_quota"`
		RatePerMinute *int  `json:"rate_limit_per_minute"`
		KYCEnabled    *bool `json:"kyc_enabled"`
	}
	if err := decode(r, &in); err != nil {
		return reply{}, err
	}
	if in.MonthlyQuota == nil && in.RatePerMinute == nil && in.KYCEnabled == nil {
		return reply{}, badRequest("Give monthly_quota, rate_limit_per_minute and/or kyc_enabled")
	}
	id := r.PathValue("tenant_id")
	l := kyc.TenantLimits{MonthlyQuota: in.MonthlyQuota, RatePerMinute: in.RatePerMinute}
	if err := l.Validate(); err != nil {
		return reply{}, err
	}
	if err := a.Service.UpdateTenantLimits(r.Context(), id, l); err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	if in.KYCEnabled != nil {
		if err := a.Service.SetKYCEnabled(r.Context(), id, *in.KYCEnabled); err != nil {
			return reply{}, notFound(err, "Tenant")
		}
	}
	t, err := a.Service.Tenant(r.Context(), id)
	if err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	return reply{200, "Tenant updated", map[string]any{"tenant": tenantOut(t)}}, nil
}

func (a API) usage(r *http.Request) (reply, error) {
	u, err := a.Service.Usage(r.Context(), r.PathValue("tenant_id"))
	if err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	return reply{200, "Usage this month", usageOut(u)}, nil
}

func (a API) listKeys(r *http.Request) (reply, error) {
	keys, err := a.Service.ListAPIKeys(r.Context(), r.PathValue("tenant_id"))
	if err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	out := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyJSON{k.ID, k.Prefix, rfc(k.CreatedAt), rfcp(k.RevokedAt)})
	}
	return reply{200, "API keys", map[string]any{"keys": out}}, nil
}

func (a API) addKey(r *http.Request) (reply, error) {
	k, plain, err := a.Service.AddAPIKey(r.Context(), r.PathValue("tenant_id"))
	if err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	return reply{201, "API key added; it is shown only now", map[string]any{
		"key": keyJSON{k.ID, k.Prefix, rfc(k.CreatedAt), ""}, "api_key": plain}}, nil
}

func (a API) revokeKey(r *http.Request) (reply, error) {
	id := r.PathValue("key_id")
	if err := a.Service.RevokeAPIKey(r.Context(), r.PathValue("tenant_id"), id); err != nil {
		return reply{}, notFound(err, "Active API key")
	}
	return reply{200, "API key revoked", map[string]any{"key_id": id}}, nil
}
