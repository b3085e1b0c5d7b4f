package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

type endpointJSON struct {
	EndpointID     string   `json:"endpoint_id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"` // ["*"]: every type
	Enabled        bool     `json:"enabled"`
	DisabledAt     string   `json:"disabled_at,omitempty"`
	DisabledReason string   `json:"disabled_reason,omitempty"`
	FailingSince   string   `json:"failing_since,omitempty"`
	CreatedAt      string   `json:"created_at"`
}

func endpointOut(ep kyc.WebhookEndpoint) endpointJSON {
	events := ep.Events
	if len(events) == 0 {
		events = []string{"*"}
	}
	return endpointJSON{ep.ID, ep.URL, events, ep.DisabledAt == nil, rfcp(ep.DisabledAt), ep.DisabledReason,
		rfcp(ep.FailingSince), rfc(ep.CreatedAt)}
}

// Delivery is one row of an endpoint's delivery log as the admin API and
// the CLI's --json print it, so the two read alike.
type Delivery struct {
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

func (a API) listEndpoints(r *http.Request) (reply, error) {
	eps, err := a.Service.ListWebhookEndpoints(r.Context(), r.PathValue("tenant_id"))
	if err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	out := make([]endpointJSON, 0, len(eps))
	for _, ep := range eps {
		out = append(out, endpointOut(ep))
	}
	return reply{200, "Webhook endpoints", map[string]any{"endpoints": out}}, nil
}

func (a API) addEndpoint(r *http.Request) (reply, error) {
	var in struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if err := decode(r, &in); err != nil {
		return reply{}, err
	}
	if in.URL == "" {
		return reply{}, badRequest("url is required")
	}
	if a.CheckWebhookURL != nil {
		if err := a.CheckWebhookURL(in.URL); err != nil {
			return reply{}, badRequest("url: " + err.Error())
		}
	}
	types, err := kyc.ParseEventTypes(strings.Join(in.Events, ","))
	if err != nil {
		return reply{}, badRequest("events: " + err.Error())
	}
	id := r.PathValue("tenant_id")
	if _, err := a.Service.Tenant(r.Context(), id); err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	ep, secret, err := a.Service.AddWebhookEndpoint(r.Context(), id, in.URL, types)
	if err != nil {
		return reply{}, notFound(err, "Tenant")
	}
	return reply{201, "Webhook endpoint added; its signing secret is shown only now", map[string]any{
		"endpoint": endpointOut(ep), "secret": secret}}, nil
}

func (a API) removeEndpoint(r *http.Request) (reply, error) {
	id := r.PathValue("endpoint_id")
	if err := a.Service.RemoveWebhookEndpoint(r.Context(), r.PathValue("tenant_id"), id); err != nil {
		return reply{}, notFound(err, "Webhook endpoint")
	}
	return reply{200, "Webhook endpoint removed", map[string]any{"endpoint_id": id}}, nil
}

func (a API) rotateSecret(r *http.Request) (reply, error) {
	id := r.PathValue("endpoint_id")
	secret, err := a.Service.RotateWebhookSecret(r.Context(), r.PathValue("tenant_id"), id)
	if err != nil {
		return reply{}, notFound(err, "Webhook endpoint")
	}
	return reply{200, "Signing secret rotated; the previous one keeps signing for 24 hours", map[string]any{
		"endpoint_id": id, "secret": secret, "previous_secret_grace_seconds": int(kyc.WebhookSecretGrace / time.Second)}}, nil
}

func (a API) deliveries(r *http.Request) (reply, error) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > kyc.MaxDeliveries {
			return reply{}, badRequest("limit must be a whole number from 1 to 1000")
		}
		limit = n
	}
	recs, err := a.Service.Deliveries(r.Context(), r.PathValue("tenant_id"), r.PathValue("endpoint_id"), limit)
	if err != nil {
		return reply{}, notFound(err, "Webhook endpoint")
	}
	return reply{200, "Deliveries, newest first", map[string]any{"deliveries": Deliveries(recs)}}, nil
}

func (a API) redeliver(r *http.Request) (reply, error) {
	event := r.PathValue("event_id")
	n, err := a.Service.Redeliver(r.Context(), r.PathValue("tenant_id"), event, r.URL.Query().Get("endpoint_id"))
	if err != nil {
		return reply{}, notFound(err, "Event")
	}
	return reply{200, "Event queued again", map[string]any{"event_id": event, "deliveries": n}}, nil
}

// Deliveries is recs as rows, never nil, so an empty log prints as [].
func Deliveries(recs []kyc.DeliveryRecord) []Delivery {
	out := make([]Delivery, 0, len(recs))
	for _, d := range recs {
		x := Delivery{EventID: d.EventID, Type: d.Type, State: d.State, Attempts: d.Attempts,
			CreatedAt: rfc(d.CreatedAt), LastAt: rfcp(d.LastAt), LastStatus: d.LastStatus,
			LastError: d.LastError, DeliveredAt: rfcp(d.DeliveredAt)}
		if d.State == kyc.DeliveryPending {
			x.NextAt = rfc(d.NextAt)
		}
		out = append(out, x)
	}
	return out
}
