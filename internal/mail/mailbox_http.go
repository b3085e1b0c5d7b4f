package mail

import (
	"bytes"
	"encoding/json"
	htemplate "html/template"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// Handler serves the mailbox:
//
//	GET /            HTML list, newest first, with each message's text part
//	GET /?format=json or Accept: application/json   the same as a JSON array
//	GET /?to=ADDR    either of them, only the messages sent to ADDR
//	GET /{id}        one message's HTML part
//
// It expects to be mounted with http.StripPrefix (e.g. at /_dev/mail).
func (m *Mailbox) Handler() http.Handler { return http.HandlerFunc(m.serveHTTP) }

func (m *Mailbox) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Codes are secrets even in development: keep them out of caches.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")

	p := r.URL.Path
	if p == "" || p == "/" {
		if WantsJSON(r) {
			m.ServeJSON(w, r)
			return
		}
		m.serveList(w, r, p == "")
		return
	}
	id := strings.TrimPrefix(p, "/")
	msg, ok := m.find(id)
	if !ok || strings.Contains(id, "/") {
		http.Error(w, "no such message", http.StatusNotFound)
		return
	}
	// The part is our own template output, but it is still mail content:
	// no scripts, no remote loads.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(msg.HTML))
}

// WantsJSON reports whether a request for the list asks for JSON
// (?format=json, or Accept: application/json).
func WantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	for _, v := range r.Header.Values("Accept") {
		for _, t := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(t), ";")
			if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
				return true
			}
		}
	}
	return false
}

// ServeJSON answers the list as a JSON array, newest first: only the
// messages to the request's ?to= address when it names one.
func (m *Mailbox) ServeJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	body, err := json.Marshal(m.MessagesTo(r.URL.Query().Get("to")))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (m *Mailbox) serveList(w http.ResponseWriter, r *http.Request, noSlash bool) {
	// Mounted at /_dev/mail and asked for without the trailing slash, a
	// relative link "id" would resolve to /_dev/id; prefix it with the
	// last path segment instead. Relative links survive any reverse proxy.
	prefix := ""
	if noSlash {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			if base := path.Base(u.Path); base != "/" && base != "." {
				prefix = base + "/"
			}
		}
	}
	var buf bytes.Buffer
	to := r.URL.Query().Get("to")
	err := listTemplate.Execute(&buf, struct {
		Prefix, To string
		Messages   []Message
	}{prefix, to, m.MessagesTo(to)})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
}

var listTemplate = htemplate.Must(htemplate.New("list").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kycgate development mailbox</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:52rem;padding:0 1rem;color:#1f2328}
article{border:1px solid #d0d7de;border-radius:6px;padding:1rem;margin:1rem 0}
h2{font-size:1rem;margin:0 0 .25rem}
.meta{color:#57606a;font-size:.875rem;margin:0 0 .75rem}
pre{background:#f6f8fa;padding:.75rem;white-space:pre-wrap;margin:0 0 .5rem}
</style>
</head>
<body>
<h1>Development mailbox</h1>
<p>{{len .Messages}} message(s){{if .To}} to {{.To}} (<a href="?">all</a>){{end}}, newest first. Nothing here was delivered. <a href="?format=json{{if .To}}&amp;to={{.To}}{{end}}">JSON</a></p>
{{range .Messages}}<article id="m-{{.ID}}">
<h2>{{.Subject}}</h2>
<p class="meta">To {{.To}} &middot; <time datetime="{{.At.Format "2006-01-02T15:04:05.000Z07:00"}}">{{.At.Format "2006-01-02 15:04:05 UTC"}}</time></p>
<pre>{{.Text}}</pre>
<a href="{{$.Prefix}}{{.ID}}">HTML part</a>
</article>
{{else}}<p>No messages yet.</p>
{{end}}</body>
</html>
`))
