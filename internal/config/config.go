// Package config reads kycgate's configuration from the environment and
// validates it, so a bad setting stops start-up with one clear line.
package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Config is everything `kycgate serve` needs.
type Config struct {
	Addr               string
	PublicURL          string
	DatabaseURL        string
	DBMaxConns         int
	Secret             string // "" = generate and keep one beside the SQLite file
	SMTPURL            string // "" = development mailbox
	MailFrom           string
	MailSubject        string
	DiditURL           string
	DiditAPIKey        string // "" = built-in Didit simulator
	DiditWorkflowID    string
	DiditWebhookSecret string
	ReconcileInterval  time.Duration
	ChallengeTitle     string
	LogLevel           string
	// AuthCacheTTL is how long a validated API key (and its tenant's
	// product and limits) may be reused without a database lookup. 0, the
	// default: never, so a revoked key fails on its next request.
	AuthCacheTTL time.Duration
	// RequestTimeout bounds one API request's work, mail and Didit calls
	// included (a code send in flight is leased for this long).
	RequestTimeout time.Duration
	// ShutdownDelay is how long, after SIGTERM, /readyz answers 503 while
	// the server goes on serving, before the listener closes: a load
	// balancer sees the replica leave before its connections are refused.
	ShutdownDelay time.Duration
	// PprofAddr serves net/http/pprof there when set; loopback only.
	PprofAddr string
	// AdminAddr is the admin listener (/metrics); "" when off. AdminToken,
	// required off loopback, is the bearer token every admin request needs.
	AdminAddr, AdminToken string
	// Dev allows the development stand-ins (Didit simulator, mailbox):
	// automatically when the deployment is plainly local (SQLite, a
	// loopback listener, and no public URL naming another host), else
	// only with KYCGATE_DEV=1.
	Dev bool
	// DevReason says why Dev is what it is, for the start-up log.
	DevReason string
	// WebhookAllowPrivate lets outbound webhooks go to http:// URLs and
	// private, loopback and other inside addresses: with
	// KYCGATE_WEBHOOK_ALLOW_PRIVATE=1, or in development mode.
	WebhookAllowPrivate bool
	// WebhookRetry is the wait after each failed webhook attempt
	// (KYCGATE_WEBHOOK_RETRY_SCHEDULE); nil takes kyc's default.
	WebhookRetry []time.Duration
	// PreviousSecrets are secrets Secret replaced: API keys and live codes
	// hashed under them still work while a rotation settles.
	PreviousSecrets []string
	// RetainDecisions is how long decisions and IP/device facts are kept
	// after a session's final status; 0 = forever.
	RetainDecisions time.Duration
	// RetainAudit is how long audit entries are kept; 0 = forever.
	RetainAudit time.Duration
}

// Error names the variable that is wrong.
type Error struct {
	Var, Problem string
}

func (e *Error) Error() string { return e.Var + ": " + e.Problem }

// Load reads and validates the configuration.
func Load(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Addr:               get("KYCGATE_ADDR", "127.0.0.1:8080"),
		DatabaseURL:        get("KYCGATE_DATABASE_URL", "sqlite:data/kycgate.db"),
		Secret:             getenv("KYCGATE_SECRET"),
		SMTPURL:            get("KYCGATE_SMTP_URL", ""),
		MailFrom:           get("KYCGATE_MAIL_FROM", "kycgate <no-reply@localhost>"),
		MailSubject:        get("KYCGATE_MAIL_SUBJECT", "Your verification code"),
		DiditURL:           strings.TrimRight(get("KYCGATE_DIDIT_URL", "https://verification.didit.me"), "/"),
		DiditAPIKey:        get("KYCGATE_DIDIT_API_KEY", ""),
		DiditWorkflowID:    get("KYCGATE_DIDIT_WORKFLOW_ID", ""),
		DiditWebhookSecret: getenv("KYCGATE_DIDIT_WEBHOOK_SECRET"),
		ChallengeTitle:     get("KYCGATE_CHALLENGE_TITLE", "StarkFi KYC verification"),
		LogLevel:           strings.ToLower(get("KYCGATE_LOG_LEVEL", "info")),
		PprofAddr:          get("KYCGATE_PPROF_ADDR", ""),
	}
	listenHost, err := c.listen(get("KYCGATE_PUBLIC_URL", ""))
	if err != nil {
		return c, err
	}
	if err := c.checkStores(getenv("KYCGATE_DB_MAX_CONNS")); err != nil {
		return c, err
	}
	if err := c.checkDidit(); err != nil {
		return c, err
	}
	if err := c.durations(get); err != nil {
		return c, err
	}
	if err := c.rotation(getenv("KYCGATE_SECRET_PREVIOUS"), get("KYCGATE_RETAIN_DECISIONS", "365d")); err != nil {
		return c, err
	}
	if c.RetainAudit, err = retention("KYCGATE_RETAIN_AUDIT", "the audit log", get("KYCGATE_RETAIN_AUDIT", "730d")); err != nil {
		return c, err
	}
	if err := c.admin(get("KYCGATE_ADMIN_ADDR", "127.0.0.1:9090"), strings.TrimSpace(getenv("KYCGATE_ADMIN_TOKEN"))); err != nil {
		return c, err
	}
	if err := c.decideDev(getenv("KYCGATE_DEV"), listenHost, getenv("KYCGATE_PUBLIC_URL") != ""); err != nil {
		return c, err
	}
	if err := c.webhooks(getenv("KYCGATE_WEBHOOK_ALLOW_PRIVATE"), getenv("KYCGATE_WEBHOOK_RETRY_SCHEDULE")); err != nil {
		return c, err
	}
	const devOnly = "is required outside development mode (SQLite on a loopback address with no non-loopback KYCGATE_PUBLIC_URL, or KYCGATE_DEV=1)"
	if !c.Dev && c.DiditAPIKey == "" {
		return c, &Error{"KYCGATE_DIDIT_API_KEY", devOnly}
	}
	if !c.Dev && c.SMTPURL == "" {
		return c, &Error{"KYCGATE_SMTP_URL", devOnly}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, &Error{"KYCGATE_LOG_LEVEL", "must be debug, info, warn or error"}
	}
	if strings.ContainsAny(c.ChallengeTitle, "\r\n") {
		return c, &Error{"KYCGATE_CHALLENGE_TITLE", "must be one line"}
	}
	// Profiles show the program's internals: never on the network.
	if c.PprofAddr != "" {
		h, _, err := net.SplitHostPort(c.PprofAddr)
		if err != nil {
			return c, &Error{"KYCGATE_PPROF_ADDR", fmt.Sprintf("must be host:port, got %q", c.PprofAddr)}
		}
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return c, &Error{"KYCGATE_PPROF_ADDR", "must be a loopback address, e.g. 127.0.0.1:6060"}
		}
	}
	return c, nil
}

// listen checks the listen address and sets the public URL (public, or
// one made from the address); it returns the host kycgate listens on.
func (c *Config) listen(public string) (string, error) {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return "", &Error{"KYCGATE_ADDR", fmt.Sprintf("must be host:port, got %q", c.Addr)}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", &Error{"KYCGATE_ADDR", fmt.Sprintf("bad port %q", port)}
	}
	listenHost := host
	c.PublicURL = strings.TrimRight(public, "/")
	if c.PublicURL == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &Error{"KYCGATE_PUBLIC_URL", "must be an absolute http(s) URL"}
	}
	return listenHost, nil
}

// checkStores checks the database URL and pool size, the secret and the
// SMTP URL.
func (c *Config) checkStores(maxConns string) error {
	switch {
	case strings.HasPrefix(c.DatabaseURL, "sqlite:"):
		if strings.TrimPrefix(strings.TrimPrefix(c.DatabaseURL, "sqlite:"), "//") == "" {
			return &Error{"KYCGATE_DATABASE_URL", "sqlite: needs a file path, e.g. sqlite:data/kycgate.db"}
		}
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		if c.Secret == "" {
			return &Error{"KYCGATE_SECRET", "is required with PostgreSQL (every replica must share it)"}
		}
	default:
		return &Error{"KYCGATE_DATABASE_URL", "must start with sqlite: or postgres://"}
	}
	if maxConns != "" {
		n, err := strconv.Atoi(maxConns)
		if err != nil || n < 1 || n > 1000 {
			return &Error{"KYCGATE_DB_MAX_CONNS", "must be a whole number from 1 to 1000"}
		}
		c.DBMaxConns = n
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		return &Error{"KYCGATE_SECRET", "must be at least 32 characters"}
	}
	if c.SMTPURL != "" && !strings.HasPrefix(c.SMTPURL, "smtp://") && !strings.HasPrefix(c.SMTPURL, "smtps://") {
		return &Error{"KYCGATE_SMTP_URL", "must start with smtp:// or smtps://"}
	}
	return nil
}

func (c *Config) checkDidit() error {
	if u, err := url.Parse(c.DiditURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &Error{"KYCGATE_DIDIT_URL", "must be an absolute http(s) URL"}
	}
	if c.DiditAPIKey != "" {
		if c.DiditWorkflowID == "" {
			return &Error{"KYCGATE_DIDIT_WORKFLOW_ID", "is required when KYCGATE_DIDIT_API_KEY is set"}
		}
		if c.DiditWebhookSecret == "" {
			return &Error{"KYCGATE_DIDIT_WEBHOOK_SECRET", "is required when KYCGATE_DIDIT_API_KEY is set"}
		}
	}
	return nil
}

// admin checks the admin listener's address and token. Metrics name no
// secret, but they tell a stranger a lot about traffic and failures: off
// loopback they need the token.
func (c *Config) admin(addr, token string) error {
	if addr == "off" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return &Error{"KYCGATE_ADMIN_ADDR", fmt.Sprintf("must be host:port or off, got %q", addr)}
	}
	if token != "" && len(token) < 32 {
		return &Error{"KYCGATE_ADMIN_TOKEN", "must be at least 32 characters"}
	}
	if ip := net.ParseIP(host); token == "" && (ip == nil || !ip.IsLoopback()) {
		// "localhost" may resolve to anything: only a literal loopback IP
		// goes without a token.
		return &Error{"KYCGATE_ADMIN_TOKEN", "is required when KYCGATE_ADMIN_ADDR is not a loopback IP address (or set KYCGATE_ADMIN_ADDR=off)"}
	}
	c.AdminAddr, c.AdminToken = addr, token
	return nil
}

// durations reads the duration settings, each with its default and range.
func (c *Config) durations(get func(k, def string) string) error {
	for _, d := range []struct {
		name          string
		dst           *time.Duration
		def, min, max time.Duration // max 0: none
		problem       string
	}{
		{"KYCGATE_RECONCILE_INTERVAL", &c.ReconcileInterval, 2 * time.Minute, time.Second, 0,
			"must be a duration of at least 1s, e.g. 2m"},
		// At most a minute, so a revoked key stops working soon on every replica.
		{"KYCGATE_AUTH_CACHE_TTL", &c.AuthCacheTTL, 0, 0, time.Minute,
			"must be a duration from 0 to 1m, e.g. 1s"},
		// At least 5 s: a Didit create is only sent with more than 3 s left.
		{"KYCGATE_REQUEST_TIMEOUT", &c.RequestTimeout, 30 * time.Second, 5 * time.Second, 5 * time.Minute,
			"must be a duration from 5s to 5m, e.g. 30s"},
		{"KYCGATE_SHUTDOWN_DELAY", &c.ShutdownDelay, 5 * time.Second, 0, 10 * time.Minute,
			"must be a duration from 0 to 10m, e.g. 5s"},
	} {
		*d.dst = d.def
		v := get(d.name, "")
		if v == "" {
			continue
		}
		n, err := time.ParseDuration(v)
		if err != nil || n < d.min || (d.max > 0 && n > d.max) {
			return &Error{d.name, d.problem}
		}
		*d.dst = n
	}
	return nil
}

// rotation reads the previous secrets and the decision retention.
func (c *Config) rotation(previous, retain string) error {
	// Secrets are hex or base64 in practice: commas and whitespace
	// separate them, so one line lists several.
	c.PreviousSecrets = strings.FieldsFunc(previous, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	for _, p := range c.PreviousSecrets {
		if len(p) < 32 {
			return &Error{"KYCGATE_SECRET_PREVIOUS", "each secret must be at least 32 characters (separate several with commas)"}
		}
	}
	d, err := retention("KYCGATE_RETAIN_DECISIONS", "decisions", retain)
	c.RetainDecisions = d
	return err
}

// retention reads a retention period: a duration of at least a day
// ("365d", "2160h"), or "0"/"forever" (0: keep forever).
func retention(name, what, v string) (time.Duration, error) {
	problem := "must be a duration of at least 24h (e.g. 365d, 2160h) or 0/forever to keep " + what
	switch v {
	case "0", "forever":
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 100*366 {
			return 0, &Error{name, problem}
		}
		d = time.Duration(n) * 24 * time.Hour
	} else if n, err := time.ParseDuration(v); err == nil {
		d = n
	}
	// A day at least: decisions settle disputes and the audit log answers
	// for changes, and a typo like "365" (nanoseconds) must not erase them
	// within the hour.
	if d < 24*time.Hour {
		return 0, &Error{name, problem}
	}
	return d, nil
}

// decideDev sets Dev and DevReason. The simulator approves anyone and the
// mailbox shows every code, so they switch on by themselves only when
// nobody else can reach them. A loopback listener alone does not say so:
// behind nginx or Caddy on the same host kycgate listens on 127.0.0.1 and
// is public; the public URL is what tells.
func (c *Config) decideDev(flag, listenHost string, publicSet bool) error {
	switch flag {
	case "1", "true":
		c.Dev, c.DevReason = true, "KYCGATE_DEV=1"
		return nil
	case "", "0", "false":
	default:
		return &Error{"KYCGATE_DEV", "must be 1 or 0"}
	}
	explicit := flag != ""
	switch {
	case explicit:
		c.DevReason = "KYCGATE_DEV=0"
	case !strings.HasPrefix(c.DatabaseURL, "sqlite:"):
		c.DevReason = "the database is PostgreSQL"
	case !loopbackHost(listenHost):
		c.DevReason = "KYCGATE_ADDR is not a loopback address"
	case publicSet && !loopbackURL(c.PublicURL):
		c.DevReason = "KYCGATE_PUBLIC_URL names a host other than this machine"
	default:
		c.Dev, c.DevReason = true, "SQLite on a loopback address with no public URL elsewhere"
	}
	return nil
}

func loopbackHost(h string) bool {
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || ip != nil && ip.IsLoopback()
}

func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && loopbackHost(u.Hostname())
}

// webhooks reads the outbound webhook settings. A schedule must retry
// within a minute and, outside development mode, keep retrying for at
// least a day: a receiver down for a night must still get its events.
func (c *Config) webhooks(allowPrivate, schedule string) error {
	switch strings.TrimSpace(allowPrivate) {
	case "1", "true":
		c.WebhookAllowPrivate = true
	case "":
		c.WebhookAllowPrivate = c.Dev
	case "0", "false":
	default:
		return &Error{"KYCGATE_WEBHOOK_ALLOW_PRIVATE", "must be 1 or 0"}
	}
	if strings.TrimSpace(schedule) == "" {
		return nil
	}
	const problem = "must be a comma-separated list of durations, the first at most 1m, spanning at least 24h outside development mode"
	var total time.Duration
	for part := range strings.SplitSeq(schedule, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 || (len(c.WebhookRetry) == 0 && d > time.Minute) {
			return &Error{"KYCGATE_WEBHOOK_RETRY_SCHEDULE", problem}
		}
		c.WebhookRetry = append(c.WebhookRetry, d)
		total += d
	}
	if total < 24*time.Hour && !c.Dev {
		return &Error{"KYCGATE_WEBHOOK_RETRY_SCHEDULE", problem}
	}
	return nil
}

// Embedded reports whether the Didit simulator stands in for Didit.
func (c Config) Embedded() bool { return c.DiditAPIKey == "" }
