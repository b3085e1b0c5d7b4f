// Package devui is what a newcomer sees in the browser in development mode:
// a landing page at /, an API reference rendered from api/openapi.yaml, an
// onboarding demo that drives the real partner API with a demo tenant, and
// an index of the Didit simulator's pages. Everything is embedded, so the
// pages load with no network. Production mounts none of it.
package devui

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/kycgate/kycgate/api"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/mail"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{"md": markdown, "lower": strings.ToLower}).ParseFS(templateFS, "templates/*.html"))

// Info is what the landing page says is running.
type Info struct {
	URL          string // where users reach this server
	Database     string // e.g. "SQLite (/path/kycgate.db)" or "PostgreSQL"
	Mail         string // "development mailbox" or "SMTP via host:port"
	Mailbox      bool   // the development mailbox is mounted at /_dev/mail/
	Didit        string // "built-in simulator" or the real API's URL
	Simulator    bool   // the simulator is mounted at /_didit/
	Version      string // the binary's version, from its build info (the caller reads it)
	DemoTenantID string
}

// Config is what Mount needs.
type Config struct {
	Info Info
	// DemoKey is the demo tenant's API key, handed only to the demo page on
	// a loopback connection.
	DemoKey string
	// Sessions lists the simulator's sessions for /_didit/; nil when real
	// Didit is configured.
	Sessions func() []diditsim.SessionInfo
	// Mailbox is the development mailbox, whose list /_dev/mail/ shows
	// with the other pages' navigation; nil when mail goes out by SMTP.
	// Its own handler, mounted by the caller under /_dev/mail/, still
	// answers the JSON list and each message.
	Mailbox *mail.Mailbox
}

// Mount adds the development pages to mounts (pattern → handler, as
// httpapi.Config.Mounts takes them). "/{$}" matches exactly / so every other
// unknown path keeps the API's JSON 404.
func Mount(mounts map[string]http.Handler, cfg Config) error {
	if cfg.Info.Version == "" {
		cfg.Info.Version = "unknown"
	}
	ref, err := embeddedReference()
	if err != nil {
		return err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return fmt.Errorf("devui: static files: %w", err)
	}
	info := cfg.Info
	mounts["GET /{$}"] = page("landing.html", "Welcome", info, nothing)
	mounts["GET /_dev/api/{$}"] = page("reference.html", "API reference", info, func(*http.Request) any { return ref })
	mounts["GET /_dev/api/openapi.yaml"] = http.HandlerFunc(serveOpenAPI)
	mounts["GET /_dev/demo/{$}"] = page("demo.html", "Onboarding demo", info, nothing)
	mounts["GET /_dev/demo/key"] = demoKey(cfg.DemoKey, info.DemoTenantID)
	mounts["GET /_dev/static/"] = http.StripPrefix("/_dev/static/", http.FileServerFS(static))
	if cfg.Sessions != nil {
		mounts["GET /_didit/{$}"] = page("simulator.html", "Didit simulator", info, func(*http.Request) any { return cfg.Sessions() })
	}
	if cfg.Mailbox != nil {
		mounts["GET /_dev/mail/{$}"] = mailboxPage(cfg.Mailbox, info)
	}
	return nil
}

// embeddedReference parses and validates the embedded document once per
// process (some 40 ms), not at every start of a server: tests start many.
var embeddedReference = sync.OnceValues(func() (*reference, error) { return newReference(api.OpenAPI) })

// view is what every template gets: the page's title, what is running
// (the navigation links only what is mounted) and the page's own data.
type view struct {
	Title string
	Info  Info
	Data  any
}

// page renders one template into a buffer first, so a template error is a
// 500 rather than half a page.
func page(name, title string, info Info, data func(*http.Request) any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := pages.ExecuteTemplate(&buf, name, view{title, info, data(r)}); err != nil {
			http.Error(w, "devui: render "+name+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		// Scripts and styles come from our own files only; the simulator's
		// session pages are same-origin, so connect-src 'self' suffices.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		_, _ = buf.WriteTo(w)
	})
}

func nothing(*http.Request) any { return nil }

// mailList is what mailbox.html shows: the messages, all of them or only
// those to one address (?to=).
type mailList struct {
	To       string
	Messages []mail.Message
}

// mailboxPage is the development mailbox's list, as a page of its own
// with the navigation; ?format=json (or Accept: application/json) gets the
// mailbox's own JSON list, filtered by ?to= alike.
func mailboxPage(box *mail.Mailbox, info Info) http.Handler {
	list := page("mailbox.html", "Mailbox", info, func(r *http.Request) any {
		to := r.URL.Query().Get("to")
		return mailList{To: to, Messages: box.MessagesTo(to)}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mail.WantsJSON(r) {
			box.ServeJSON(w, r)
			return
		}
		list.ServeHTTP(w, r)
	})
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	// text/plain, not application/yaml: browsers show it instead of
	// downloading it, and tools read it either way.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(api.OpenAPI)
}

// demoKey hands the demo tenant's key to the demo page. The key is a real
// credential, so it goes only to a loopback peer that also named a loopback
// host: behind a reverse proxy on the same machine the peer is loopback too,
// but the Host is the public one, and a DNS-rebinding page names its own.
func demoKey(key, tenantID string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		if key == "" || !loopback(r) {
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": 403, "success": false,
				"status": "demo_unavailable", "message": "The demo key is given only to a browser on this machine (http://127.0.0.1 or localhost)"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"api_key": key, "tenant_id": tenantID})
	})
}

func loopback(r *http.Request) bool {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !isLoopback(peer) {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return isLoopback(host)
}

func isLoopback(h string) bool {
	h = strings.Trim(h, "[]")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
