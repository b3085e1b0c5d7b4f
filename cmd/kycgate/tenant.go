package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// tenantCommands are the partner administration commands. Each opens the
// database named by the configuration, and what it changes is audited as
// the command line's doing.
func tenantCommands() []command {
	return append([]command{
		{path: "tenant create", args: "--name NAME [--quota N] [--rate-limit-per-minute N] [--json]",
			summary: "create a tenant (a partner app) and its first API key, shown once", setup: tenantCreate},
		{path: "tenant list", args: "[--json]", summary: "list the tenants", setup: tenantList},
		{path: "tenant show", args: "--tenant ID [--json]", summary: "a tenant's settings and this month's usage (sessions against quota, codes sent)", setup: tenantShow},
		{path: "tenant key add", args: "--tenant ID [--json]", summary: "add an API key to a tenant, shown once", setup: keyAdd},
		{path: "tenant key list", args: "--tenant ID [--json]", summary: "list a tenant's API keys (their prefixes, never the keys)", setup: keyList},
		{path: "tenant key revoke", args: "--tenant ID --key KEY_ID [--json]", summary: "revoke an API key at once", setup: keyRevoke},
		{path: "tenant set-quota", args: "--tenant ID [--quota N] [--rate-limit-per-minute N] [--json]",
			summary: "change a tenant's monthly session quota and per-key rate limit", setup: setQuota},
		{path: "tenant set-products", args: "--tenant ID --kyc on|off [--json]", summary: "enable or disable the kyc product", setup: setProducts},
	}, append(webhookCommands(), append(auditCommands(), personCommands()...)...)...)
}

// admin is what every tenant command shares: the --json flag, and the
// service and database it opens.
type admin struct {
	cio    cliIO
	asJSON *bool
}

func newAdmin(fs *flag.FlagSet, cio cliIO) *admin {
	return &admin{cio: cio, asJSON: fs.Bool("json", false, "print JSON")}
}

// with opens the service for fn and closes it after. fn gets only the
// service: the CLI changes and reads state through the same kyc methods
// as the admin API, and the audit log names it as the actor.
func (a *admin) with(ctx context.Context, fn func(context.Context, *kyc.Service) error) error {
	svc, db, err := openService(ctx, a.cio.getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(kyc.WithActor(ctx, kyc.Actor{Kind: kyc.ActorCLI}), svc)
}

// out prints v as JSON under --json, text otherwise.
func (a *admin) out(v any, text string) error {
	if *a.asJSON {
		return json.NewEncoder(a.cio.stdout).Encode(v)
	}
	_, err := fmt.Fprintln(a.cio.stdout, text)
	return err
}

// required returns an error naming the first empty flag.
func required(cmd string, flags ...*string) func(names ...string) error {
	return func(names ...string) error {
		for i, v := range flags {
			if *v == "" {
				return fmt.Errorf("%s: --%s is required", cmd, names[i])
			}
		}
		return nil
	}
}

// notFound turns the store's ErrNotFound into msg.
func notFound(err error, msg string) error {
	if errors.Is(err, kyc.ErrNotFound) {
		return errors.New(msg)
	}
	return err
}

func tenantCreate(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	name := fs.String("name", "", "tenant name (required)")
	var quota, rate optInt
	fs.Var(&quota, "quota", "monthly session quota (0 = unlimited)")
	fs.Var(&rate, "rate-limit-per-minute", "requests per minute per key (0 = unlimited)")
	return func(ctx context.Context) error {
		if err := required("tenant create", name)("name"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			t, key, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: *name, MonthlyQuota: quota.ptr(), RatePerMinute: rate.ptr()})
			if err != nil {
				return err
			}
			return a.out(map[string]string{"tenant_id": t.ID, "api_key": key},
				fmt.Sprintf("tenant_id: %s\napi_key:   %s\n(the key is shown only now; keep it safe)", t.ID, key))
		})
	}
}

func tenantList(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	return func(ctx context.Context) error {
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			ts, err := svc.ListTenants(ctx)
			if err != nil {
				return err
			}
			if *a.asJSON {
				return printTenantsJSON(cio.stdout, ts)
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TENANT\tNAME\tKYC\tQUOTA/MONTH\tRATE/MIN")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\n", t.ID, t.Name, t.KYCEnabled, t.MonthlyQuota, t.RateLimitPerMinute)
			}
			return tw.Flush()
		})
	}
}

func tenantShow(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	return func(ctx context.Context) error {
		if err := required("tenant show", tenantID)("tenant"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			t, u, err := svc.TenantWithUsage(ctx, *tenantID)
			if err != nil {
				return notFound(err, fmt.Sprintf("tenant %s not found", *tenantID))
			}
			quota := "unlimited"
			if t.MonthlyQuota > 0 {
				quota = fmt.Sprint(t.MonthlyQuota)
			}
			return a.out(map[string]any{"tenant_id": t.ID, "name": t.Name, "kyc_enabled": t.KYCEnabled,
				"monthly_quota": t.MonthlyQuota, "rate_limit_per_minute": t.RateLimitPerMinute,
				"created_at": t.CreatedAt.UTC().Format(time.RFC3339), "month": u.Month,
				"sessions": u.Sessions, "codes_sent": u.CodesSent},
				fmt.Sprintf("tenant_id:   %s\nname:        %s\nkyc:         %v\nquota/month: %s\nrate/min:    %d\ncreated:     %s\n%s:     %d sessions, %d codes sent",
					t.ID, t.Name, t.KYCEnabled, quota, t.RateLimitPerMinute, t.CreatedAt.UTC().Format(time.RFC3339), u.Month, u.Sessions, u.CodesSent))
		})
	}
}

func printTenantsJSON(w io.Writer, ts []kyc.Tenant) error {
	type row struct {
		ID           string `json:"tenant_id"`
		Name         string `json:"name"`
		KYC          bool   `json:"kyc_enabled"`
		Quota        int    `json:"monthly_quota"`
		RatePerMin   int    `json:"rate_limit_per_minute"`
		CreatedAtRFC string `json:"created_at"`
	}
	rows := []row{}
	for _, t := range ts {
		rows = append(rows, row{t.ID, t.Name, t.KYCEnabled, t.MonthlyQuota, t.RateLimitPerMinute, t.CreatedAt.Format("2006-01-02T15:04:05Z")})
	}
	return json.NewEncoder(w).Encode(rows)
}

func keyAdd(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	return func(ctx context.Context) error {
		if err := required("tenant key add", tenantID)("tenant"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			k, plain, err := svc.AddAPIKey(ctx, *tenantID)
			if err != nil {
				return notFound(err, fmt.Sprintf("tenant %s not found", *tenantID))
			}
			return a.out(map[string]string{"tenant_id": *tenantID, "key_id": k.ID, "api_key": plain},
				fmt.Sprintf("key_id:  %s\napi_key: %s\n(the key is shown only now; keep it safe)", k.ID, plain))
		})
	}
}

func keyList(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	return func(ctx context.Context) error {
		if err := required("tenant key list", tenantID)("tenant"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			keys, err := svc.ListAPIKeys(ctx, *tenantID)
			if err != nil {
				return notFound(err, fmt.Sprintf("tenant %s not found", *tenantID))
			}
			type row struct {
				ID        string `json:"key_id"`
				Prefix    string `json:"prefix"`
				CreatedAt string `json:"created_at"`
				RevokedAt string `json:"revoked_at,omitempty"`
			}
			rows := []row{}
			for _, k := range keys {
				r := row{ID: k.ID, Prefix: k.Prefix, CreatedAt: k.CreatedAt.Format(time.RFC3339)}
				if k.RevokedAt != nil {
					r.RevokedAt = k.RevokedAt.Format(time.RFC3339)
				}
				rows = append(rows, r)
			}
			if *a.asJSON {
				return json.NewEncoder(cio.stdout).Encode(rows)
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tPREFIX\tCREATED\tREVOKED")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\n", r.ID, r.Prefix, r.CreatedAt, r.RevokedAt)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return warnDisabledEndpoints(ctx, cio.stdout, svc, *tenantID)
		})
	}
}

// warnDisabledEndpoints follows a tenant's key list with its disabled
// webhook endpoints: an operator looking at a partner's keys is the one
// to notice that the partner hears nothing any more.
func warnDisabledEndpoints(ctx context.Context, w io.Writer, svc *kyc.Service, tenantID string) error {
	eps, err := svc.ListWebhookEndpoints(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.DisabledAt != nil {
			fmt.Fprintf(w, "\nwebhook endpoint %s (%s) is DISABLED since %s: %s\n  (kycgate tenant webhook list --tenant %s)\n",
				ep.ID, ep.URL, ep.DisabledAt.UTC().Format(time.RFC3339), ep.DisabledReason, tenantID)
		}
	}
	return nil
}

func keyRevoke(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	keyID := fs.String("key", "", "API key id (required)")
	return func(ctx context.Context) error {
		if err := required("tenant key revoke", tenantID, keyID)("tenant", "key"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			if err := svc.RevokeAPIKey(ctx, *tenantID, *keyID); err != nil {
				return notFound(err, fmt.Sprintf("no active key %s for tenant %s", *keyID, *tenantID))
			}
			return a.out(map[string]string{"revoked": *keyID}, "revoked "+*keyID)
		})
	}
}

func setQuota(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	var quota, rate optInt
	fs.Var(&quota, "quota", "monthly session quota (0 = unlimited)")
	fs.Var(&rate, "rate-limit-per-minute", "requests per minute per key (0 = unlimited)")
	return func(ctx context.Context) error {
		if err := required("tenant set-quota", tenantID)("tenant"); err != nil {
			return err
		}
		if !quota.set && !rate.set {
			return errors.New("tenant set-quota: give --quota and/or --rate-limit-per-minute")
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			if err := svc.UpdateTenantLimits(ctx, *tenantID, kyc.TenantLimits{MonthlyQuota: quota.ptr(), RatePerMinute: rate.ptr()}); err != nil {
				return notFound(err, fmt.Sprintf("tenant %s not found", *tenantID))
			}
			return a.out(map[string]string{"updated": *tenantID}, "updated "+*tenantID)
		})
	}
}

func setProducts(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	kycOn := fs.String("kyc", "", "on or off (required)")
	return func(ctx context.Context) error {
		if err := required("tenant set-products", tenantID)("tenant"); err != nil {
			return err
		}
		if *kycOn != "on" && *kycOn != "off" {
			return errors.New("tenant set-products: --kyc must be on or off")
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			if err := svc.SetKYCEnabled(ctx, *tenantID, *kycOn == "on"); err != nil {
				return notFound(err, fmt.Sprintf("tenant %s not found", *tenantID))
			}
			return a.out(map[string]any{"updated": *tenantID, "kyc": *kycOn == "on"}, "updated "+*tenantID)
		})
	}
}

// optInt is an int flag that knows whether it was given.
type optInt struct {
	v   int
	set bool
}

func (o *optInt) String() string { return fmt.Sprint(o.v) }

func (o *optInt) Set(s string) error {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != s {
		return fmt.Errorf("want a whole number ≥ 0, got %q", s)
	}
	o.v, o.set = n, true
	return nil
}

func (o *optInt) ptr() *int {
	if !o.set {
		return nil
	}
	return &o.v
}
