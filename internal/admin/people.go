package admin

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

type personJSON struct {
	PersonID    string           `json:"person_id"`
	Email       string           `json:"email,omitempty"`
	Wallet      string           `json:"wallet,omitempty"`
	WalletChain string           `json:"wallet_chain,omitempty"`
	CreatedAt   string           `json:"created_at"`
	Enrollments []enrollmentJSON `json:"enrollments"`
	Sessions    []sessionJSON    `json:"sessions"`
}

type enrollmentJSON struct {
	TenantID       string `json:"tenant_id"`
	Email          string `json:"email,omitempty"`
	Wallet         string `json:"wallet,omitempty"`
	EmailVerified  bool   `json:"email_verified"`
	WalletVerified bool   `json:"wallet_verified"`
	PendingEmail   string `json:"pending_email,omitempty"`
	CreatedAt      string `json:"created_at"`
}

type sessionJSON struct {
	SessionID   string `json:"session_id"`
	TenantID    string `json:"tenant_id"`
	Status      string `json:"status"`
	HasDecision bool   `json:"has_decision"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
}

func personOut(p kyc.PersonRecord) personJSON {
	out := personJSON{PersonID: p.PersonID, Email: p.Email, Wallet: p.Wallet, WalletChain: p.WalletChain,
		CreatedAt: rfc(p.CreatedAt), Enrollments: []enrollmentJSON{}, Sessions: []sessionJSON{}}
	for _, e := range p.Enrollments {
		out.Enrollments = append(out.Enrollments, enrollmentJSON{e.TenantID, e.Email, e.Wallet, e.EmailVerified,
			e.WalletVerified, e.PendingEmail, rfc(e.CreatedAt)})
	}
	for _, s := range p.Sessions {
		out.Sessions = append(out.Sessions, sessionJSON{s.ID, s.TenantID, string(s.Status), s.HasDecision,
			rfc(s.CreatedAt), rfc(s.UpdatedAt)})
	}
	return out
}

// personQuery reads ?email= or ?wallet= (exactly one) and ?tenant=.
func personQuery(r *http.Request) (kyc.PersonQuery, error) {
	q := r.URL.Query()
	pq := kyc.PersonQuery{Email: q.Get("email"), Wallet: q.Get("wallet"), TenantID: q.Get("tenant")}
	if (pq.Email == "") == (pq.Wallet == "") {
		return pq, badRequest("Give exactly one of email and wallet")
	}
	return pq, nil
}

func (a API) lookupPerson(r *http.Request) (reply, error) {
	q, err := personQuery(r)
	if err != nil {
		return reply{}, err
	}
	p, err := a.Service.LookupPerson(r.Context(), q)
	if err != nil {
		return reply{}, notFound(err, "Person")
	}
	return reply{200, "Person", personOut(p)}, nil
}

// erasePerson answers 200 when the erasure is complete, and 202 when
// kycgate's part is done but deleting some sessions at Didit failed and
// is being retried (didit_pending lists them).
func (a API) erasePerson(r *http.Request) (reply, error) {
	q, err := personQuery(r)
	if err != nil {
		return reply{}, err
	}
	rep, err := a.Service.ErasePerson(r.Context(), q)
	if err != nil {
		return reply{}, notFound(err, "Person")
	}
	out := map[string]any{"person_erased": rep.PersonErased, "enrollments": rep.Enrollments,
		"sessions": rep.Sessions, "didit_deleted": nonNil(rep.Didit), "didit_pending": nonNil(rep.DiditPending)}
	if len(rep.DiditPending) > 0 {
		out["didit_error"] = rep.DiditError
		return reply{202, "Erased here; deletion at Didit is pending and retried", out}, nil
	}
	return reply{200, "Erased", out}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type auditJSON struct {
	ID        int64  `json:"id"`
	TenantID  string `json:"tenant_id,omitempty"`
	At        string `json:"at"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Subject   string `json:"subject,omitempty"`
	Result    string `json:"result"`
	RequestID string `json:"request_id,omitempty"`
	Seq       int64  `json:"seq"`
	PrevHash  string `json:"prev_hash,omitempty"`
	Hash      string `json:"hash,omitempty"`
}

func auditOut(e kyc.AuditEntry) auditJSON {
	return auditJSON{e.ID, e.TenantID, e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Subject,
		e.Result, e.RequestID, e.Seq, e.PrevHash, e.Hash}
}

// auditFilter reads the audit log's query parameters.
func (a API) auditFilter(q url.Values) (kyc.AuditFilter, error) {
	f := kyc.AuditFilter{TenantID: q.Get("tenant"), Actor: q.Get("actor"), Action: q.Get("action"), Limit: 100}
	email, wallet := q.Get("subject_email"), q.Get("subject_wallet")
	if email != "" && wallet != "" {
		return f, badRequest("Give at most one of subject_email and subject_wallet")
	}
	if email != "" || wallet != "" {
		var err error
		if f.Subject, err = a.Service.AuditSubjectOf(email, wallet); err != nil {
			return f, err
		}
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, badRequest(name + " must be an RFC 3339 time")
			}
			*dst = t
		}
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, badRequest("before must be an entry id")
		}
		f.BeforeID = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, badRequest("limit must be a whole number from 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

// auditLog answers a page of entries, newest first; next_before, present
// when the page is full, asks for the next one.
func (a API) auditLog(r *http.Request) (reply, error) {
	f, err := a.auditFilter(r.URL.Query())
	if err != nil {
		return reply{}, err
	}
	es, err := a.Service.AuditLog(r.Context(), f)
	if err != nil {
		return reply{}, err
	}
	out := map[string]any{}
	entries := make([]auditJSON, 0, len(es))
	for _, e := range es {
		entries = append(entries, auditOut(e))
	}
	out["entries"] = entries
	if len(es) > 0 && len(es) >= f.Limit {
		out["next_before"] = es[len(es)-1].ID
	}
	return reply{200, "Audit log, newest first", out}, nil
}

// verifyAudit answers 200 either way: ok says whether every chain holds.
func (a API) verifyAudit(r *http.Request) (reply, error) {
	v, err := a.Service.VerifyAudit(r.Context(), r.URL.Query().Get("tenant"))
	if err != nil {
		return reply{}, err
	}
	heads := v.Heads
	if heads == nil {
		heads = map[string]string{}
	}
	out := map[string]any{"ok": v.Broken == nil, "tenants": v.Tenants, "entries": v.Entries,
		"unsealed": v.Unsealed, "heads": heads}
	if v.Broken != nil {
		out["broken"] = auditOut(*v.Broken)
		out["reason"] = v.Reason
	}
	msg := "Every chain holds"
	if v.Broken != nil {
		msg = "A chain is broken"
	}
	return reply{200, msg, out}, nil
}
