package diditsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

var (
	uuidV4Re = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tokenRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{12}$`)
)

func TestAuth(t *testing.T) {
	h := newHarness(t, nil)
	body := map[string]any{"workflow_id": testWorkflow}

	r := h.do(http.MethodPost, "/v3/session/", "", body)
	if r.Status != http.StatusForbidden || string(r.Body) != `{"detail":"Authentication credentials were not provided."}` {
		t.Errorf("missing key: %d %s", r.Status, r.Body)
	}
	r = h.do(http.MethodPost, "/v3/session/", "wrong", body)
	if r.Status != http.StatusUnauthorized || r.json(t)["detail"] != "Invalid API key." {
		t.Errorf("wrong key: %d %s", r.Status, r.Body)
	}
	r = h.do(http.MethodGet, "/v3/sessions/", "wrong", nil)
	if r.Status != http.StatusUnauthorized {
		t.Errorf("wrong key on list: %d", r.Status)
	}
	// The harness sends the header in lower case; Go would canonicalise it
	// anyway, so this also covers X-API-Key.
	if r := h.do(http.MethodPost, "/v3/session/", testKey, body); r.Status != http.StatusCreated {
		t.Errorf("right key: %d %s", r.Status, r.Body)
	}

	h403 := newHarness(t, nil, func(c *diditsim.Config) { c.WrongKeyStatus = http.StatusForbidden })
	if r := h403.do(http.MethodPost, "/v3/session/", "wrong", body); r.Status != http.StatusForbidden {
		t.Errorf("WrongKeyStatus 403: got %d", r.Status)
	}
}

func TestCreateReturnsExactlyTheDocumentedFields(t *testing.T) {
	h := newHarness(t, nil)
	got := h.create(map[string]any{
		"vendor_data": "user-8812",
		"callback":    "https://app.example.test/kyc/return",
		"metadata":    map[string]any{"plan": "pro"},
		"language":    "es",
		"contact_details": map[string]any{
			"email": "ana@example.test",
		},
		"expected_details": map[string]any{"first_name": "Ana"},
		"unknown_field":    true, // ignored, as DRF does
	})
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"callback", "metadata", "session_id", "session_number", "session_token", "status", "url", "vendor_data", "workflow_id", "workflow_version"}
	if !slices.Equal(keys, want) {
		t.Fatalf("fields = %v, want %v", keys, want)
	}
	id, _ := got["session_id"].(string)
	token, _ := got["session_token"].(string)
	switch {
	case !uuidV4Re.MatchString(id):
		t.Errorf("session_id %q is not a UUIDv4", id)
	case !tokenRe.MatchString(token):
		t.Errorf("session_token %q is not 12 URL-safe characters", token)
	case got["url"] != h.base+"/session/"+token:
		t.Errorf("url = %v", got["url"])
	case got["status"] != "Not Started":
		t.Errorf("status = %v", got["status"])
	case got["vendor_data"] != "user-8812" || got["callback"] != "https://app.example.test/kyc/return":
		t.Errorf("echo: %v", got)
	case path(got, "metadata", "plan") != "pro":
		t.Errorf("metadata = %v", got["metadata"])
	case got["workflow_id"] != testWorkflow || got["workflow_version"] != float64(1):
		t.Errorf("workflow: %v %v", got["workflow_id"], got["workflow_version"])
	}
	second := h.create(nil)
	if second["session_number"].(float64) <= got["session_number"].(float64) {
		t.Errorf("session_number not increasing: %v then %v", got["session_number"], second["session_number"])
	}
	if second["vendor_data"] != nil || second["callback"] != nil || second["metadata"] != nil {
		t.Errorf("unset fields should be null: %v", second)
	}
	// The decision echoes what was stored verbatim.
	dec, _ := h.decision(id)
	if path(dec, "contact_details", "email") != "ana@example.test" || path(dec, "expected_details", "first_name") != "Ana" {
		t.Errorf("decision does not echo details: %v %v", dec["contact_details"], dec["expected_details"])
	}
}

func TestCreateValidation(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name string
		body any
		want string
	}{
		{"missing workflow", map[string]any{}, `{"workflow_id":["This field is required."]}`},
		{"empty body", "", `{"workflow_id":["This field is required."]}`},
		{"not a uuid", map[string]any{"workflow_id": "abc"}, `{"workflow_id":["Must be a valid UUID."]}`},
		{"unknown workflow", map[string]any{"workflow_id": "11111111-2222-4333-8444-555555555555"}, `{"workflow_id":["Workflow 11111111-2222-4333-8444-555555555555 not found."]}`},
		{"bad callback", map[string]any{"workflow_id": testWorkflow, "callback": "not a url"}, `{"callback":["Enter a valid URL."]}`},
		{"bad callback_method", map[string]any{"workflow_id": testWorkflow, "callback_method": "x"}, `{"callback_method":["\"x\" is not a valid choice."]}`},
		{"metadata list", map[string]any{"workflow_id": testWorkflow, "metadata": []int{1}}, `{"metadata":["Value must be valid JSON object."]}`},
		{"unknown scenario", map[string]any{"workflow_id": testWorkflow, "sandbox_scenario": "nope"}, `{"sandbox_scenario":["\"nope\" is not a valid choice."]}`},
		{"list body", []int{1}, `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(http.MethodPost, "/v3/session/", testKey, c.body)
			if r.Status != http.StatusBadRequest || string(r.Body) != c.want {
				t.Errorf("got %d %s, want 400 %s", r.Status, r.Body, c.want)
			}
		})
	}
	r := h.do(http.MethodPost, "/v3/session/", testKey, "{not json")
	if r.Status != http.StatusBadRequest || !strings.HasPrefix(r.json(t)["detail"].(string), "JSON parse error") {
		t.Errorf("bad JSON: %d %s", r.Status, r.Body)
	}
	if len(h.sim.Sessions()) != 0 {
		t.Errorf("failed creates stored sessions")
	}
}

func TestCreateReusesUnfinishedSessionByVendorData(t *testing.T) {
	h := newHarness(t, nil)
	first := h.create(map[string]any{"vendor_data": "user-1", "callback": "https://a.example/1", "metadata": map[string]any{"v": 1}})
	again := h.create(map[string]any{"vendor_data": "user-1", "callback": "https://a.example/2", "metadata": map[string]any{"v": 2}})
	if again["session_id"] != first["session_id"] || again["session_token"] != first["session_token"] {
		t.Fatalf("not reused: %v vs %v", first["session_id"], again["session_id"])
	}
	if again["callback"] != "https://a.example/2" || path(again, "metadata", "v") != float64(2) {
		t.Errorf("callback/metadata not refreshed: %v", again)
	}
	other := h.create(map[string]any{"vendor_data": "user-2"})
	if other["session_id"] == first["session_id"] {
		t.Errorf("different vendor_data reused the session")
	}
	// A finished session is not reused.
	if err := h.sim.Complete(context.Background(), first["session_id"].(string), diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	fresh := h.create(map[string]any{"vendor_data": "user-1"})
	if fresh["session_id"] == first["session_id"] {
		t.Errorf("approved session was reused")
	}
	// Only one Not Started webhook per session: the reuse sent none.
	h.wait(5) // user-1 Not Started, user-2 Not Started, In Progress, Approved, fresh Not Started
	n := 0
	for _, d := range h.sim.Deliveries() {
		if d.SessionID == first["session_id"] && d.Status == "Not Started" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Not Started deliveries for the reused session = %d, want 1", n)
	}
}

func TestDecisionBeforeCompletionHasNullFeatures(t *testing.T) {
	h := newHarness(t, nil)
	s := h.create(map[string]any{"vendor_data": "u"})
	dec, _ := h.decision(s["session_id"].(string))
	for _, k := range []string{"id_verifications", "nfc_verifications", "liveness_checks", "face_matches", "poa_verifications",
		"document_ai_documents", "phone_verifications", "email_verifications", "aml_screenings", "ip_analyses",
		"database_validations", "questionnaire_responses"} {
		v, present := dec[k]
		if !present || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, present)
		}
	}
	if dec["environment"] != "live" || dec["session_kind"] != "user" || dec["status"] != "Not Started" {
		t.Errorf("top level: %v %v %v", dec["environment"], dec["session_kind"], dec["status"])
	}
	if dec["session_url"] != s["url"] || dec["vendor_data"] != "u" || dec["callback"] != nil {
		t.Errorf("echo: %v", dec)
	}
	if rv, ok := dec["reviews"].([]any); !ok || len(rv) != 0 {
		t.Errorf("reviews = %v, want []", dec["reviews"])
	}
	if created, _ := dec["created_at"].(string); created != "2026-03-02T10:15:04.120000Z" {
		t.Errorf("created_at = %q", created)
	}
	if f, _ := dec["features"].([]any); len(f) == 0 {
		t.Errorf("features empty")
	}
}

func TestDecisionNotFoundAndDelete(t *testing.T) {
	h := newHarness(t, nil)
	for _, id := range []string{"5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11", "not-a-uuid"} {
		r := h.do(http.MethodGet, "/v3/session/"+id+"/decision/", testKey, nil)
		if r.Status != http.StatusNotFound || string(r.Body) != `{"detail":"Not found."}` {
			t.Errorf("unknown %s: %d %s", id, r.Status, r.Body)
		}
	}
	s := h.create(map[string]any{"vendor_data": "del"})
	id := s["session_id"].(string)
	h.wait(1)
	r := h.do(http.MethodDelete, "/v3/session/"+id+"/delete/", testKey, nil)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("delete: %d %q", r.Status, r.Body)
	}
	if r := h.do(http.MethodGet, "/v3/session/"+id+"/decision/", testKey, nil); r.Status != http.StatusNotFound {
		t.Errorf("decision after delete: %d", r.Status)
	}
	if r := h.do(http.MethodDelete, "/v3/session/"+id+"/delete/", testKey, nil); r.Status != http.StatusNotFound {
		t.Errorf("second delete: %d", r.Status)
	}
	list := h.do(http.MethodGet, "/v3/sessions/", testKey, nil).json(t)
	if list["count"] != float64(0) {
		t.Errorf("deleted session listed: %v", list)
	}
	if got := len(h.sim.Deliveries()); got != 1 {
		t.Errorf("delete sent a webhook: %d deliveries", got)
	}
}

func TestListPaginationFiltersAndRedirect(t *testing.T) {
	h := newHarness(t, nil)
	var ids []string
	for i := range 5 {
		s := h.create(map[string]any{"vendor_data": fmt.Sprintf("u%d", i)})
		ids = append(ids, s["session_id"].(string))
	}
	if err := h.sim.Complete(context.Background(), ids[1], diditsim.Outcome{Preset: diditsim.PresetDeclinedID}); err != nil {
		t.Fatal(err)
	}

	page := h.do(http.MethodGet, "/v3/sessions/?limit=2", testKey, nil).json(t)
	results := page["results"].([]any)
	if page["count"] != float64(5) || len(results) != 2 {
		t.Fatalf("page 1: count %v, %d results", page["count"], len(results))
	}
	if path(results, 0, "session_id") != ids[4] || path(results, 1, "session_id") != ids[3] {
		t.Errorf("not newest first")
	}
	if page["previous"] != nil || page["next"] != h.base+"/v3/sessions/?limit=2&offset=2" {
		t.Errorf("links: next %v previous %v", page["next"], page["previous"])
	}
	for _, k := range []string{"session_id", "session_kind", "session_number", "session_url", "portrait_image", "document_type",
		"full_name", "country", "status", "vendor_data", "didit_internal_id", "created_at", "features", "workflow_label",
		"phone_number", "email_address", "additional_details"} {
		if _, ok := results[0].(map[string]any)[k]; !ok {
			t.Errorf("row lacks %s", k)
		}
	}

	last := h.do(http.MethodGet, "/v3/sessions/?limit=2&offset=4", testKey, nil).json(t)
	if len(last["results"].([]any)) != 1 || last["next"] != nil || last["previous"] != h.base+"/v3/sessions/?limit=2&offset=2" {
		t.Errorf("last page: %v", last)
	}
	second := h.do(http.MethodGet, "/v3/sessions/?limit=2&offset=2", testKey, nil).json(t)
	if second["previous"] != h.base+"/v3/sessions/?limit=2" {
		t.Errorf("previous of page 2 = %v", second["previous"])
	}

	byVendor := h.do(http.MethodGet, "/v3/sessions/?vendor_data=u2", testKey, nil).json(t)
	if byVendor["count"] != float64(1) || path(byVendor, "results", 0, "session_id") != ids[2] {
		t.Errorf("vendor_data filter: %v", byVendor)
	}
	byStatus := h.do(http.MethodGet, "/v3/sessions/?status=Declined,In%20Review", testKey, nil).json(t)
	if byStatus["count"] != float64(1) || path(byStatus, "results", 0, "full_name") != "José Müller" {
		t.Errorf("status filter: %v", byStatus)
	}

	r := h.do(http.MethodGet, "/v3/sessions?limit=2", testKey, nil)
	if r.Status != http.StatusMovedPermanently || r.Header.Get("Location") != h.base+"/v3/sessions/?limit=2" {
		t.Errorf("no-slash list: %d Location %q", r.Status, r.Header.Get("Location"))
	}
}

func TestUpdateStatus(t *testing.T) {
	h := newHarness(t, nil)
	s := h.create(map[string]any{"vendor_data": "u"})
	id := s["session_id"].(string)
	patch := func(body any) response {
		return h.do(http.MethodPatch, "/v3/session/"+id+"/update-status/", testKey, body)
	}
	if r := patch(map[string]any{"new_status": "Approved"}); r.Status != http.StatusBadRequest || string(r.Body) != `{"detail":"Wrong Current Status"}` {
		t.Errorf("from Not Started: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{"new_status": "In Review"}); r.Status != http.StatusBadRequest || string(r.Body) != `{"new_status":["\"In Review\" is not a valid choice."]}` {
		t.Errorf("bad new_status: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{}); r.Status != http.StatusBadRequest || string(r.Body) != `{"new_status":["This field is required."]}` {
		t.Errorf("missing new_status: %d %s", r.Status, r.Body)
	}
	if r := patch(map[string]any{"new_status": "Approved", "send_email": true}); r.Status != http.StatusBadRequest {
		t.Errorf("send_email without address: %d %s", r.Status, r.Body)
	}
	if err := h.sim.Complete(context.Background(), id, diditsim.Outcome{Preset: diditsim.PresetDeclinedFaceMatch}); err != nil {
		t.Fatal(err)
	}
	h.wait(3)
	r := patch(map[string]any{"new_status": "Approved", "comment": "manual check ok"})
	if r.Status != http.StatusOK || string(r.Body) != `{"session_id":"`+id+`"}` {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	dec, _ := h.decision(id)
	if dec["status"] != "Approved" {
		t.Errorf("status = %v", dec["status"])
	}
	rv := path(dec, "reviews", 0)
	if path(rv, "user") != "API Client" || path(rv, "new_status") != "Approved" || path(rv, "comment") != "manual check ok" || path(rv, "created_at") == nil {
		t.Errorf("review = %v", rv)
	}
	ds := h.wait(4)
	if last := ds[3]; last.Status != "Approved" || last.SessionID != id {
		t.Errorf("update-status webhook: %+v", last)
	}
	// Resubmitted carries the nodes to redo.
	r = patch(map[string]any{"new_status": "Resubmitted", "nodes_to_resubmit": []map[string]string{{"node_id": "feature_ocr", "feature": "OCR"}}})
	if r.Status != http.StatusOK {
		t.Fatalf("resubmit: %d %s", r.Status, r.Body)
	}
	ds = h.wait(5)
	var body map[string]any
	_ = json.Unmarshal(ds[4].Body, &body)
	if body["status"] != "Resubmitted" || path(body, "resubmit_info", "nodes_to_resubmit", 0, "node_id") != "feature_ocr" {
		t.Errorf("resubmitted webhook: %s", ds[4].Body)
	}
	if _, ok := body["decision"]; ok {
		t.Errorf("Resubmitted webhook carries a decision")
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	h := newHarness(t, nil)
	for _, p := range []string{"/v3/nothing/", "/v4/session/", "/"} {
		r := h.do(http.MethodGet, p, testKey, nil)
		if r.Status != http.StatusNotFound || string(r.Body) != `{"detail":"Not found."}` {
			t.Errorf("%s: %d %s", p, r.Status, r.Body)
		}
	}
	r := h.do(http.MethodGet, "/v3/session/", testKey, nil)
	if r.Status != http.StatusMethodNotAllowed || string(r.Body) != `{"detail":"Method \"GET\" not allowed."}` || r.Header.Get("Allow") == "" {
		t.Errorf("GET create: %d %s allow=%q", r.Status, r.Body, r.Header.Get("Allow"))
	}
	// Like Django's APPEND_SLASH, any known route without its slash redirects.
	r = h.do(http.MethodPost, "/v3/session", testKey, map[string]any{})
	if r.Status != http.StatusMovedPermanently || r.Header.Get("Location") != h.base+"/v3/session/" {
		t.Errorf("POST /v3/session: %d %q", r.Status, r.Header.Get("Location"))
	}
}

func TestSandboxKeyIsASeparateApplication(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodPost, "/v3/session/", testSandbox, map[string]any{"workflow_id": testWorkflow, "vendor_data": "u"})
	if r.Status != http.StatusCreated {
		t.Fatalf("sandbox create: %d %s", r.Status, r.Body)
	}
	id := r.json(t)["session_id"].(string)
	dec := h.do(http.MethodGet, "/v3/session/"+id+"/decision/", testSandbox, nil).json(t)
	if dec["environment"] != "sandbox" {
		t.Errorf("environment = %v", dec["environment"])
	}
	if r := h.do(http.MethodGet, "/v3/session/"+id+"/decision/", testKey, nil); r.Status != http.StatusNotFound {
		t.Errorf("live key sees sandbox session: %d", r.Status)
	}
	ds := h.wait(1)
	if !strings.Contains(string(ds[0].Body), `"environment": "sandbox"`) {
		t.Errorf("webhook environment: %s", ds[0].Body)
	}
}

func TestScenarioPreselection(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a := h.create(map[string]any{"vendor_data": "a", "sandbox_scenario": "vpn"})["session_id"].(string)
	b := h.create(map[string]any{"vendor_data": "user-b+declined_id"})["session_id"].(string)
	c := h.create(map[string]any{"vendor_data": "c"})["session_id"].(string)
	for _, id := range []string{a, b, c} {
		if err := h.sim.Complete(ctx, id, diditsim.Outcome{}); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{a: "vpn", b: "declined_id", c: "approved"} {
		si, _ := h.sim.Session(id)
		if si.Outcome != want {
			t.Errorf("session %s outcome = %q, want %q", id, si.Outcome, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, nil)
	const n = 20
	var wg sync.WaitGroup
	numbers := make(chan float64, n)
	for i := range n {
		wg.Go(func() {
			s := h.create(map[string]any{"vendor_data": fmt.Sprintf("c%d", i)})
			numbers <- s["session_number"].(float64)
			id := s["session_id"].(string)
			if err := h.sim.Complete(context.Background(), id, diditsim.Outcome{}); err != nil {
				t.Error(err)
			}
			h.do(http.MethodGet, "/v3/session/"+id+"/decision/", testKey, nil)
			h.do(http.MethodGet, "/v3/sessions/", testKey, nil)
		})
	}
	wg.Wait()
	close(numbers)
	seen := map[float64]bool{}
	for num := range numbers {
		if seen[num] {
			t.Errorf("duplicate session_number %v", num)
		}
		seen[num] = true
	}
	ds := h.wait(3 * n)
	// Per session, deliveries arrive in transition order.
	order := map[string][]string{}
	for _, d := range ds {
		order[d.SessionID] = append(order[d.SessionID], d.Status)
	}
	for id, st := range order {
		if !slices.Equal(st, []string{"Not Started", "In Progress", "Approved"}) {
			t.Errorf("session %s deliveries out of order: %v", id, st)
		}
	}
}
