// Package kyc holds kycgate's domain: every rule of the StarkFi KYC contract
// (docs/api.md). Handlers translate HTTP into calls here; stores
// persist; neither decides.
package kyc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"
)

// Config holds the rules' parameters. Zero values take the documented
// defaults (docs/api.md §4, §5).
type Config struct {
	Secret []byte // keys the HMACs of codes, API keys and idempotency keys; at least 32 bytes
	// PreviousSecrets are secrets Secret replaced, each at least 32 bytes.
	// API keys and live codes hashed under one of them are still accepted,
	// and an API key is moved to Secret's hash when it is used, so a
	// rotation fails no request (README, "Rotating the secret"). New
	// hashes always use Secret.
	PreviousSecrets [][]byte
	// DecisionRetention is how long a session's decision and IP/device
	// facts are kept after its final status; 0 keeps them forever.
	DecisionRetention time.Duration
	// AuditRetention is how long audit entries are kept; 0 keeps them
	// forever. Pruning takes whole sealed prefixes of each chain and
	// keeps its head (docs/audit.md).
	AuditRetention time.Duration

	OTPTTL          time.Duration // 10 min
	OTPMaxAttempts  int           // 5
	OTPMinGap       time.Duration // 60 s
	OTPWindow       time.Duration // 1 h
	OTPMaxPerWindow int           // 5 (the store keeps exactly five send times)

	ChallengeTitle string        // first line of the wallet message
	ChallengeTTL   time.Duration // 10 min

	// SessionCallback is where Didit's hosted flow sends the person back;
	// empty lets Didit use the workflow's default.
	SessionCallback string
	// SessionClaimTTL is the lease on the right to create a person's
	// session. The holder renews it while its provider call runs, so a
	// replica that dies mid-call blocks that person for at most this long.
	SessionClaimTTL time.Duration

	// AuthCacheTTL lets Authenticate reuse a key it validated, with its
	// tenant's settings, for this long without asking the store. 0 (the
	// default) asks on every request, so a revoked key, a disabled product
	// or a new limit takes effect on the next request; with a TTL they take
	// effect within it, on every replica. Unknown keys are never cached.
	AuthCacheTTL time.Duration

	// WebhookRetry is the wait after each failed webhook attempt; its
	// length is how many retries follow the first attempt. Default
	// DefaultWebhookRetry.
	WebhookRetry []time.Duration
}

func (c *Config) defaults() {
	if c.OTPTTL == 0 {
		c.OTPTTL = 10 * time.Minute
	}
	if c.OTPMaxAttempts == 0 {
		c.OTPMaxAttempts = 5
	}
	if c.OTPMinGap == 0 {
		c.OTPMinGap = 60 * time.Second
	}
	if c.OTPWindow == 0 {
		c.OTPWindow = time.Hour
	}
	if c.OTPMaxPerWindow == 0 {
		c.OTPMaxPerWindow = 5
	}
	if c.ChallengeTitle == "" {
		c.ChallengeTitle = "StarkFi KYC verification"
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = 10 * time.Minute
	}
	if c.SessionClaimTTL == 0 {
		c.SessionClaimTTL = 15 * time.Second
	}
	if len(c.WebhookRetry) == 0 {
		c.WebhookRetry = DefaultWebhookRetry
	}
}

// Service implements the use cases. It is safe for concurrent use; all
// shared state lives in the Store.
type Service struct {
	store    Store
	mailer   Mailer
	provider Provider
	sender   WebhookSender
	clock    Clock
	cfg      Config
	log      *slog.Logger
	obs      Observer
	auth     *authCache // nil when Config.AuthCacheTTL is 0
}

// Deps are the Service's collaborators.
type Deps struct {
	Store    Store
	Mailer   Mailer
	Provider Provider      // may be nil until sessions are used
	Webhooks WebhookSender // may be nil where no webhooks are delivered
	Clock    Clock         // nil = wall clock
	Logger   *slog.Logger
	Observer Observer // nil = NopObserver
}

// NewService checks its configuration and returns a ready Service.
func NewService(d Deps, cfg Config) (*Service, error) {
	cfg.defaults()
	if len(cfg.Secret) < 32 {
		return nil, errors.New("kyc: secret must be at least 32 bytes")
	}
	for _, p := range cfg.PreviousSecrets {
		if len(p) < 32 {
			return nil, errors.New("kyc: previous secrets must be at least 32 bytes")
		}
	}
	if cfg.DecisionRetention < 0 {
		return nil, errors.New("kyc: DecisionRetention must not be negative")
	}
	if cfg.AuditRetention < 0 {
		return nil, errors.New("kyc: AuditRetention must not be negative")
	}
	if cfg.OTPMaxPerWindow != 5 {
		return nil, errors.New("kyc: OTPMaxPerWindow must be 5")
	}
	if d.Store == nil || d.Mailer == nil {
		return nil, errors.New("kyc: store and mailer are required")
	}
	if d.Clock == nil {
		d.Clock = SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Observer == nil {
		d.Observer = NopObserver{}
	}
	if cfg.AuthCacheTTL < 0 {
		return nil, errors.New("kyc: AuthCacheTTL must not be negative")
	}
	svc := &Service{store: d.Store, mailer: d.Mailer, provider: d.Provider, sender: d.Webhooks, clock: d.Clock, cfg: cfg, log: d.Logger, obs: d.Observer}
	if cfg.AuthCacheTTL > 0 {
		svc.auth = newAuthCache(cfg.AuthCacheTTL)
	}
	return svc, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// mac is the keyed hash used for everything secret we store. The purpose
// string separates domains so a hash of one kind never matches another.
func (s *Service) mac(purpose string, parts ...string) string {
	return macWith(s.cfg.Secret, purpose, parts...)
}

// macWith is mac under a given secret: the current one or one it replaced.
func macWith(secret []byte, purpose string, parts ...string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(purpose))
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:]) // length-prefixed, so ("ab","c") and ("a","bc") differ
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix + 128 random bits.
func newID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + idEncoding.EncodeToString(b[:])
}

// randomCode returns six uniform decimal digits from the CSPRNG.
func randomCode() string {
	// Rejection sampling: 4294000000 is the largest multiple of 10^6 below
	// 2^32, so accepted values are uniform modulo 10^6.
	for {
		var b [4]byte
		rand.Read(b[:])
		v := binary.BigEndian.Uint32(b[:])
		if v < 4294000000 {
			v %= 1000000
			d := []byte("000000")
			for i := 5; i >= 0; i-- {
				d[i] = byte('0' + v%10)
				v /= 10
			}
			return string(d)
		}
	}
}
