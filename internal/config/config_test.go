package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DatabaseURL != "sqlite:data/kycgate.db" || c.PublicURL != "http://127.0.0.1:8080" ||
		c.SMTPURL != "" || !c.Embedded() || c.ReconcileInterval != 2*time.Minute || c.DiditURL != "https://verification.didit.me" {
		t.Fatalf("defaults = %+v", c)
	}
	if c.AuthCacheTTL != 0 || c.PprofAddr != "" {
		t.Fatalf("auth cache %v, pprof %q by default; want both off", c.AuthCacheTTL, c.PprofAddr)
	}
	if c.RequestTimeout != 30*time.Second || c.ShutdownDelay != 5*time.Second {
		t.Fatalf("request timeout %v, shutdown delay %v by default", c.RequestTimeout, c.ShutdownDelay)
	}
	c, err = Load(env("KYCGATE_REQUEST_TIMEOUT", "1m", "KYCGATE_SHUTDOWN_DELAY", "0"))
	if err != nil || c.RequestTimeout != time.Minute || c.ShutdownDelay != 0 {
		t.Fatalf("request timeout and shutdown delay set: %+v, %v", c, err)
	}
	c, err = Load(env("KYCGATE_AUTH_CACHE_TTL", "1s", "KYCGATE_PPROF_ADDR", "[::1]:6060"))
	if err != nil || c.AuthCacheTTL != time.Second || c.PprofAddr != "[::1]:6060" {
		t.Fatalf("auth cache and pprof set: %+v, %v", c, err)
	}
	c, _ = Load(env("KYCGATE_ADDR", ":9000"))
	if c.PublicURL != "http://localhost:9000" {
		t.Fatalf("public URL for :9000 = %q", c.PublicURL)
	}
}

func TestInvalid(t *testing.T) {
	didit := []string{"KYCGATE_DIDIT_API_KEY", "k", "KYCGATE_DIDIT_WORKFLOW_ID", "w", "KYCGATE_DIDIT_WEBHOOK_SECRET", "s"}
	for _, tc := range []struct {
		env     []string
		wantVar string
	}{
		{[]string{"KYCGATE_ADDR", "nonsense"}, "KYCGATE_ADDR"},
		{[]string{"KYCGATE_ADDR", "127.0.0.1:99999"}, "KYCGATE_ADDR"},
		{[]string{"KYCGATE_DATABASE_URL", "mysql://x"}, "KYCGATE_DATABASE_URL"},
		{[]string{"KYCGATE_DATABASE_URL", "sqlite:"}, "KYCGATE_DATABASE_URL"},
		{[]string{"KYCGATE_DATABASE_URL", "postgres://u@h/db"}, "KYCGATE_SECRET"},
		// No Didit key or SMTP outside development mode.
		{[]string{"KYCGATE_ADDR", ":8080"}, "KYCGATE_DIDIT_API_KEY"},
		{append(didit, "KYCGATE_ADDR", "0.0.0.0:8080"), "KYCGATE_SMTP_URL"},
		{[]string{"KYCGATE_DATABASE_URL", "postgres://u@h/db", "KYCGATE_SECRET", strings.Repeat("x", 32)}, "KYCGATE_DIDIT_API_KEY"},
		{[]string{"KYCGATE_DEV", "yes"}, "KYCGATE_DEV"},
		{[]string{"KYCGATE_SECRET", "short"}, "KYCGATE_SECRET"},
		{[]string{"KYCGATE_SMTP_URL", "http://mail"}, "KYCGATE_SMTP_URL"},
		{[]string{"KYCGATE_PUBLIC_URL", "ftp://x"}, "KYCGATE_PUBLIC_URL"},
		{[]string{"KYCGATE_DIDIT_URL", "not a url"}, "KYCGATE_DIDIT_URL"},
		{[]string{"KYCGATE_DIDIT_API_KEY", "k"}, "KYCGATE_DIDIT_WORKFLOW_ID"},
		{[]string{"KYCGATE_DIDIT_API_KEY", "k", "KYCGATE_DIDIT_WORKFLOW_ID", "w"}, "KYCGATE_DIDIT_WEBHOOK_SECRET"},
		{append(didit, "KYCGATE_RECONCILE_INTERVAL", "10ms"), "KYCGATE_RECONCILE_INTERVAL"},
		{[]string{"KYCGATE_RECONCILE_INTERVAL", "soon"}, "KYCGATE_RECONCILE_INTERVAL"},
		{[]string{"KYCGATE_LOG_LEVEL", "loud"}, "KYCGATE_LOG_LEVEL"},
		{[]string{"KYCGATE_DB_MAX_CONNS", "0"}, "KYCGATE_DB_MAX_CONNS"},
		{[]string{"KYCGATE_CHALLENGE_TITLE", "two\nlines"}, "KYCGATE_CHALLENGE_TITLE"},
		{[]string{"KYCGATE_AUTH_CACHE_TTL", "2m"}, "KYCGATE_AUTH_CACHE_TTL"},
		{[]string{"KYCGATE_REQUEST_TIMEOUT", "2s"}, "KYCGATE_REQUEST_TIMEOUT"},
		{[]string{"KYCGATE_REQUEST_TIMEOUT", "1h"}, "KYCGATE_REQUEST_TIMEOUT"},
		{[]string{"KYCGATE_SHUTDOWN_DELAY", "-1s"}, "KYCGATE_SHUTDOWN_DELAY"},
		{[]string{"KYCGATE_SHUTDOWN_DELAY", "soon"}, "KYCGATE_SHUTDOWN_DELAY"},
		{[]string{"KYCGATE_AUTH_CACHE_TTL", "-1s"}, "KYCGATE_AUTH_CACHE_TTL"},
		{[]string{"KYCGATE_AUTH_CACHE_TTL", "often"}, "KYCGATE_AUTH_CACHE_TTL"},
		{[]string{"KYCGATE_PPROF_ADDR", "6060"}, "KYCGATE_PPROF_ADDR"},
		{[]string{"KYCGATE_PPROF_ADDR", "0.0.0.0:6060"}, "KYCGATE_PPROF_ADDR"},
		{[]string{"KYCGATE_PPROF_ADDR", ":6060"}, "KYCGATE_PPROF_ADDR"},
	} {
		_, err := Load(env(tc.env...))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tc.wantVar {
			t.Errorf("env %v: err = %v, want one naming %s", tc.env, err, tc.wantVar)
			continue
		}
		if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), tc.wantVar+": ") {
			t.Errorf("error %q is not one line starting with the variable", err)
		}
	}
	if _, err := Load(env(append(didit, "KYCGATE_DATABASE_URL", "postgres://u@h/db", "KYCGATE_SECRET", strings.Repeat("x", 32),
		"KYCGATE_SMTP_URL", "smtps://mail.example.com", "KYCGATE_ADDR", ":8080")...)); err != nil {
		t.Fatalf("a full production configuration is refused: %v", err)
	}
	for _, e := range [][]string{{}, {"KYCGATE_ADDR", "[::1]:8080"}, {"KYCGATE_ADDR", ":8080", "KYCGATE_DEV", "1"},
		{"KYCGATE_PUBLIC_URL", "http://localhost:9000"}, {"KYCGATE_PUBLIC_URL", "http://[::1]:8080/"},
		{"KYCGATE_PUBLIC_URL", "https://kyc.example.com", "KYCGATE_DEV", "1"}} {
		c, err := Load(env(e...))
		if err != nil || !c.Dev || c.DevReason == "" {
			t.Errorf("env %v: dev = %v (%q), %v; want development mode", e, c.Dev, c.DevReason, err)
		}
	}
}

// TestDevModeBehindAProxy: on one host behind nginx or Caddy kycgate listens
// on loopback, but its public URL names the real host: the stand-ins (which
// approve anyone and show every code) must not switch on by themselves.
func TestDevModeBehindAProxy(t *testing.T) {
	for _, e := range [][]string{
		{"KYCGATE_PUBLIC_URL", "https://kyc.example.com"},
		{"KYCGATE_PUBLIC_URL", "http://192.0.2.10:8080"},
		{"KYCGATE_PUBLIC_URL", "https://localhost.example.com"},
		{"KYCGATE_DEV", "0"},
	} {
		_, err := Load(env(e...))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "KYCGATE_DIDIT_API_KEY" {
			t.Errorf("env %v: err = %v, want development stand-ins refused", e, err)
		}
		c, err := Load(env(append(e, "KYCGATE_DIDIT_API_KEY", "k", "KYCGATE_DIDIT_WORKFLOW_ID", "w",
			"KYCGATE_DIDIT_WEBHOOK_SECRET", "s", "KYCGATE_SMTP_URL", "smtp://127.0.0.1:25")...))
		if err != nil || c.Dev || c.DevReason == "" {
			t.Errorf("env %v with real Didit and SMTP: dev = %v (%q), %v; want production mode with a reason", e, c.Dev, c.DevReason, err)
		}
	}
}

func TestWebhookSettings(t *testing.T) {
	prod := []string{"KYCGATE_DATABASE_URL", "postgres://db/kyc", "KYCGATE_SECRET", strings.Repeat("s", 32),
		"KYCGATE_DIDIT_API_KEY", "k", "KYCGATE_DIDIT_WORKFLOW_ID", "w", "KYCGATE_DIDIT_WEBHOOK_SECRET", "x",
		"KYCGATE_SMTP_URL", "smtp://mail:25"}
	with := func(kv ...string) []string { return append(append([]string{}, prod...), kv...) }
	for _, c := range []struct {
		env          []string
		allowPrivate bool
	}{
		{prod, false},
		{with("KYCGATE_WEBHOOK_ALLOW_PRIVATE", "1"), true},
		{[]string{}, true}, // development mode
		{[]string{"KYCGATE_WEBHOOK_ALLOW_PRIVATE", "0"}, false},
	} {
		got, err := Load(env(c.env...))
		if err != nil || got.WebhookAllowPrivate != c.allowPrivate {
			t.Errorf("%v: allow private = %v (%v), want %v", c.env, got.WebhookAllowPrivate, err, c.allowPrivate)
		}
	}
	got, err := Load(env(with("KYCGATE_WEBHOOK_RETRY_SCHEDULE", "10s, 1m,24h")...))
	if err != nil || len(got.WebhookRetry) != 3 || got.WebhookRetry[0] != 10*time.Second || got.WebhookRetry[2] != 24*time.Hour {
		t.Errorf("schedule = %v, %v", got.WebhookRetry, err)
	}
	for _, bad := range []string{"2m,24h", "10s,1h", "10s,x", "0s,24h", "-1s,25h"} {
		_, err := Load(env(with("KYCGATE_WEBHOOK_RETRY_SCHEDULE", bad)...))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "KYCGATE_WEBHOOK_RETRY_SCHEDULE" {
			t.Errorf("schedule %q: %v, want a KYCGATE_WEBHOOK_RETRY_SCHEDULE error", bad, err)
		}
	}
	// Development mode may retry for less than a day (tests).
	if got, err := Load(env("KYCGATE_WEBHOOK_RETRY_SCHEDULE", "100ms,100ms")); err != nil || len(got.WebhookRetry) != 2 {
		t.Errorf("a short schedule in development mode: %v, %v", got.WebhookRetry, err)
	}
	if _, err := Load(env("KYCGATE_WEBHOOK_ALLOW_PRIVATE", "yes")); err == nil {
		t.Error("KYCGATE_WEBHOOK_ALLOW_PRIVATE=yes accepted")
	}
}

func TestRotationAndRetention(t *testing.T) {
	c, err := Load(env())
	if err != nil || len(c.PreviousSecrets) != 0 || c.RetainDecisions != 365*24*time.Hour {
		t.Fatalf("defaults: previous %v, retain %v, %v; want none and 365 days", c.PreviousSecrets, c.RetainDecisions, err)
	}
	a, b := strings.Repeat("a", 32), strings.Repeat("b", 40)
	for _, v := range []string{a + "," + b, " " + a + "\n" + b + " ", a + ", " + b + ","} {
		c, err := Load(env("KYCGATE_SECRET_PREVIOUS", v))
		if err != nil || len(c.PreviousSecrets) != 2 || c.PreviousSecrets[0] != a || c.PreviousSecrets[1] != b {
			t.Errorf("KYCGATE_SECRET_PREVIOUS=%q: %q, %v", v, c.PreviousSecrets, err)
		}
	}
	for v, want := range map[string]time.Duration{"0": 0, "forever": 0, "30d": 30 * 24 * time.Hour, "2160h": 90 * 24 * time.Hour} {
		c, err := Load(env("KYCGATE_RETAIN_DECISIONS", v))
		if err != nil || c.RetainDecisions != want {
			t.Errorf("KYCGATE_RETAIN_DECISIONS=%s: %v, %v; want %v", v, c.RetainDecisions, err, want)
		}
	}
	if c.RetainAudit != 730*24*time.Hour {
		t.Errorf("default audit retention %v, want 730 days", c.RetainAudit)
	}
	for v, want := range map[string]time.Duration{"forever": 0, "0": 0, "90d": 90 * 24 * time.Hour, "24h": 24 * time.Hour} {
		c, err := Load(env("KYCGATE_RETAIN_AUDIT", v))
		if err != nil || c.RetainAudit != want {
			t.Errorf("KYCGATE_RETAIN_AUDIT=%s: %v, %v; want %v", v, c.RetainAudit, err, want)
		}
	}
	for _, kv := range [][]string{
		{"KYCGATE_RETAIN_AUDIT", "730"},
		{"KYCGATE_RETAIN_AUDIT", "23h"},
		{"KYCGATE_SECRET_PREVIOUS", a + ",short"},
		{"KYCGATE_RETAIN_DECISIONS", "365"},
		{"KYCGATE_RETAIN_DECISIONS", "1h"},
		{"KYCGATE_RETAIN_DECISIONS", "-5d"},
		{"KYCGATE_RETAIN_DECISIONS", "a year"},
	} {
		_, err := Load(env(kv...))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != kv[0] {
			t.Errorf("%s=%q: %v, want an error naming it", kv[0], kv[1], err)
		}
	}
}

// TestAdminListener: on by default on loopback without a token; off with
// "off"; off loopback only with a token of 32 characters or more.
func TestAdminListener(t *testing.T) {
	tok := strings.Repeat("t", 32)
	for _, tc := range []struct {
		env              []string
		addr, token, bad string
	}{
		{nil, "127.0.0.1:9090", "", ""},
		{[]string{"KYCGATE_ADMIN_ADDR", "off"}, "", "", ""},
		{[]string{"KYCGATE_ADMIN_ADDR", "[::1]:9091"}, "[::1]:9091", "", ""},
		{[]string{"KYCGATE_ADMIN_TOKEN", tok}, "127.0.0.1:9090", tok, ""},
		{[]string{"KYCGATE_ADMIN_ADDR", "0.0.0.0:9090", "KYCGATE_ADMIN_TOKEN", tok}, "0.0.0.0:9090", tok, ""},
		{[]string{"KYCGATE_ADMIN_ADDR", "0.0.0.0:9090"}, "", "", "KYCGATE_ADMIN_TOKEN"},
		{[]string{"KYCGATE_ADMIN_ADDR", ":9090"}, "", "", "KYCGATE_ADMIN_TOKEN"},
		{[]string{"KYCGATE_ADMIN_ADDR", "localhost:9090"}, "", "", "KYCGATE_ADMIN_TOKEN"},
		{[]string{"KYCGATE_ADMIN_ADDR", "10.0.0.5:9090", "KYCGATE_ADMIN_TOKEN", "short"}, "", "", "KYCGATE_ADMIN_TOKEN"},
		{[]string{"KYCGATE_ADMIN_ADDR", "9090"}, "", "", "KYCGATE_ADMIN_ADDR"},
	} {
		c, err := Load(env(tc.env...))
		if tc.bad != "" {
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != tc.bad {
				t.Errorf("%v: err = %v, want one naming %s", tc.env, err, tc.bad)
			}
			continue
		}
		if err != nil || c.AdminAddr != tc.addr || c.AdminToken != tc.token {
			t.Errorf("%v: admin %q token %q err %v, want %q %q", tc.env, c.AdminAddr, c.AdminToken, err, tc.addr, tc.token)
		}
	}
}
