package kyc

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// WebhookEndpoint is one of a tenant's webhook destinations.
type WebhookEndpoint struct {
	ID, TenantID, URL string
	Events            []string // subscribed types; empty = every type
	Secret            string   // sealed (sealSecret), never plain
	PrevSecret        string   // sealed; signs beside Secret until PrevUntil
	PrevUntil         time.Time
	FailingSince      *time.Time // first failure since the last success
	DisabledAt        *time.Time
	DisabledReason    string
	CreatedAt         time.Time
}

// DeliveryRecord is one line of an endpoint's delivery log.
type DeliveryRecord struct {
	EventID, Type, State string
	Attempts             int
	CreatedAt            time.Time
	NextAt               time.Time // when pending: the next attempt
	LastAt               *time.Time
	LastStatus           int
	LastError            string
	DeliveredAt          *time.Time
}

// WebhookSecretGrace is how long a rotated-out secret keeps signing.
const WebhookSecretGrace = 24 * time.Hour

const webhookSecretPrefix = "whsec_"

// newWebhookSecret is "whsec_" + base64 of 32 random bytes.
func newWebhookSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// sealKey is the AES-256 key that seals webhook secrets, derived from the
// server secret for this purpose alone.
func (s *Service) sealKey() []byte {
	h := hmac.New(sha256.New, s.cfg.Secret)
	h.Write([]byte("kycgate webhook signing secret sealing key v1"))
	return h.Sum(nil)
}

// sealSecret encrypts a signing secret with AES-GCM, bound to its endpoint
// (the id is the additional data, so a sealed secret copied to another
// endpoint's row does not open).
func (s *Service) sealSecret(endpointID, plain string) string {
	block, _ := aes.NewCipher(s.sealKey()) // a 32-byte key never fails
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	return "v1." + base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(plain), []byte(endpointID)))
}

func (s *Service) openSecret(endpointID, sealed string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1."))
	block, _ := aes.NewCipher(s.sealKey())
	gcm, _ := cipher.NewGCM(block)
	if err != nil || !strings.HasPrefix(sealed, "v1.") || len(raw) < gcm.NonceSize() {
		return "", fmt.Errorf("kyc: webhook secret of endpoint %s is malformed", endpointID)
	}
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], []byte(endpointID))
	if err != nil {
		return "", fmt.Errorf("kyc: webhook secret of endpoint %s does not open (was KYCGATE_SECRET changed?)", endpointID)
	}
	return string(plain), nil
}

// ParseEventTypes checks a comma-separated list of event types; "" means
// every type.
func ParseEventTypes(list string) ([]string, error) {
	var out []string
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(WebhookEventTypes, t) {
			return nil, fmt.Errorf("unknown event type %q (want %s)", t, strings.Join(WebhookEventTypes, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// AddWebhookEndpoint gives a tenant a new endpoint for url (checked by the
// caller against the destination rules) and returns it with its signing
// secret, shown only now.
func (s *Service) AddWebhookEndpoint(ctx context.Context, tenantID, url string, events []string) (WebhookEndpoint, string, error) {
	id := newID("ep_")
	plain := newWebhookSecret()
	ep := WebhookEndpoint{ID: id, TenantID: tenantID, URL: url, Events: events,
		Secret: s.sealSecret(id, plain), CreatedAt: s.now()}
	if err := s.store.CreateWebhookEndpoint(ctx, ep); err != nil {
		return WebhookEndpoint{}, "", fmt.Errorf("add webhook endpoint: %w", err)
	}
	s.auditObject(ctx, tenantID, AuditEndpointAdded, "endpoint", id, "ok")
	return ep, plain, nil
}

// RemoveWebhookEndpoint deletes one of the tenant's endpoints and its
// deliveries; ErrNotFound when the tenant has no such endpoint.
func (s *Service) RemoveWebhookEndpoint(ctx context.Context, tenantID, endpointID string) error {
	if err := s.store.RemoveWebhookEndpoint(ctx, tenantID, endpointID); err != nil {
		return fmt.Errorf("remove webhook endpoint: %w", err)
	}
	s.auditObject(ctx, tenantID, AuditEndpointRemoved, "endpoint", endpointID, "ok")
	return nil
}

// RotateWebhookSecret gives an endpoint a new secret; the current one keeps
// signing beside it for WebhookSecretGrace, so receivers can switch over
// without losing a message.
func (s *Service) RotateWebhookSecret(ctx context.Context, tenantID, endpointID string) (string, error) {
	for range 3 {
		ep, err := s.store.WebhookEndpoint(ctx, tenantID, endpointID)
		if err != nil {
			return "", fmt.Errorf("rotate webhook secret: %w", err)
		}
		plain := newWebhookSecret()
		err = s.store.RotateWebhookSecret(ctx, ep, s.sealSecret(endpointID, plain), s.now().Add(WebhookSecretGrace))
		if errors.Is(err, ErrConflict) {
			continue // rotated meanwhile: rotate what is there now
		}
		if err != nil {
			return "", fmt.Errorf("rotate webhook secret: %w", err)
		}
		s.auditObject(ctx, tenantID, AuditEndpointRotated, "endpoint", endpointID, "ok")
		return plain, nil
	}
	return "", errors.New("rotate webhook secret: the endpoint kept changing")
}

// Redeliver queues an event again for the tenant's endpoints (one, or all
// when endpointID is ""), as a fresh delivery with a full retry schedule.
func (s *Service) Redeliver(ctx context.Context, tenantID, eventID, endpointID string) (int, error) {
	n, err := s.store.Redeliver(ctx, tenantID, eventID, endpointID, s.now())
	if err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	s.auditObject(ctx, tenantID, AuditWebhookRedelivery, "event", eventID, "ok")
	return n, nil
}
