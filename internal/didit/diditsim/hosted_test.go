package diditsim_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

func (h *harness) page(p string) response {
	h.t.Helper()
	resp, err := h.http.Get(h.base + p)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func TestHostedPageFlowWithCallback(t *testing.T) {
	h := newHarness(t, nil)
	s := h.create(map[string]any{"vendor_data": "web", "callback": "https://app.example.test/kyc/return?from=sim"})
	id, token := s["session_id"].(string), s["session_token"].(string)
	pageURL, _ := url.Parse(s["url"].(string))
	pagePath := strings.TrimPrefix(pageURL.Path, mountPrefix)

	r := h.page(pagePath)
	html := string(r.Body)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET page: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{id, `name="outcome" value="approved"`, `value="declined_liveness"`, `value="in_review_aml"`,
		`value="abandon"`, `value="vpn"`, `value="declined_blocklist_email"`, `name="ip_address"`,
		`action="` + h.base + `/session/` + token + `"`, "In Progress"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, external := range []string{"<script", "<link", "src=\"http", "@import"} {
		if strings.Contains(html, external) {
			t.Errorf("page is not self-contained: has %q", external)
		}
	}
	if st, _ := h.sim.Session(id); st.Status != "In Progress" {
		t.Errorf("opening the page: status %q", st.Status)
	}
	ds := h.wait(2)
	if ds[1].Status != "In Progress" {
		t.Errorf("webhooks: %s", summarize(ds))
	}
	// Re-opening changes nothing.
	h.page(pagePath)

	r = h.form(pagePath, map[string]string{"outcome": "approved", "ip_address": "198.51.100.9", "ip_country": "Chile", "ip_country_code": "cl", "ip_city": "Santiago"})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if loc.Host != "app.example.test" || loc.Path != "/kyc/return" || q.Get("verificationSessionId") != id || q.Get("status") != "Approved" || q.Get("from") != "sim" {
		t.Errorf("redirect = %s", loc)
	}
	dec, _ := h.decision(id)
	if dec["status"] != "Approved" || path(dec, "ip_analyses", 0, "ip_address") != "198.51.100.9" ||
		path(dec, "ip_analyses", 0, "ip_country_code") != "CL" || path(dec, "ip_analyses", 0, "ip_city") != "Santiago" {
		t.Errorf("decision after form: %v %v", dec["status"], path(dec, "ip_analyses", 0))
	}
	ds = h.wait(3)
	if ds[2].Status != "Approved" {
		t.Errorf("webhooks: %s", summarize(ds))
	}

	// A finished session cannot be submitted again.
	r = h.form(pagePath, map[string]string{"outcome": "declined_id"})
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "already finished") {
		t.Errorf("second POST: %d", r.Status)
	}
}

func TestHostedPageWithoutCallbackShowsResult(t *testing.T) {
	h := newHarness(t, nil)
	s := h.create(map[string]any{"vendor_data": "web2"})
	token := s["session_token"].(string)
	// The language-prefixed form of the link works too.
	p := "/en/session/" + token
	if r := h.page(p); r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", p, r.Status)
	}
	r := h.form(p, map[string]string{"outcome": "in_review_aml"})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != h.base+p {
		t.Fatalf("POST: %d %q", r.Status, r.Header.Get("Location"))
	}
	done := h.page(p)
	if !strings.Contains(string(done.Body), "In Review") || !strings.Contains(string(done.Body), "Verification finished") ||
		strings.Contains(string(done.Body), "<form") {
		t.Errorf("done page: %s", done.Body)
	}

	abandonID := h.create(map[string]any{"vendor_data": "web3"})
	r = h.form("/session/"+abandonID["session_token"].(string), map[string]string{"outcome": "abandon"})
	if st, _ := h.sim.Session(abandonID["session_id"].(string)); r.Status != http.StatusSeeOther || st.Status != "Abandoned" {
		t.Errorf("abandon: %d %s", r.Status, st.Status)
	}

	bad := h.create(map[string]any{"vendor_data": "web4"})
	r = h.form("/session/"+bad["session_token"].(string), map[string]string{"outcome": "approved", "ip_address": "not-an-ip"})
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "not an IP address") || !strings.Contains(string(r.Body), `value="not-an-ip"`) {
		t.Errorf("bad IP: %d", r.Status)
	}

	// An outcome that does not exist is refused with the list of those that do.
	r = h.form("/session/"+bad["session_token"].(string), map[string]string{"outcome": "declined"})
	for _, want := range []string{"unknown outcome", "approved", "declined_id", "in_review_aml", "abandon"} {
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), want) {
			t.Errorf("unknown outcome: %d, page lacks %q", r.Status, want)
		}
	}

	if r := h.page("/session/ZZZZZZZZZZZZ"); r.Status != http.StatusNotFound {
		t.Errorf("unknown token: %d", r.Status)
	}
}

func TestNotStartedWebhookOnOpen(t *testing.T) {
	h := newHarness(t, nil, func(c *diditsim.Config) { c.NotStartedWebhook = diditsim.NotStartedOnOpen })
	s := h.create(map[string]any{"vendor_data": "open"})
	id := s["session_id"].(string)
	other := h.create(map[string]any{"vendor_data": "never-opened"})["session_id"].(string)
	if err := h.sim.Expire(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	ds := h.wait(1)
	if len(ds) != 1 || ds[0].Status != "Expired" {
		t.Fatalf("before opening: %s", summarize(ds))
	}
	h.page("/session/" + s["session_token"].(string))
	ds = h.wait(3)
	if ds[1].Status != "Not Started" || ds[2].Status != "In Progress" || ds[1].SessionID != id {
		t.Errorf("on open: %s", summarize(ds))
	}
}

func TestMediaPlaceholder(t *testing.T) {
	h := newHarness(t, nil)
	id := h.create(map[string]any{"vendor_data": "m"})["session_id"].(string)
	if err := h.sim.Complete(context.Background(), id, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	dec, _ := h.decision(id)
	u, err := url.Parse(path(dec, "id_verifications", 0, "portrait_image").(string))
	if err != nil {
		t.Fatal(err)
	}
	r := h.page(strings.TrimPrefix(u.Path, mountPrefix) + "?" + u.RawQuery)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "image/png" {
		t.Errorf("media: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
}
