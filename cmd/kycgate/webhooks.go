package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	adminapi "github.com/kycgate/kycgate/internal/admin"
	"github.com/kycgate/kycgate/internal/config"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/webhook"
)

// webhookCommands are `kycgate tenant webhook …`: a tenant's endpoints
// for outbound webhooks and their delivery log.
func webhookCommands() []command {
	return []command{
		{path: "tenant webhook add", args: "--tenant ID --url URL [--events LIST] [--json]",
			summary: "add an endpoint; prints its id and signing secret, shown once", setup: webhookAdd},
		{path: "tenant webhook list", args: "--tenant ID [--json]", summary: "list a tenant's endpoints, failing and disabled ones marked", setup: webhookList},
		{path: "tenant webhook remove", args: "--tenant ID --endpoint EP_ID [--json]", summary: "remove an endpoint", setup: webhookRemove},
		{path: "tenant webhook rotate-secret", args: "--tenant ID --endpoint EP_ID [--json]",
			summary: "a new signing secret; the old one keeps signing beside it for 24 h", setup: webhookRotate},
		{path: "tenant webhook deliveries", args: "--tenant ID --endpoint EP_ID [--limit N] [--json]",
			summary: "an endpoint's delivery log, newest first", setup: webhookDeliveries},
		{path: "tenant webhook redeliver", args: "--tenant ID --event MSG_ID [--endpoint EP_ID] [--json]",
			summary: "send an event again (to one endpoint, or to all it went to)", setup: webhookRedeliver},
	}
}

// webhookNotFound turns the store's ErrNotFound into a message naming what.
func webhookNotFound(err error, what, tenant string) error {
	return notFound(err, fmt.Sprintf("%s not found for tenant %s", what, tenant))
}

func webhookAdd(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	url := fs.String("url", "", "endpoint URL, https:// and public unless private addresses are allowed (required)")
	events := fs.String("events", "", "comma-separated event types (default: all)")
	return func(ctx context.Context) error {
		if err := required("tenant webhook add", tenantID, url)("tenant", "url"); err != nil {
			return err
		}
		cfg, err := config.Load(cio.getenv)
		if err != nil {
			return err
		}
		if err := webhook.CheckURL(*url, cfg.WebhookAllowPrivate); err != nil {
			return fmt.Errorf("tenant webhook add: --url: %w", err)
		}
		types, err := kyc.ParseEventTypes(*events)
		if err != nil {
			return fmt.Errorf("tenant webhook add: --events: %w", err)
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			ep, secret, err := svc.AddWebhookEndpoint(ctx, *tenantID, *url, types)
			if err != nil {
				return webhookNotFound(err, "tenant", *tenantID)
			}
			return a.out(map[string]string{"id": ep.ID, "secret": secret},
				fmt.Sprintf("id:     %s\nsecret: %s\n(the secret is shown only now; keep it safe)", ep.ID, secret))
		})
	}
}

func webhookList(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	return func(ctx context.Context) error {
		if err := required("tenant webhook list", tenantID)("tenant"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			eps, err := svc.ListWebhookEndpoints(ctx, *tenantID)
			if err != nil {
				return webhookNotFound(err, "tenant", *tenantID)
			}
			return printEndpoints(cio.stdout, eps, *a.asJSON)
		})
	}
}

func webhookRemove(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	endpoint := fs.String("endpoint", "", "endpoint id (required)")
	return func(ctx context.Context) error {
		if err := required("tenant webhook remove", tenantID, endpoint)("tenant", "endpoint"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			if err := svc.RemoveWebhookEndpoint(ctx, *tenantID, *endpoint); err != nil {
				return webhookNotFound(err, "endpoint "+*endpoint, *tenantID)
			}
			return a.out(map[string]string{"removed": *endpoint}, "removed "+*endpoint)
		})
	}
}

func webhookRotate(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	endpoint := fs.String("endpoint", "", "endpoint id (required)")
	return func(ctx context.Context) error {
		if err := required("tenant webhook rotate-secret", tenantID, endpoint)("tenant", "endpoint"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			secret, err := svc.RotateWebhookSecret(ctx, *tenantID, *endpoint)
			if err != nil {
				return webhookNotFound(err, "endpoint "+*endpoint, *tenantID)
			}
			return a.out(map[string]string{"id": *endpoint, "secret": secret},
				fmt.Sprintf("id:     %s\nsecret: %s\n(the previous secret keeps signing beside it for %s)", *endpoint, secret, kyc.WebhookSecretGrace))
		})
	}
}

func webhookDeliveries(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	endpoint := fs.String("endpoint", "", "endpoint id (required)")
	limit := fs.Int("limit", 50, "how many deliveries to list")
	return func(ctx context.Context) error {
		if err := required("tenant webhook deliveries", tenantID, endpoint)("tenant", "endpoint"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			recs, err := svc.Deliveries(ctx, *tenantID, *endpoint, *limit)
			if err != nil {
				return webhookNotFound(err, "endpoint "+*endpoint, *tenantID)
			}
			return printDeliveries(cio.stdout, recs, *a.asJSON)
		})
	}
}

func webhookRedeliver(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	event := fs.String("event", "", "event id, msg_… (required)")
	endpoint := fs.String("endpoint", "", "only this endpoint (default: every endpoint it went to)")
	return func(ctx context.Context) error {
		if err := required("tenant webhook redeliver", tenantID, event)("tenant", "event"); err != nil {
			return err
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			n, err := svc.Redeliver(ctx, *tenantID, *event, *endpoint)
			if err != nil {
				return webhookNotFound(err, "event "+*event, *tenantID)
			}
			return a.out(map[string]any{"event": *event, "deliveries": n}, fmt.Sprintf("queued %s for %d endpoint(s)", *event, n))
		})
	}
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
	rows := adminapi.Deliveries(recs)
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
