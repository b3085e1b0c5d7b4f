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

func tenant(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("tenant: want create, list, key add, key revoke, set-quota, set-products or webhook")
	}
	sub, args := args[0], args[1:]
	if sub == "webhook" {
		return tenantWebhook(ctx, args, getenv, stdout)
	}
	if sub == "key" {
		if len(args) == 0 {
			return errors.New("tenant key: want add, list or revoke")
		}
		sub, args = "key "+args[0], args[1:]
	}
	fs := flag.NewFlagSet("tenant "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "tenant name")
	tenantID := fs.String("tenant", "", "tenant id")
	keyID := fs.String("key", "", "api key id")
	asJSON := fs.Bool("json", false, "print JSON")
	kycOn := fs.String("kyc", "", "enable (on) or disable (off) the kyc product")
	var quota, rate optInt
	fs.Var(&quota, "quota", "monthly session quota (0 = unlimited)")
	fs.Var(&rate, "rate-limit-per-minute", "requests per minute per key (0 = unlimited)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("tenant %s: %w", sub, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tenant %s: unexpected argument %q", sub, fs.Arg(0))
	}
	need := func(v *string, flagName string) error {
		if *v == "" {
			return fmt.Errorf("tenant %s: --%s is required", sub, flagName)
		}
		return nil
	}
	switch sub {
	case "create":
		if err := need(name, "name"); err != nil {
			return err
		}
	case "set-products":
		if err := need(tenantID, "tenant"); err != nil {
			return err
		}
		if *kycOn != "on" && *kycOn != "off" {
			return errors.New("tenant set-products: --kyc must be on or off")
		}
	case "key add", "key list", "set-quota":
		if err := need(tenantID, "tenant"); err != nil {
			return err
		}
	case "key revoke":
		if err := need(tenantID, "tenant"); err != nil {
			return err
		}
		if err := need(keyID, "key"); err != nil {
			return err
		}
	case "list":
	default:
		return fmt.Errorf("tenant: unknown command %q", sub)
	}

	svc, db, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	out := func(v any, text string) error {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(v)
		}
		_, err := fmt.Fprintln(stdout, text)
		return err
	}

	switch sub {
	case "create":
		t, key, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: *name, MonthlyQuota: quota.ptr(), RatePerMinute: rate.ptr()})
		if err != nil {
			return err
		}
		return out(map[string]string{"tenant_id": t.ID, "api_key": key},
			fmt.Sprintf("tenant_id: %s\napi_key:   %s\n(the key is shown only now; keep it safe)", t.ID, key))
	case "list":
		ts, err := db.ListTenants(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
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
			return json.NewEncoder(stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tNAME\tKYC\tQUOTA/MONTH\tRATE/MIN")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\n", t.ID, t.Name, t.KYCEnabled, t.MonthlyQuota, t.RateLimitPerMinute)
		}
		return tw.Flush()
	case "key add":
		k, plain, err := svc.AddAPIKey(ctx, *tenantID)
		if errors.Is(err, kyc.ErrNotFound) {
			return fmt.Errorf("tenant %s not found", *tenantID)
		}
		if err != nil {
			return err
		}
		return out(map[string]string{"tenant_id": *tenantID, "key_id": k.ID, "api_key": plain},
			fmt.Sprintf("key_id:  %s\napi_key: %s\n(the key is shown only now; keep it safe)", k.ID, plain))
	case "key list":
		keys, err := db.ListAPIKeys(ctx, *tenantID)
		if err != nil {
			return err
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
		if *asJSON {
			return json.NewEncoder(stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tPREFIX\tCREATED\tREVOKED")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\n", r.ID, r.Prefix, r.CreatedAt, r.RevokedAt)
		}
		return tw.Flush()
	case "key revoke":
		err := svc.RevokeAPIKey(ctx, *tenantID, *keyID)
		if errors.Is(err, kyc.ErrNotFound) {
			return fmt.Errorf("no active key %s for tenant %s", *keyID, *tenantID)
		}
		if err != nil {
			return err
		}
		return out(map[string]string{"revoked": *keyID}, "revoked "+*keyID)
	case "set-products":
		err := db.SetKYCEnabled(ctx, *tenantID, *kycOn == "on")
		if errors.Is(err, kyc.ErrNotFound) {
			return fmt.Errorf("tenant %s not found", *tenantID)
		}
		if err != nil {
			return err
		}
		return out(map[string]any{"updated": *tenantID, "kyc": *kycOn == "on"}, "updated "+*tenantID)
	case "set-quota":
		if !quota.set && !rate.set {
			return errors.New("tenant set-quota: give --quota and/or --rate-limit-per-minute")
		}
		err := db.UpdateTenantLimits(ctx, *tenantID, quota.ptr(), rate.ptr())
		if errors.Is(err, kyc.ErrNotFound) {
			return fmt.Errorf("tenant %s not found", *tenantID)
		}
		if err != nil {
			return err
		}
		return out(map[string]string{"updated": *tenantID}, "updated "+*tenantID)
	}
	return nil
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
