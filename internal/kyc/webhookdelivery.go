package kyc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WebhookSender makes one HTTP attempt. It returns the response's status,
// or an error when no response came (a refused destination, a timeout, a
// broken connection).
type WebhookSender interface {
	Send(ctx context.Context, r WebhookRequest) (status int, err error)
}

// WebhookRequest is one signed attempt: a POST of Body to URL.
type WebhookRequest struct {
	URL    string
	Header map[string]string
	Body   []byte
}

// DefaultWebhookRetry is the wait after each failed attempt (README
// "Receiving webhooks"): the first retry within a minute, then longer and
// longer waits, for about four days in all (13 attempts). Each wait is
// jittered by ±20 % so endpoints that failed together are not retried in
// lockstep. Even with the jitter one event's retries end before
// WebhookDisableAfter.
var DefaultWebhookRetry = []time.Duration{
	30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 24 * time.Hour, 24 * time.Hour,
}

// Webhook delivery limits.
const (
	// WebhookTimeout bounds one attempt, connection included.
	WebhookTimeout = 10 * time.Second
	// webhookLease is how long a claimed delivery stays with its worker:
	// longer than an attempt, so only a worker that died loses it, and
	// short enough that another replica retries it soon after.
	webhookLease = WebhookTimeout + 20*time.Second
	// WebhookDisableAfter disables an endpoint that has failed every
	// attempt for this long.
	WebhookDisableAfter = 5 * 24 * time.Hour
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is a claimed delivery: one event to one endpoint, leased to the
// claiming worker (Token) until its lease lapses.
type Delivery struct {
	EventID, EndpointID, TenantID, Type string
	Body                                []byte
	Attempt                             int // this attempt's number, from 1
	Token                               string
	URL                                 string
	Secret, PrevSecret                  string // sealed; PrevSecret "" when none
	PrevUntil                           time.Time
	FailingSince                        *time.Time
}

// DeliveryOutcome is what an attempt decided: the delivery's new state
// (pending again at NextAt, delivered, or failed for good), the attempt's
// result, and the endpoint's health.
type DeliveryOutcome struct {
	EventID, EndpointID, Token string
	At                         time.Time
	State                      string
	NextAt                     time.Time
	Status                     int    // HTTP status; 0 when no response came
	Error                      string // why it failed; "" on success
	Disable                    string // non-empty: disable the endpoint, for this reason
}

// WebhookRetryAfter is the jittered wait after failed attempt n (from 1),
// or false when the schedule is exhausted.
func (s *Service) webhookRetryAfter(n int) (time.Duration, bool) {
	sched := s.cfg.WebhookRetry
	if n < 1 || n > len(sched) {
		return 0, false
	}
	d := sched[n-1]
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d)), true
}

// DeliverWebhooks claims up to limit due deliveries (across replicas, each
// goes to one worker), attempts them concurrently and records each outcome.
// It returns how many it claimed.
func (s *Service) DeliverWebhooks(ctx context.Context, limit int) (int, error) {
	if s.sender == nil {
		return 0, errors.New("kyc: no webhook sender configured")
	}
	now := s.now()
	ds, err := s.store.ClaimDeliveries(ctx, now, now.Add(webhookLease), newID("dl_"), limit)
	if err != nil {
		return 0, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { s.deliver(ctx, d) })
	}
	wg.Wait()
	return len(ds), nil
}

// deliver makes one attempt and records it.
func (s *Service) deliver(ctx context.Context, d Delivery) {
	at := s.now()
	req, err := s.signedRequest(d, at)
	status := 0
	if err == nil {
		// Not cut short by shutdown: an attempt cancelled half-way may
		// still arrive, and would then be sent twice.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), WebhookTimeout)
		status, err = s.sender.Send(actx, req)
		cancel()
	}
	o := s.outcome(d, s.now(), status, err)
	// Recorded even when ctx ended (shutdown): the attempt happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := s.store.FinishDelivery(rctx, o); ferr != nil {
		// The lease lapses and another attempt follows: at least once.
		s.log.ErrorContext(ctx, "record webhook delivery", "event", d.EventID, "endpoint", d.EndpointID, "err", ferr)
		return
	}
	s.log.InfoContext(ctx, "webhook attempt", "tenant", d.TenantID, "endpoint", d.EndpointID, "event", d.EventID,
		"type", d.Type, "attempt", d.Attempt, "status", status, "state", o.State, "err", o.Error)
}

// outcome applies the delivery rules to one attempt's result: any 2xx
// delivers; 410 Gone disables the endpoint; anything else is retried on
// the schedule until it runs out, and an endpoint failing for
// WebhookDisableAfter is disabled.
func (s *Service) outcome(d Delivery, now time.Time, status int, err error) DeliveryOutcome {
	o := DeliveryOutcome{EventID: d.EventID, EndpointID: d.EndpointID, Token: d.Token, At: now, Status: status}
	switch {
	case err == nil && status >= 200 && status < 300:
		o.State = DeliveryDelivered
		return o
	case err != nil:
		o.Error = err.Error()
	default:
		o.Error = "HTTP " + strconv.Itoa(status)
	}
	if err == nil && status == 410 {
		o.State, o.Disable = DeliveryFailed, "the endpoint answered 410 Gone"
		return o
	}
	if d.FailingSince != nil && now.Sub(*d.FailingSince) >= WebhookDisableAfter {
		o.Disable = "failing for 5 days"
	}
	wait, ok := s.webhookRetryAfter(d.Attempt)
	if !ok || o.Disable != "" {
		o.State = DeliveryFailed
		return o
	}
	o.State, o.NextAt = DeliveryPending, now.Add(wait)
	return o
}

// signedRequest is the Standard Webhooks request for an attempt at `at`:
// one signature per secret still signing (the current one, and the
// previous one during its grace after a rotation).
func (s *Service) signedRequest(d Delivery, at time.Time) (WebhookRequest, error) {
	secrets := []string{d.Secret}
	if d.PrevSecret != "" && at.Before(d.PrevUntil) {
		secrets = append(secrets, d.PrevSecret)
	}
	plain := make([]string, 0, len(secrets))
	for _, sealed := range secrets {
		p, err := s.openSecret(d.EndpointID, sealed)
		if err != nil {
			return WebhookRequest{}, err
		}
		plain = append(plain, p)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	sig, err := SignWebhook(plain, d.EventID, ts, d.Body)
	if err != nil {
		return WebhookRequest{}, err
	}
	return WebhookRequest{URL: d.URL, Body: d.Body, Header: map[string]string{
		"webhook-id": d.EventID, "webhook-timestamp": ts, "webhook-signature": sig,
		"content-type": "application/json", "user-agent": "kycgate-webhooks",
	}}, nil
}

// SignWebhook is the Standard Webhooks webhook-signature header: for each
// secret ("whsec_" + base64 key), "v1," + base64(HMAC-SHA256(key,
// "id.timestamp.body")), space-separated.
func SignWebhook(secrets []string, id, timestamp string, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, webhookSecretPrefix))
		if err != nil {
			return "", fmt.Errorf("kyc: webhook secret is not base64: %w", err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + timestamp + "."))
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}
