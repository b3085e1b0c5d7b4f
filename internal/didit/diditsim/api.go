package diditsim

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// apiFunc is an authenticated API handler; env is the calling key's
// environment ("live" or "sandbox").
type apiFunc func(w http.ResponseWriter, r *http.Request, env string)

// api authenticates (x-api-key), then rate-limits, then calls h — the order
// DRF runs them in. scopes nil means the generic scope of the method.
func (s *Sim) api(scopes []string, h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key") // header names are case-insensitive
		if key == "" {
			writeJSON(w, http.StatusForbidden, detail("Authentication credentials were not provided."))
			return
		}
		var env string
		switch {
		case keyEqual(key, s.cfg.APIKey):
			env = envLive
		case s.cfg.SandboxKey != "" && keyEqual(key, s.cfg.SandboxKey):
			env = envSandbox
		default:
			writeJSON(w, s.cfg.WrongKeyStatus, detail("Invalid API key."))
			return
		}
		sc := scopes
		if sc == nil {
			sc = []string{ScopeWrite}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				sc = []string{ScopeGet}
			}
		}
		if t := s.limiter.allow(key, sc, s.Now()); !t.ok {
			s.logger.Info("diditsim: throttled", "scope", t.scope, "limit", t.limit, "path", r.URL.Path)
			writeThrottled(w, t.limit, t.waitS, t.reset)
			return
		}
		h(w, r, env)
	})
}

func keyEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// createResponse is the 201 body of POST /v3/session/: exactly the fields of
// docs/didit.md §2.2, in that order.
type createResponse struct {
	SessionID       string          `json:"session_id"`
	SessionNumber   int             `json:"session_number"`
	SessionToken    string          `json:"session_token"`
	URL             string          `json:"url"`
	VendorData      *string         `json:"vendor_data"`
	Metadata        json.RawMessage `json:"metadata"`
	Status          string          `json:"status"`
	Callback        *string         `json:"callback"`
	WorkflowID      string          `json:"workflow_id"`
	WorkflowVersion int             `json:"workflow_version"`
}

var callbackMethods = []string{"initiator", "completer", "both"}

func (s *Sim) handleCreate(w http.ResponseWriter, r *http.Request, env string) {
	fields, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	req, fe := s.parseCreate(fields)
	if len(fe) > 0 {
		writeJSON(w, http.StatusBadRequest, fe)
		return
	}
	writeJSON(w, http.StatusCreated, s.createSession(env, req))
}

// createRequest is a valid POST /v3/session/ body.
type createRequest struct {
	workflowID        string
	vendorData        *string // nil: none given (or empty)
	callback          *string
	callbackMethod    string
	metadata          json.RawMessage
	language          string
	contact, expected json.RawMessage
	scenario          string
}

// parseCreate checks a create body field by field, as Didit's serializer
// does, and collects every field's error.
func (s *Sim) parseCreate(fields map[string]json.RawMessage) (createRequest, fieldErrors) {
	fe := fieldErrors{}
	var req createRequest
	switch raw := fields["workflow_id"]; {
	case len(raw) == 0:
		fe.add("workflow_id", "This field is required.")
	case isNull(raw):
		fe.add("workflow_id", "This field may not be null.")
	default:
		if str, ok := stringField(fe, fields, "workflow_id"); ok {
			id, valid := normalizeUUID(strings.TrimSpace(str))
			switch {
			case !valid:
				fe.add("workflow_id", "Must be a valid UUID.")
			case !s.knownWorkflow(id):
				fe.add("workflow_id", fmt.Sprintf("Workflow %s not found.", id))
			default:
				req.workflowID = id
			}
		}
	}
	if vendorData, ok := stringField(fe, fields, "vendor_data"); ok && vendorData != "" {
		req.vendorData = &vendorData
	}
	if callback, ok := stringField(fe, fields, "callback"); ok && callback != "" {
		if u, err := url.Parse(callback); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fe.add("callback", "Enter a valid URL.")
		}
		req.callback = &callback
	}
	callbackMethod, hasMethod := stringField(fe, fields, "callback_method")
	if hasMethod && !slices.Contains(callbackMethods, callbackMethod) {
		fe.add("callback_method", fmt.Sprintf("%q is not a valid choice.", callbackMethod))
	}
	if !hasMethod {
		callbackMethod = "initiator"
	}
	req.callbackMethod = callbackMethod
	// metadata: the docs send an object, one skill a JSON string; both are
	// stored and echoed verbatim.
	if raw := fields["metadata"]; !isNull(raw) {
		switch raw[0] {
		case '{', '"':
			req.metadata = clientJSON(raw)
		default:
			fe.add("metadata", "Value must be valid JSON object.")
		}
	}
	req.language, _ = stringField(fe, fields, "language")
	req.contact = objectField(fe, fields, "contact_details")
	req.expected = objectField(fe, fields, "expected_details")
	_, _ = stringField(fe, fields, "portrait_image")
	scenario, hasScenario := stringField(fe, fields, "sandbox_scenario")
	if hasScenario && scenario != "" {
		if _, ok := presetByName(scenario); !ok {
			fe.add("sandbox_scenario", fmt.Sprintf("%q is not a valid choice.", scenario))
		}
	}
	req.scenario = scenario
	return req, fe
}

// createSession makes the session, or hands back the vendor's unfinished
// one (docs/didit.md §2.2: still 201, with callback and metadata refreshed).
func (s *Sim) createSession(env string, req createRequest) createResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.reusableLocked(env, req.workflowID, req.vendorData)
	if sess != nil {
		sess.callback = req.callback
		sess.metadata = req.metadata
		if req.scenario != "" {
			sess.armed = req.scenario
		}
	} else {
		now := s.nowLocked()
		sess = &session{
			id:              newUUID(),
			token:           s.uniqueTokenLocked(),
			number:          s.nextNumber,
			env:             env,
			internalID:      newUUID(),
			workflowID:      req.workflowID,
			vendorData:      req.vendorData,
			callback:        req.callback,
			callbackMethod:  req.callbackMethod,
			language:        req.language,
			metadata:        req.metadata,
			contactDetails:  req.contact,
			expectedDetails: req.expected,
			status:          StatusNotStarted,
			createdAt:       now,
			updatedAt:       now,
			armed:           req.scenario,
		}
		if sess.armed == "" && req.vendorData != nil {
			sess.armed = armedPreset(*req.vendorData)
		}
		sess.url = s.baseURL + "/session/" + sess.token
		s.nextNumber++
		s.sessions[sess.id] = sess
		s.byToken[sess.token] = sess
		s.order = append(s.order, sess)
		if s.cfg.NotStartedWebhook == NotStartedOnCreate {
			sess.notStartedSent = true
			s.emitLocked(sess, EventStatusUpdated, nil)
		}
	}
	return createResponse{
		SessionID:       sess.id,
		SessionNumber:   sess.number,
		SessionToken:    sess.token,
		URL:             sess.url,
		VendorData:      sess.vendorData,
		Metadata:        sess.metadata,
		Status:          sess.status,
		Callback:        sess.callback,
		WorkflowID:      sess.workflowID,
		WorkflowVersion: workflowVersion,
	}
}

func (s *Sim) knownWorkflow(id string) bool {
	return len(s.workflows) == 0 || s.workflows[id]
}

// reusableLocked finds the newest unfinished session of the same
// application, workflow and vendor_data.
func (s *Sim) reusableLocked(env, workflowID string, vendor *string) *session {
	if vendor == nil {
		return nil
	}
	for i := len(s.order) - 1; i >= 0; i-- {
		sess := s.order[i]
		if !sess.deleted && sess.env == env && sess.workflowID == workflowID &&
			sess.vendorData != nil && *sess.vendorData == *vendor &&
			slices.Contains(reusableStatuses, sess.status) {
			return sess
		}
	}
	return nil
}

func (s *Sim) uniqueTokenLocked() string {
	for {
		t := newToken()
		if _, taken := s.byToken[t]; !taken {
			return t
		}
	}
}

// apiSessionLocked finds a session visible to env by the {id} path value;
// Didit's URLs take a UUID, so anything else is a 404 too.
func (s *Sim) apiSessionLocked(r *http.Request, env string) *session {
	id, ok := normalizeUUID(r.PathValue("id"))
	if !ok {
		return nil
	}
	sess, ok := s.sessions[id]
	if !ok || sess.deleted || sess.env != env {
		return nil
	}
	return sess
}

func (s *Sim) handleDecision(version string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request, env string) {
		s.mu.Lock()
		sess := s.apiSessionLocked(r, env)
		if sess == nil {
			s.mu.Unlock()
			notFound(w)
			return
		}
		// Encode under the lock: the feature items are shared with writers.
		var b []byte
		var err error
		if version == "v2" {
			b, err = marshalCompact(s.decisionV2Locked(sess))
		} else {
			b, err = marshalCompact(s.decisionV3Locked(sess))
		}
		s.mu.Unlock()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, detail("A server error occurred."))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

var updateStatusChoices = []string{StatusApproved, StatusDeclined, StatusResubmitted}

type resubmitNode struct {
	NodeID  string `json:"node_id"`
	Feature string `json:"feature"`
}

func (s *Sim) handleUpdateStatus(w http.ResponseWriter, r *http.Request, env string) {
	fields, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	fe := fieldErrors{}
	newStatus, has := stringField(fe, fields, "new_status")
	switch {
	case !has && len(fe) == 0:
		fe.add("new_status", "This field is required.")
	case has && !slices.Contains(updateStatusChoices, newStatus):
		fe.add("new_status", fmt.Sprintf("%q is not a valid choice.", newStatus))
	}
	comment, _ := stringField(fe, fields, "comment")
	var sendEmail bool
	if raw := fields["send_email"]; !isNull(raw) {
		if err := json.Unmarshal(raw, &sendEmail); err != nil {
			fe.add("send_email", "Must be a valid boolean.")
		}
	}
	email, hasEmail := stringField(fe, fields, "email_address")
	if hasEmail && email != "" {
		if _, err := mail.ParseAddress(email); err != nil {
			fe.add("email_address", "Enter a valid email address.")
		}
	} else if sendEmail {
		fe.add("email_address", "This field is required when send_email is true.")
	}
	_, _ = stringField(fe, fields, "email_language")
	var nodes []resubmitNode
	if raw := fields["nodes_to_resubmit"]; !isNull(raw) {
		if err := json.Unmarshal(raw, &nodes); err != nil {
			fe.add("nodes_to_resubmit", "Expected a list of {node_id, feature} objects.")
		}
	}
	if len(fe) > 0 {
		writeJSON(w, http.StatusBadRequest, fe)
		return
	}

	s.mu.Lock()
	sess := s.apiSessionLocked(r, env)
	if sess == nil {
		s.mu.Unlock()
		notFound(w)
		return
	}
	if !slices.Contains(updateStatusAllowedFrom, sess.status) {
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, detail("Wrong Current Status"))
		return
	}
	s.addReviewLocked(sess, "API Client", newStatus, comment)
	sess.status = newStatus
	sess.updatedAt = s.nowLocked()
	var info any
	if newStatus == StatusResubmitted && len(nodes) > 0 {
		info = map[string]any{"nodes_to_resubmit": nodes}
	}
	s.emitLocked(sess, EventStatusUpdated, info)
	id := sess.id
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"session_id": id})
}

func (s *Sim) handleDelete(w http.ResponseWriter, r *http.Request, env string) {
	s.mu.Lock()
	sess := s.apiSessionLocked(r, env)
	if sess != nil {
		// Soft delete, no webhook (docs/didit.md §5.2).
		sess.deleted = true
	}
	s.mu.Unlock()
	if sess == nil {
		notFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) handleBatchDelete(w http.ResponseWriter, r *http.Request, env string) {
	fields, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	var req struct {
		SessionNumbers []json.Number `json:"session_numbers"`
		DeleteAll      bool          `json:"delete_all"`
	}
	raw, _ := json.Marshal(fields)
	if err := json.Unmarshal(raw, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, fieldErrors{"session_numbers": {"Expected a list of session numbers."}})
		return
	}
	if !req.DeleteAll && len(req.SessionNumbers) == 0 {
		writeJSON(w, http.StatusBadRequest, fieldErrors{"non_field_errors": {"Provide session_numbers or delete_all."}})
		return
	}
	want := map[int]bool{}
	for _, n := range req.SessionNumbers {
		if i, err := strconv.Atoi(n.String()); err == nil {
			want[i] = true // unknown numbers are skipped silently
		}
	}
	s.mu.Lock()
	for _, sess := range s.order {
		if sess.env == env && (req.DeleteAll || want[sess.number]) {
			sess.deleted = true
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
