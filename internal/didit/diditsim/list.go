package diditsim

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// listRow is one result of GET /v3/sessions/ (docs/didit.md §5.3).
type listRow struct {
	SessionID         string              `json:"session_id"`
	SessionKind       string              `json:"session_kind"`
	SessionNumber     int                 `json:"session_number"`
	SessionURL        string              `json:"session_url"`
	PortraitImage     *string             `json:"portrait_image"`
	DocumentType      *string             `json:"document_type"`
	FullName          *string             `json:"full_name"`
	Country           *string             `json:"country"`
	Status            string              `json:"status"`
	VendorData        *string             `json:"vendor_data"`
	DiditInternalID   string              `json:"didit_internal_id"`
	CreatedAt         string              `json:"created_at"`
	Features          []map[string]string `json:"features"`
	WorkflowLabel     string              `json:"workflow_label"`
	PhoneNumber       map[string]any      `json:"phone_number"`
	EmailAddress      map[string]any      `json:"email_address"`
	AdditionalDetails map[string]any      `json:"additional_details"`
}

type listPage struct {
	Count    int       `json:"count"`
	Next     *string   `json:"next"`
	Previous *string   `json:"previous"`
	Results  []listRow `json:"results"`
}

// listFilter is the list endpoint's query, as a test on one session.
type listFilter struct {
	env, kind                         string
	from, to                          time.Time // zero: open
	hasVendor                         bool
	vendor, workflow, country, search string
	statuses                          []string
}

func (f listFilter) matches(sess *session) bool {
	switch {
	case sess.deleted, sess.env != f.env, f.kind == "business":
		return false
	case f.hasVendor && (sess.vendorData == nil || *sess.vendorData != f.vendor):
		return false
	case len(f.statuses) > 0 && !slices.Contains(f.statuses, sess.status):
		return false
	case f.workflow != "" && !strings.EqualFold(f.workflow, sess.workflowID):
		return false
	case !f.from.IsZero() && sess.createdAt.Before(f.from):
		return false
	case !f.to.IsZero() && sess.createdAt.After(f.to):
		return false
	case f.country != "" && !strings.EqualFold(f.country, sessionCountry(sess)):
		return false
	case f.search != "" && !sessionMatchesSearch(sess, f.search):
		return false
	}
	return true
}

func (s *Sim) handleList(w http.ResponseWriter, r *http.Request, env string) {
	q := r.URL.Query()
	fe := fieldErrors{}
	from := parseListDate(fe, q, "date_from", false)
	to := parseListDate(fe, q, "date_to", true)
	kind := q.Get("session_kind")
	if kind != "" && kind != "user" && kind != "business" && kind != "all" {
		fe.add("session_kind", fmt.Sprintf("Select a valid choice. %s is not one of the available choices.", kind))
	}
	if len(fe) > 0 {
		writeJSON(w, http.StatusBadRequest, fe)
		return
	}
	// DRF's LimitOffsetPagination ignores unusable values.
	limit := 50
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		limit = min(n, 1000)
	}
	offset := 0
	if n, err := strconv.Atoi(q.Get("offset")); err == nil && n > 0 {
		offset = n
	}
	f := listFilter{env: env, kind: kind, from: from, to: to, hasVendor: q.Has("vendor_data"), vendor: q.Get("vendor_data"),
		workflow: q.Get("workflow_id"), country: q.Get("country"), search: q.Get("search")}
	if v := q.Get("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			f.statuses = append(f.statuses, strings.TrimSpace(st))
		}
	}

	s.mu.Lock()
	var matched []*session
	for i := len(s.order) - 1; i >= 0; i-- { // newest first
		if f.matches(s.order[i]) {
			matched = append(matched, s.order[i])
		}
	}
	page := listPage{Count: len(matched), Results: []listRow{}}
	for i := offset; i < len(matched) && i < offset+limit; i++ {
		page.Results = append(page.Results, listRowOf(matched[i]))
	}
	page.Next, page.Previous = pageLinks(s.baseURL, q, limit, offset, len(matched))
	b, err := marshalCompact(page) // under the lock: rows read feature items
	s.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, detail("A server error occurred."))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// pageLinks builds DRF-style next/previous URLs: the request's query with
// limit and offset replaced (offset dropped on the first page).
func pageLinks(base string, q url.Values, limit, offset, count int) (next, prev *string) {
	link := func(off int) *string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = slices.Clone(vs)
		}
		v.Set("limit", strconv.Itoa(limit))
		if off > 0 {
			v.Set("offset", strconv.Itoa(off))
		} else {
			v.Del("offset")
		}
		u := base + "/v3/sessions/?" + v.Encode()
		return &u
	}
	if offset+limit < count {
		next = link(offset + limit)
	}
	if offset > 0 {
		prev = link(max(offset-limit, 0))
	}
	return next, prev
}

func parseListDate(fe fieldErrors, q url.Values, name string, endOfDay bool) time.Time {
	v := q.Get(name)
	if v == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			if layout == "2006-01-02" && endOfDay {
				t = t.Add(24*time.Hour - time.Nanosecond)
			}
			return t
		}
	}
	fe.add(name, "Enter a valid date/time.")
	return time.Time{}
}

func sessionCountry(sess *session) string {
	if sess.result != nil && len(sess.result.ids) > 0 {
		return sess.result.ids[0].IssuingState
	}
	return ""
}

func sessionMatchesSearch(sess *session, term string) bool {
	term = strings.ToLower(term)
	hay := []string{sess.id, strconv.Itoa(sess.number)}
	if sess.vendorData != nil {
		hay = append(hay, *sess.vendorData)
	}
	if sess.result != nil && len(sess.result.ids) > 0 {
		hay = append(hay, sess.result.ids[0].FullName)
	}
	for _, h := range hay {
		if strings.Contains(strings.ToLower(h), term) {
			return true
		}
	}
	return false
}

func listRowOf(sess *session) listRow {
	row := listRow{
		SessionID:       sess.id,
		SessionKind:     "user",
		SessionNumber:   sess.number,
		SessionURL:      sess.url,
		Status:          sess.status,
		VendorData:      sess.vendorData,
		DiditInternalID: sess.internalID,
		CreatedAt:       pyTime(sess.createdAt),
		Features:        featureStatuses(sess),
		WorkflowLabel:   "KYC (simulated)",
	}
	r := sess.result
	if r == nil {
		return row
	}
	if len(r.ids) > 0 {
		id := r.ids[0]
		row.PortraitImage, row.DocumentType, row.FullName, row.Country = &id.PortraitImage, &id.DocumentType, &id.FullName, &id.IssuingState
	}
	if len(r.phones) > 0 {
		row.PhoneNumber = map[string]any{"number": r.phones[0].FullNumber, "is_verified": r.phones[0].VerifiedAt != nil}
	}
	if len(r.emails) > 0 {
		row.EmailAddress = map[string]any{"email": r.emails[0].Email, "is_verified": r.emails[0].VerifiedAt != nil}
	}
	details := map[string]any{"aml": nil, "liveness": nil, "face_match": nil}
	if len(r.aml) > 0 {
		details["aml"] = map[string]any{"status": r.aml[0].Status, "total_hits": r.aml[0].TotalHits}
	}
	if len(r.liveness) > 0 {
		details["liveness"] = map[string]any{"status": r.liveness[0].Status, "score": r.liveness[0].Score}
	}
	if len(r.faceMatches) > 0 {
		details["face_match"] = map[string]any{"status": r.faceMatches[0].Status, "score": r.faceMatches[0].Score}
	}
	row.AdditionalDetails = details
	return row
}
