package devui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/api"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/mail"
)

// mux mounts the pages the way httpapi does: the patterns beside a
// catch-all that stands for the API's 404.
func mux(t *testing.T, cfg Config) *http.ServeMux {
	t.Helper()
	mounts := map[string]http.Handler{}
	if err := Mount(mounts, cfg); err != nil {
		t.Fatal(err)
	}
	m := http.NewServeMux()
	for p, h := range mounts {
		m.Handle(p, h)
	}
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "api 404", http.StatusNotFound) })
	return m
}

func serve(m http.Handler, method, target, remote string) (int, string) {
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	m.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body)
}

func TestLandingIsExactlyRoot(t *testing.T) {
	m := mux(t, Config{Info: Info{Database: "SQLite (x.db)", Mail: "development mailbox", Mailbox: true, URL: "http://127.0.0.1:8080"}})
	code, body := serve(m, "GET", "http://127.0.0.1:8080/", "")
	if code != 200 || !strings.Contains(body, "SQLite (x.db)") || !strings.Contains(body, "tenant create --name Acme") {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	if !strings.Contains(body, `href="/_dev/mail/"`) {
		t.Error("the landing page does not link the mailbox")
	}
	for _, target := range []string{"/index.html", "/kyc", "/_dev/", "/_dev/api/nope"} {
		if code, body := serve(m, "GET", target, ""); code != 404 || body != "api 404\n" {
			t.Errorf("GET %s: %d %q, want the API's 404", target, code, body)
		}
	}
	if code, _ := serve(m, "POST", "/", ""); code != 404 {
		t.Errorf("POST /: %d, want the API's 404", code)
	}
	// With SMTP and real Didit nothing links the pages that are not there.
	m = mux(t, Config{Info: Info{Mail: "SMTP via smtp.example.com:587", Didit: "Didit at https://verification.didit.me"}})
	_, body = serve(m, "GET", "/", "")
	for _, s := range []string{`href="/_dev/mail/"`, `href="/_didit/"`} {
		if strings.Contains(body, s) {
			t.Errorf("the landing page links %s though it is not mounted", s)
		}
	}
	if !strings.Contains(body, "SMTP via smtp.example.com:587") {
		t.Error("the landing page does not say mail goes via SMTP")
	}
}

func TestDemoKeyOnlyOnLoopback(t *testing.T) {
	m := mux(t, Config{DemoKey: "kg_demo", Info: Info{DemoTenantID: "tn_demo"}})
	for _, c := range []struct {
		target, remote string
		ok             bool
	}{
		{"http://127.0.0.1:8080/_dev/demo/key", "127.0.0.1:5555", true},
		{"http://localhost:8080/_dev/demo/key", "127.0.0.1:5555", true},
		{"http://[::1]:8080/_dev/demo/key", "[::1]:5555", true},
		// A reverse proxy on this machine: loopback peer, public Host.
		{"http://kyc.example.com/_dev/demo/key", "127.0.0.1:5555", false},
		// DNS rebinding: the attacker's name resolves to 127.0.0.1.
		{"http://rebind.attacker.test:8080/_dev/demo/key", "127.0.0.1:5555", false},
		{"http://127.0.0.1:8080/_dev/demo/key", "192.0.2.7:5555", false},
	} {
		code, body := serve(m, "GET", c.target, c.remote)
		if got := code == 200 && strings.Contains(body, "kg_demo"); got != c.ok {
			t.Errorf("%s from %s: %d %s, want ok=%v", c.target, c.remote, code, body, c.ok)
		}
		if !c.ok && strings.Contains(body, "kg_demo") {
			t.Errorf("%s from %s leaked the key", c.target, c.remote)
		}
	}
	// No key (its creation is off): a clear refusal, not an empty key.
	if code, _ := serve(mux(t, Config{}), "GET", "http://127.0.0.1/_dev/demo/key", "127.0.0.1:1"); code != 403 {
		t.Errorf("no demo key: %d, want 403", code)
	}
}

func TestReferenceHasEveryOperation(t *testing.T) {
	m := mux(t, Config{})
	code, body := serve(m, "GET", "/_dev/api/", "")
	if code != 200 {
		t.Fatalf("GET /_dev/api/: %d", code)
	}
	for _, s := range []string{`data-operation="kycPrepare"`, `data-operation="kycPrepareWallet"`, `data-operation="kycStatus"`,
		"<code>challenge_not_found</code>", "also at <code>/api/kyc/prepare</code>", "<strong>Envelope.</strong>"} {
		if !strings.Contains(body, s) {
			t.Errorf("reference lacks %s", s)
		}
	}
	if strings.Contains(body, `data-operation="apiKycPrepare"`) {
		t.Error("the /api twin is rendered as an operation of its own")
	}
	if code, body := serve(m, "GET", "/_dev/api/openapi.yaml", ""); code != 200 || body != string(api.OpenAPI) {
		t.Errorf("openapi.yaml: %d, %d bytes, want the embedded %d", code, len(body), len(api.OpenAPI))
	}
}

// A document written by hand: unquoted status codes, a $ref chain, an
// operation without security, and markup in a description.
func TestReferenceFromHandWrittenDocument(t *testing.T) {
	spec := []byte(`openapi: 3.1.0
info: {title: t, version: "1"}
security: [{ApiKey: []}]
paths:
  /b:
    get:
      operationId: second
      security: []
      description: "<script>x</script>"
      responses:
        200: {$ref: '#/components/responses/Ok'}
  /a:
    post:
      operationId: first
      responses:
        404:
          description: gone
          content:
            application/json:
              schema:
                oneOf:
                  - $ref: '#/components/schemas/Gone'
components:
  responses:
    Ok: {description: fine}
  schemas:
    Gone:
      properties:
        status: {const: gone}
        message: {const: It is gone}
`)
	ref, err := newReference(spec)
	if err != nil {
		t.Fatal(err)
	}
	ops := ref.Tags[0].Ops
	if len(ops) != 2 || ops[0].ID != "second" || ops[1].ID != "first" {
		t.Fatalf("operations %+v, want second then first (the file's order)", ops)
	}
	if ops[0].Auth || !ops[1].Auth {
		t.Errorf("auth: second %v (security: []), first %v (the default)", ops[0].Auth, ops[1].Auth)
	}
	if r := ops[0].Responses; len(r) != 1 || r[0].Code != "200" || r[0].Description != "fine" {
		t.Errorf("second's responses %+v, want 200 fine through the $ref", r)
	}
	if c := ops[1].Responses[0].Cases; len(c) != 1 || c[0] != (envelopeCase{"gone", "It is gone"}) {
		t.Errorf("first's cases %+v", c)
	}
	if got := string(markdown(ops[0].Description)); strings.Contains(got, "<script>") {
		t.Errorf("description not escaped: %s", got)
	}
}

func TestMarkdownEscapes(t *testing.T) {
	got := string(markdown("Say **<b>hi</b>** `a<b` *x*\n\n- one\n  more\n- two"))
	want := "<p>Say <strong>&lt;b&gt;hi&lt;/b&gt;</strong> <code>a&lt;b</code> <em>x</em></p>\n<ul>\n<li>one more<li>two</ul>\n"
	if got != want {
		t.Errorf("markdown:\n got %q\nwant %q", got, want)
	}
}

func TestSimulatorIndexListsSessions(t *testing.T) {
	vendor := "user-1"
	sessions := []diditsim.SessionInfo{{ID: "s1", Number: 7, URL: "http://127.0.0.1:8080/_didit/session/tok", Status: "Not Started",
		VendorData: &vendor, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	m := mux(t, Config{Sessions: func() []diditsim.SessionInfo { return sessions }})
	code, body := serve(m, "GET", "/_didit/", "")
	if code != 200 || !strings.Contains(body, `href="http://127.0.0.1:8080/_didit/session/tok"`) || !strings.Contains(body, "2026-01-02 03:04:05") {
		t.Fatalf("GET /_didit/: %d\n%s", code, body)
	}
	// Without the simulator, /_didit/ is not mounted at all.
	if code, _ := serve(mux(t, Config{}), "GET", "/_didit/", ""); code != 404 {
		t.Errorf("no simulator: GET /_didit/ %d, want 404", code)
	}
}

// The mailbox's list is a page like the others, with their navigation;
// its JSON, its ?to= filter and each message's HTML part still answer.
func TestMailboxPage(t *testing.T) {
	box := mail.NewMailbox()
	for _, m := range []kyc.CodeMail{{To: "ada@example.com", Code: "111111"}, {To: "bob@example.com", Code: "222222"}} {
		if err := box.SendCode(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	m := mux(t, Config{Mailbox: box, Info: Info{Mailbox: true, Simulator: true, URL: "http://127.0.0.1:8080"}})
	m.Handle("/_dev/mail/", http.StripPrefix("/_dev/mail", box.Handler())) // as serve mounts it
	code, body := serve(m, "GET", "/_dev/mail/", "")
	if code != 200 || !strings.Contains(body, "111111") || !strings.Contains(body, "222222") {
		t.Fatalf("GET /_dev/mail/: %d\n%s", code, body)
	}
	for _, link := range []string{`href="/"`, `href="/_dev/api/"`, `href="/_dev/demo/"`, `href="/_dev/mail/"`, `href="/_didit/"`} {
		if !strings.Contains(body, link) {
			t.Errorf("the mailbox page lacks the navigation's %s", link)
		}
	}
	_, body = serve(m, "GET", "/_dev/mail/?to=ada@example.com", "")
	if !strings.Contains(body, "111111") || strings.Contains(body, "222222") {
		t.Errorf("?to=ada@example.com shows another address's mail:\n%s", body)
	}
	code, body = serve(m, "GET", "/_dev/mail/?format=json&to=bob@example.com", "")
	if code != 200 || !strings.HasPrefix(body, "[") || !strings.Contains(body, "222222") || strings.Contains(body, "111111") {
		t.Errorf("JSON for bob@example.com: %d %s", code, body)
	}
	id := box.Messages()[0].ID
	if !strings.Contains(body, id) {
		t.Fatalf("JSON lacks the message id %s", id)
	}
	if code, body := serve(m, "GET", "/_dev/mail/"+id, ""); code != 200 || !strings.Contains(body, "222222") {
		t.Errorf("GET /_dev/mail/%s: %d", id, code)
	}
	// Without the mailbox (SMTP), the page is not mounted.
	if code, _ := serve(mux(t, Config{}), "GET", "/_dev/mail/", ""); code != 404 {
		t.Errorf("no mailbox: GET /_dev/mail/ %d, want 404", code)
	}
}
