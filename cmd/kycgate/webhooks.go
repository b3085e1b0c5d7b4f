package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kycgate/kycgate/internal/config"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/webhook"
)

// webhookFlags are the flags of `tenant webhook …`.
type webhookFlags struct {
	sub                                string
	tenant, url, events, endpoint, evt string
	limit                              int
	asJSON                             bool
}

func parseWebhookFlags(args []string) (webhookFlags, error) {
	if len(args) == 0 {
		return webhookFlags{}, errors.New("tenant webhook: want add, list, remove, rotate-secret, deliveries or redeliver")
	}
	f := webhookFlags{sub: args[0]}
	fs := flag.NewFlagSet("tenant webhook "+f.sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.tenant, "tenant", "", "tenant id")
	fs.StringVar(&f.url, "url", "", "endpoint URL")
	fs.StringVar(&f.events, "events", "", "comma-separated event types (default: all)")
	fs.StringVar(&f.endpoint, "endpoint", "", "endpoint id")
	fs.StringVar(&f.evt, "event", "", "event id (msg_…)")
	fs.IntVar(&f.limit, "limit", 50, "how many deliveries to list")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return f, fmt.Errorf("tenant webhook %s: %w", f.sub, err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("tenant webhook %s: unexpected argument %q", f.sub, fs.Arg(0))
	}
	need := map[string][]string{
		"add": {"tenant", "url"}, "list": {"tenant"}, "remove": {"tenant", "endpoint"},
		"rotate-secret": {"tenant", "endpoint"}, "deliveries": {"tenant", "endpoint"}, "redeliver": {"tenant", "event"},
	}
	names, ok := need[f.sub]
	if !ok {
		return f, fmt.Errorf("tenant webhook: unknown command %q", f.sub)
	}
	vals := map[string]string{"tenant": f.tenant, "url": f.url, "endpoint": f.endpoint, "event": f.evt}
	for _, n := range names {
		if vals[n] == "" {
			return f, fmt.Errorf("tenant webhook %s: --%s is required", f.sub, n)
		}
	}
	return f, nil
}

// tenantWebhook runs `kycgate tenant webhook …`.
func tenantWebhook(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	f, err := parseWebhookFlags(args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	svc, db, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	out := func(v any, text string) error {
		if f.asJSON {
			return json.NewEncoder(stdout).Encode(v)
		}
		_, err := fmt.Fprintln(stdout, text)
		return err
	}
	notFound := func(err error, what string) error {
		if errors.Is(err, kyc.ErrNotFound) {
			return fmt.Errorf("%s not found for tenant %s", what, f.tenant)
		}
		return err
	}
	switch f.sub {
	case "add":
		if err := webhook.CheckURL(f.url, cfg.WebhookAllowPrivate); err != nil {
			return fmt.Errorf("tenant webhook add: --url: %w", err)
		}
		events, err := kyc.ParseEventTypes(f.events)
		if err != nil {
			return fmt.Errorf("tenant webhook add: --events: %w", err)
		}
		ep, secret, err := svc.AddWebhookEndpoint(ctx, f.tenant, f.url, events)
		if err != nil {
			return notFound(err, "tenant")
		}
		return out(map[string]string{"id": ep.ID, "secret": secret},
			fmt.Sprintf("id:     %s\nsecret: %s\n(the secret is shown only now; keep it safe)", ep.ID, secret))
	case "list":
		eps, err := db.ListWebhookEndpoints(ctx, f.tenant)
		if err != nil {
			return err
		}
		return printEndpoints(stdout, eps, f.asJSON)
	case "remove":
		if err := db.RemoveWebhookEndpoint(ctx, f.tenant, f.endpoint); err != nil {
			return notFound(err, "endpoint "+f.endpoint)
		}
		return out(map[string]string{"removed": f.endpoint}, "removed "+f.endpoint)
	case "rotate-secret":
		secret, err := svc.RotateWebhookSecret(ctx, f.tenant, f.endpoint)
		if err != nil {
			return notFound(err, "endpoint "+f.endpoint)
		}
		return out(map[string]string{"id": f.endpoint, "secret": secret},
			fmt.Sprintf("id:     %s\nsecret: %s\n(the previous secret keeps signing beside it for %s)", f.endpoint, secret, kyc.WebhookSecretGrace))
	case "deliveries":
		if _, err := db.WebhookEndpoint(ctx, f.tenant, f.endpoint); err != nil {
			return notFound(err, "endpoint "+f.endpoint)
		}
		recs, err := db.ListDeliveries(ctx, f.tenant, f.endpoint, max(f.limit, 1))
		if err != nil {
			return err
		}
		return printDeliveries(stdout, recs, f.asJSON)
	case "redeliver":
		n, err := svc.Redeliver(ctx, f.tenant, f.evt, f.endpoint)
		if err != nil {
			return notFound(err, "event "+f.evt)
		}
		return out(map[string]any{"event": f.evt, "deliveries": n}, fmt.Sprintf("queued %s for %d endpoint(s)", f.evt, n))
	}
	return nil
}

func rfc(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func printEndpoints(w io.Writer, eps []kyc.WebhookEndpoint, asJSON bool) error {
	type row struct {
		ID             string   `json:"id"`
		URL            string   `json:"url"`
		Events         []string `json:"events"`
		Enabled        bool     `json:"enabled"`
		DisabledAt     string   `json:"disabled_at,omitempty"`
		DisabledReason string   `json:"disabled_reason,omitempty"`
		FailingSince   string   `json:"failing_since,omitempty"`
		CreatedAt      string   `json:"created_at"`
	}
	rows := []row{}
	for _, ep := range eps {
		events := ep.Events
		if len(events) == 0 {
			events = []string{"*"}
		}
		rows = append(rows, row{ID: ep.ID, URL: ep.URL, Events: events, Enabled: ep.DisabledAt == nil,
			DisabledAt: rfc(ep.DisabledAt), DisabledReason: ep.DisabledReason, FailingSince: rfc(ep.FailingSince),
			CreatedAt: ep.CreatedAt.UTC().Format(time.RFC3339)})
	}
	if asJSON {
		return json.NewEncoder(w).Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tURL\tEVENTS\tSTATE")
	for _, r := range rows {
		state := "enabled"
		switch {
		case !r.Enabled:
			state = "DISABLED " + r.DisabledAt + ": " + r.DisabledReason
		case r.FailingSince != "":
			state = "failing since " + r.FailingSince
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.URL, strings.Join(r.Events, ","), state)
	}
	return tw.Flush()
}

func printDeliveries(w io.Writer, recs []kyc.DeliveryRecord, asJSON bool) error {
	type row struct {
		EventID     string `json:"event_id"`
		Type        string `json:"type"`
		State       string `json:"state"`
		Attempts    int    `json:"attempts"`
		CreatedAt   string `json:"created_at"`
		NextAt      string `json:"next_attempt_at,omitempty"`
		LastAt      string `json:"last_attempt_at,omitempty"`
		LastStatus  int    `json:"last_status,omitempty"`
		LastError   string `json:"last_error,omitempty"`
		DeliveredAt string `json:"delivered_at,omitempty"`
	}
	rows := []row{}
	for _, r := range recs {
		x := row{EventID: r.EventID, Type: r.Type, State: r.State, Attempts: r.Attempts,
			CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339), LastAt: rfc(r.LastAt), LastStatus: r.LastStatus,
			LastError: r.LastError, DeliveredAt: rfc(r.DeliveredAt)}
		if r.State == kyc.DeliveryPending {
			x.NextAt = r.NextAt.UTC().Format(time.RFC3339)
		}
		rows = append(rows, x)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tSTATE\tATTEMPTS\tLAST\tSTATUS\tERROR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.EventID, r.Type, r.State, r.Attempts, r.LastAt, r.LastStatus, r.LastError)
	}
	return tw.Flush()
}
