package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kycgate/kycgate/internal/config"
	"github.com/kycgate/kycgate/internal/devui"
	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/httpapi"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/mail"
	"github.com/kycgate/kycgate/internal/metrics"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/webhook"
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if cfg.Dev {
		log.Warn("development mode: the Didit simulator and the mailbox stand in when not configured", "reason", cfg.DevReason)
	} else {
		log.Info("production mode: real Didit and SMTP required", "reason", cfg.DevReason)
	}
	sec, err := serverSecret(cfg, log)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return err
	}
	defer db.Close()

	// Listen first: the embedded simulator and its webhooks need the real
	// address (KYCGATE_ADDR may ask for port 0).
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	at := where{local: "http://" + ln.Addr().String(), public: cfg.PublicURL}
	if strings.HasSuffix(cfg.Addr, ":0") && getenv("KYCGATE_PUBLIC_URL") == "" {
		at.public = at.local
	}
	mounts := map[string]http.Handler{}
	dev := devui.Config{Info: devui.Info{Database: dbName(cfg.DatabaseURL), Version: buildVersion().short()}}
	mailer, closeMail, err := newMailer(cfg, log, at, mounts, &dev)
	if err != nil {
		return err
	}
	defer closeMail()
	client, hookSecret, closeSim, err := newProvider(cfg, log, at, mounts, &dev)
	if err != nil {
		return err
	}
	defer closeSim()

	if cfg.WebhookAllowPrivate {
		log.Warn("outbound webhooks may go to http:// and private addresses (KYCGATE_WEBHOOK_ALLOW_PRIVATE or development mode)")
	}
	reg := metrics.New(db.Pools())
	sender := webhook.NewSender(webhook.Options{AllowPrivate: cfg.WebhookAllowPrivate})
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: mailer, Provider: client, Webhooks: sender, Logger: log, Observer: reg},
		kyc.Config{Secret: sec, PreviousSecrets: previousSecrets(cfg, sec), DecisionRetention: cfg.RetainDecisions,
			AuditRetention: cfg.RetainAudit,
			ChallengeTitle: cfg.ChallengeTitle, AuthCacheTTL: cfg.AuthCacheTTL, WebhookRetry: cfg.WebhookRetry})
	if err != nil {
		return err
	}
	if cfg.Dev {
		if err := mountDevUI(ctx, log, at, db, svc, mounts, dev); err != nil {
			return err
		}
	}
	var counter httpapi.Counter = httpapi.NewMemory()
	if db.Dialect() == store.Postgres {
		counter = db // replicas share one count
	}
	api := httpapi.New(httpapi.Config{Service: svc, Logger: log, Counter: counter,
		Webhooks: didit.Webhooks{Secret: hookSecret}, Ready: db.Ready, Fault: db.NoteFault, Mounts: mounts,
		RequestTimeout: cfg.RequestTimeout, Metrics: reg})
	closePprof, err := listenPprof(cfg, log)
	if err != nil {
		return err
	}
	defer closePprof()
	return serveUntilDone(ctx, cfg, log, ln, at, api, svc, reg)
}

// serverSecret is the server secret; where it came from goes to the log,
// because a generated one must be backed up with the database.
func serverSecret(cfg config.Config, log *slog.Logger) ([]byte, error) {
	sec, src, err := secret(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case src.generated:
		log.Warn("generated a server secret; back it up with the database: API keys and codes do not survive losing it", "path", src.path)
	case src.path != "":
		log.Info("server secret read from its file", "path", src.path)
	}
	return sec, nil
}

// listenPprof serves the profiling endpoints when KYCGATE_PPROF_ADDR is
// set, on their own listener so they are never on the partner's; the
// returned func closes it.
func listenPprof(cfg config.Config, log *slog.Logger) (func(), error) {
	if cfg.PprofAddr == "" {
		return func() {}, nil
	}
	pln, err := net.Listen("tcp", cfg.PprofAddr)
	if err != nil {
		return nil, fmt.Errorf("KYCGATE_PPROF_ADDR: listen: %w", err)
	}
	go (&http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 5 * time.Second}).Serve(pln)
	log.Warn("profiling endpoints on "+pln.Addr().String()+"/debug/pprof/ (KYCGATE_PPROF_ADDR)", "pprof", pln.Addr().String())
	return func() { pln.Close() }, nil
}

// where is this server's address as it reaches itself (local) and as
// users and Didit reach it (public).
type where struct{ local, public string }

// mountDevUI adds the development pages (landing page, API reference,
// onboarding demo) and the demo tenant whose key the demo page uses.
func mountDevUI(ctx context.Context, log *slog.Logger, at where, db *store.DB, svc *kyc.Service, mounts map[string]http.Handler, dev devui.Config) error {
	id, key, err := devui.EnsureDemoTenant(ctx, db, svc)
	if err != nil {
		return err
	}
	dev.DemoKey, dev.Info.DemoTenantID, dev.Info.URL = key, id, at.public
	if err := devui.Mount(mounts, dev); err != nil {
		return err
	}
	log.Warn("development pages: open "+at.public+"/ (API reference, onboarding demo with the Demo tenant, mailbox, simulator)",
		"home", at.public+"/", "demo_tenant", id)
	return nil
}

// newMailer is SMTP when configured, else the development mailbox mounted
// at /_dev/mail/; it says which in dev for the landing page, and hands
// the mailbox to the development pages, whose list page it becomes.
func newMailer(cfg config.Config, log *slog.Logger, at where, mounts map[string]http.Handler, dev *devui.Config) (kyc.Mailer, func(), error) {
	info := &dev.Info
	if cfg.SMTPURL == "" {
		info.Mail, info.Mailbox = "development mailbox (nothing is delivered)", true
		box := mail.NewMailbox()
		dev.Mailbox = box
		mounts["/_dev/mail/"] = http.StripPrefix("/_dev/mail", box.Handler())
		mounts["/_dev/mail"] = http.RedirectHandler("/_dev/mail/", http.StatusFound)
		log.Warn("development mailbox: codes are NOT emailed; read them at "+at.public+"/_dev/mail/ (set KYCGATE_SMTP_URL for real delivery)",
			"mailbox", at.public+"/_dev/mail/")
		return box, func() {}, nil
	}
	smtp, err := mail.NewSMTP(mail.Config{URL: cfg.SMTPURL, From: cfg.MailFrom, Subject: cfg.MailSubject, Logger: log})
	if err != nil {
		return nil, nil, &config.Error{Var: "KYCGATE_SMTP_URL", Problem: err.Error()}
	}
	log.Info("mail via SMTP", "smtp", smtp.Endpoint().String())
	info.Mail = "SMTP via " + smtp.Endpoint().String()
	return smtp, func() { smtp.Close() }, nil
}

// newProvider is the Didit client, for real Didit when configured, else for
// the built-in simulator mounted at /_didit/; it returns the webhook secret,
// and says which in dev for the landing page.
func newProvider(cfg config.Config, log *slog.Logger, at where, mounts map[string]http.Handler, dev *devui.Config) (*didit.Client, string, func(), error) {
	diditURL, diditKey, workflow, hookSecret := cfg.DiditURL, cfg.DiditAPIKey, cfg.DiditWorkflowID, cfg.DiditWebhookSecret
	closeSim := func() {}
	dev.Info.Didit = "Didit at " + diditURL
	if cfg.Embedded() {
		diditKey, workflow, hookSecret = randomHex(16), uuid.NewString(), randomHex(24)
		simCfg := diditsim.DefaultConfig()
		simCfg.APIKey = diditKey
		simCfg.WorkflowIDs = []string{workflow}
		simCfg.BaseURL = at.public + "/_didit"
		simCfg.Webhooks = []diditsim.Destination{{URL: at.local + "/webhooks/didit", Secret: hookSecret}}
		simCfg.Logger = log.With("component", "didit-sim")
		sim, err := diditsim.New(simCfg)
		if err != nil {
			return nil, "", nil, fmt.Errorf("didit simulator: %w", err)
		}
		closeSim = func() { sim.Close() }
		dev.Info.Didit, dev.Info.Simulator, dev.Sessions = "built-in simulator (verifications are simulated)", true, sim.Sessions
		mounts["/_didit/"] = http.StripPrefix("/_didit", sim.Handler())
		diditURL = at.local + "/_didit"
		log.Warn("built-in Didit simulator: verifications are SIMULATED; open a session_url to pick an outcome (set KYCGATE_DIDIT_API_KEY for real Didit)",
			"simulator", at.public+"/_didit/")
	}
	client, err := didit.NewClient(didit.ClientConfig{BaseURL: diditURL, APIKey: diditKey, WorkflowID: workflow,
		Logger: log.With("component", "didit")})
	if err != nil {
		closeSim()
		return nil, "", nil, fmt.Errorf("didit client: %w", err)
	}
	return client, hookSecret, closeSim, nil
}

// serveUntilDone serves api on ln with the reconciler beside it until ctx ends, then
// shuts down: /readyz turns 503 first and the server keeps serving for the
// delay, so load balancers take the replica out before connections are
// refused (a second signal cuts the delay short); then in-flight requests
// finish. The admin listener (reg's /metrics) serves beside it and stops
// after it, so the drain can be watched.
func serveUntilDone(ctx context.Context, cfg config.Config, log *slog.Logger, ln net.Listener, at where, api *httpapi.Server, svc *kyc.Service, reg *metrics.Metrics) error {
	adm, err := listenAdmin(cfg, log, reg, svc)
	if err != nil {
		return err
	}
	defer adm.close()
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 15*time.Second, // the answer to a request that used all its time
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	var wg sync.WaitGroup
	recCtx, stopRec := context.WithCancel(ctx)
	defer func() { stopRec(); wg.Wait() }()
	wg.Go(func() { reconcile(recCtx, svc, cfg.ReconcileInterval, log) })
	idle := time.Second
	if len(cfg.WebhookRetry) > 0 {
		idle = min(idle, cfg.WebhookRetry[0])
	}
	wg.Go(func() { deliverWebhooks(recCtx, svc, idle, log) })
	wg.Go(func() { retryDiditDeletions(recCtx, svc, deletionPoll, log) })

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	adm.serve(errc)
	log.Info("kycgate listening", "addr", ln.Addr().String(), "public_url", at.public, "database", dbKind(cfg.DatabaseURL))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	api.Drain()
	if cfg.ShutdownDelay > 0 {
		log.Info("shutting down: /readyz answers 503; still serving until the delay ends (a second signal skips it)",
			"delay", cfg.ShutdownDelay.String())
		t := time.NewTimer(cfg.ShutdownDelay)
		select {
		case <-t.C:
		case <-hurryOf(ctx):
		}
		t.Stop()
	}
	log.Info("shutting down: listener closed, draining in-flight requests")
	// In-flight requests may run for their whole budget.
	shutCtx, cancel := context.WithTimeout(context.Background(), max(30*time.Second, cfg.RequestTimeout+5*time.Second))
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := adm.shutdown(shutCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// dbName names the database engine for people; unlike dbKind it never
// shows a PostgreSQL URL (it may carry a password).
func dbName(url string) string {
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		return "SQLite (" + path + ")"
	}
	return "PostgreSQL"
}

func dbKind(url string) string {
	if strings.HasPrefix(url, "sqlite:") {
		return url
	}
	return "postgres"
}

// reconcile polls Didit for sessions with no news, so a lost webhook never
// strands a user, sweeps the creation claims of dead processes, seals new
// audit entries into their chains every few seconds, and prunes expired
// rows once an hour.
func reconcile(ctx context.Context, svc *kyc.Service, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(max(every/4, time.Second))
	defer t.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	seal := time.NewTicker(auditSealEvery)
	defer seal.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-seal.C:
			if _, err := svc.SealAudit(ctx); err != nil && ctx.Err() == nil {
				log.Error("seal audit log", "err", err)
			}
		case <-prune.C:
			if n, err := svc.Prune(ctx); err != nil {
				log.Error("prune", "err", err)
			} else if n > 0 {
				log.Info("pruned expired rows", "rows", n)
			}
		case <-t.C:
			if n, err := svc.SweepClaims(ctx); err != nil {
				if ctx.Err() == nil {
					log.Error("sweep lapsed claims", "err", err)
				}
			} else if n > 0 {
				log.Warn("lapsed session claims swept, their quota given back", "claims", n)
			}
			for {
				n, err := svc.Reconcile(ctx, every, 100)
				if err != nil {
					if ctx.Err() == nil {
						log.Error("reconcile", "err", err)
					}
					break
				}
				if n < 100 {
					break
				}
			}
		}
	}
}

// auditSealEvery is how often a replica chains new audit entries: short,
// so what `kycgate audit list` shows is sealed within seconds; any number
// of replicas may seal (the store lets one at a time).
const auditSealEvery = 3 * time.Second

// deletionPoll is how often a replica looks for Didit deletions due
// again: a cheap indexed read, and the first retry waits 10 s anyway.
const deletionPoll = 5 * time.Second

// retryDiditDeletions retries the Didit deletions erasures left queued
// (docs/erasure.md). Every replica runs it; each deletion is leased to one
// of them per attempt. A failure is logged by the service and retried
// with backoff.
func retryDiditDeletions(ctx context.Context, svc *kyc.Service, every time.Duration, log *slog.Logger) {
	poll(ctx, every, every, func() bool {
		deleted, failed, err := svc.RetryDiditDeletions(ctx, false)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("retry didit deletions", "err", err)
		case deleted+failed > 0:
			log.Info("retried didit deletions", "deleted", deleted, "failed", failed)
		}
		return err == nil && deleted > 0 && failed == 0 // maybe more due
	})
}

// webhookBatch is how many deliveries one worker claims and attempts at
// once.
const webhookBatch = 20

// deliverWebhooks is this replica's webhook worker: every replica runs
// one, and the store's leases keep them from attempting one delivery
// twice. It claims what is due, attempts it, and looks again at once when
// the batch was full, else after idle. Attempts under way when ctx ends
// finish (each within its timeout) and are recorded.
func deliverWebhooks(ctx context.Context, svc *kyc.Service, idle time.Duration, log *slog.Logger) {
	poll(ctx, 0, idle, func() bool {
		n, err := svc.DeliverWebhooks(ctx, webhookBatch)
		if err != nil && ctx.Err() == nil {
			log.Error("deliver webhooks", "err", err)
		}
		return err == nil && n == webhookBatch
	})
}

// poll runs step after first, then again at once while it reports more
// work due, else after idle, until ctx ends. A timer rather than a ticker,
// so a slow step is never followed at once by a tick that queued during it.
func poll(ctx context.Context, first, idle time.Duration, step func() (more bool)) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if step() {
			t.Reset(0)
		} else {
			t.Reset(idle)
		}
	}
}

func diditSim(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := diditsim.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, "info")
	cfg.Logger = log
	addr := getenv("DIDITSIM_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8090"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + ln.Addr().String()
	}
	sim, err := diditsim.New(cfg)
	if err != nil {
		return err
	}
	defer sim.Close()
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("didit simulator listening", "addr", ln.Addr().String(), "base_url", cfg.BaseURL)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutCtx)
}
