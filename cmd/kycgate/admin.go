package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	adminapi "github.com/kycgate/kycgate/internal/admin"
	"github.com/kycgate/kycgate/internal/config"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/metrics"
	"github.com/kycgate/kycgate/internal/webhook"
)

// adminListener is the operator's listener (KYCGATE_ADMIN_ADDR); a nil
// one (off) does nothing.
type adminListener struct {
	srv *http.Server
	ln  net.Listener
}

// listenAdmin opens the admin listener with /metrics and the admin API
// mounted, or returns nil when it is off.
func listenAdmin(cfg config.Config, log *slog.Logger, m *metrics.Metrics, svc *kyc.Service) (*adminListener, error) {
	if cfg.AdminAddr == "" {
		log.Info("admin listener off (KYCGATE_ADMIN_ADDR=off): no /metrics, no admin API")
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("KYCGATE_ADMIN_ADDR: listen on %s: %w", cfg.AdminAddr, err)
	}
	h := adminapi.New(cfg.AdminToken)
	h.Handle("GET /metrics", m.Handler())
	h.MountAPI(adminapi.API{Service: svc, Log: log.With("component", "admin"),
		CheckWebhookURL: func(u string) error { return webhook.CheckURL(u, cfg.WebhookAllowPrivate) }})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("admin listening", "admin_addr", ln.Addr().String(), "token", cfg.AdminToken != "")
	return &adminListener{srv: srv, ln: ln}, nil
}

// serve serves until shutdown, reporting a failure on errc.
func (a *adminListener) serve(errc chan<- error) {
	if a == nil {
		return
	}
	go func() {
		if err := a.srv.Serve(a.ln); err != http.ErrServerClosed {
			errc <- fmt.Errorf("admin listener: %w", err)
		}
	}()
}

// shutdown lets in-flight scrapes finish; it runs after the partner
// listener's, so the drain itself can be watched.
func (a *adminListener) shutdown(ctx context.Context) error {
	if a == nil {
		return nil
	}
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return nil
}

// close releases the listener when serving never began (start-up failed).
func (a *adminListener) close() {
	if a != nil {
		a.ln.Close()
	}
}
