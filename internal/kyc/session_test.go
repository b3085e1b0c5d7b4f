package kyc_test

// Service-level tests of sessions (docs/api.md §7, §11) on a real SQLite store:
// how provider events are ordered, and creation when a claim is stale.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// sessMailer keeps the last code sent to each address.
type sessMailer struct {
	mu    sync.Mutex
	codes map[string]string
}

func (m *sessMailer) SendCode(_ context.Context, cm kyc.CodeMail) error {
	to, code := cm.To, cm.Code
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[to] = code
	return nil
}

// sessProvider is an in-memory provider: sessions sess-1, sess-2, ... and
// decisions the test sets.
type sessProvider struct {
	mu        sync.Mutex
	n         int
	decisions map[string]kyc.Decision
	creates   int
	gets      int
	reuse     *kyc.ProviderSession // answer the next create with this session
	deleted   []string             // sessions DeleteSession deleted
	deleteErr error                // DeleteSession's answer while set
}

func (p *sessProvider) DeleteSession(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleteErr != nil {
		return p.deleteErr
	}
	p.deleted = append(p.deleted, id)
	return nil
}

func (p *sessProvider) CreateSession(context.Context, kyc.CreateSessionRequest) (kyc.ProviderSession, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creates++
	if p.reuse != nil {
		ps := *p.reuse
		p.reuse = nil
		return ps, nil
	}
	p.n++
	id := fmt.Sprintf("sess-%d", p.n)
	return kyc.ProviderSession{ID: id, URL: "https://verify.example/session/" + id, Status: kyc.StatusNotStarted}, nil
}

func (p *sessProvider) GetDecision(_ context.Context, id string) (kyc.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gets++
	d, ok := p.decisions[id]
	if !ok {
		return kyc.Decision{}, errors.New("provider: no decision")
	}
	return d, nil
}

func (p *sessProvider) setDecision(id string, d kyc.Decision) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.decisions == nil {
		p.decisions = map[string]kyc.Decision{}
	}
	p.decisions[id] = d
}

// sessRig is a Service on a fresh SQLite database with a tenant.
type sessRig struct {
	svc    *kyc.Service
	db     *store.DB
	clock  *testClock
	mail   *sessMailer
	tenant kyc.Tenant
	key    string // the tenant's API key
	obs    *countingObserver
}

func newSessRig(t *testing.T, provider kyc.Provider) *sessRig {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "kyc.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &sessRig{db: db, clock: &testClock{t: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)},
		mail: &sessMailer{codes: map[string]string{}}, obs: &countingObserver{}}
	r.svc, err = kyc.NewService(kyc.Deps{Store: db, Mailer: r.mail, Provider: provider, Clock: r.clock, Observer: r.obs},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	r.tenant, r.key, err = r.svc.CreateTenant(ctx, kyc.NewTenant{Name: "T", MonthlyQuota: &zero})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verified prepares email and proves it with the mailed code.
func (r *sessRig) verified(t *testing.T, email string) {
	t.Helper()
	ctx := context.Background()
	if _, err := r.svc.Prepare(ctx, r.tenant, email); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SendOTP(ctx, r.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	r.mail.mu.Lock()
	c := r.mail.codes[email]
	r.mail.mu.Unlock()
	if err := r.svc.VerifyOTP(ctx, r.tenant, kyc.OTPInput{Email: email, Code: c}); err != nil {
		t.Fatal(err)
	}
}

// create opens a session for a verified email and requires kind.
func (r *sessRig) create(t *testing.T, email, kind string) kyc.SessionView {
	t.Helper()
	res, err := r.svc.CreateSession(context.Background(), r.tenant, kyc.KYCTypePublic, kyc.Identity{Email: email})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if res.Kind != kind {
		t.Fatalf("create = %s, want %s", res.Kind, kind)
	}
	return res.Session
}

func (r *sessRig) session(t *testing.T, id string) kyc.Session {
	t.Helper()
	s, err := r.db.SessionByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r *sessRig) status(t *testing.T, email string) kyc.StatusResult {
	t.Helper()
	st, err := r.svc.Status(context.Background(), r.tenant, kyc.Identity{Email: email})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

func ipDecision(status kyc.DiditStatus, ip string, blocklisted bool) *kyc.Decision {
	return &kyc.Decision{Status: status, IPInfo: []kyc.IPInfo{{IPAddress: ip, IPCountry: "Spain"}},
		Blocklisted: blocklisted, Raw: []byte(`{"status":"` + string(status) + `","ip":"` + ip + `"}`)}
}

// TestSessionEventOrdering: docs/api.md §11's rules, with explicit event
// times. Each case starts from a fresh session and applies events in
// order; want is the stored status afterwards and how many events changed
// the row.
func TestSessionEventOrdering(t *testing.T) {
	t.Parallel()
	type step struct {
		status kyc.DiditStatus
		at     int // seconds after the session's creation
		id     string
		dec    *kyc.Decision
	}
	cases := []struct {
		name    string
		steps   []step
		want    kyc.DiditStatus
		applied int
		ip      string // ip of the kept decision, "" for none
	}{
		{"in order", []step{{"Not Started", 1, "", nil}, {"In Progress", 2, "", nil}, {"Approved", 3, "", ipDecision("Approved", "10.0.0.1", false)}},
			"Approved", 2, "10.0.0.1"},
		{"older event ignored", []step{{"In Review", 10, "", ipDecision("In Review", "10.0.0.1", false)}, {"In Progress", 5, "", nil}},
			"In Review", 1, "10.0.0.1"},
		{"older final ignored", []step{{"Approved", 20, "", ipDecision("Approved", "10.0.0.1", false)}, {"Declined", 15, "", ipDecision("Declined", "10.0.0.2", true)}},
			"Approved", 1, "10.0.0.1"},
		{"final never downgraded by a newer non-final", []step{{"Approved", 10, "", ipDecision("Approved", "10.0.0.1", false)},
			{"In Progress", 20, "", nil}, {"Resubmitted", 30, "", nil}, {"Not Started", 40, "", nil}, {"In Review", 50, "", nil}},
			"Approved", 1, "10.0.0.1"},
		{"same second: later stage wins", []step{{"In Progress", 10, "", nil}, {"Not Started", 10, "", nil},
			{"Approved", 10, "", ipDecision("Approved", "10.0.0.1", false)}, {"In Review", 10, "", nil}},
			"Approved", 2, "10.0.0.1"},
		{"newer final replaces final (reviewer)", []step{{"Declined", 10, "", ipDecision("Declined", "10.0.0.2", false)},
			{"Approved", 20, "", ipDecision("Approved", "10.0.0.1", false)}},
			"Approved", 2, "10.0.0.1"},
		{"kyc expired after approved", []step{{"Approved", 10, "", ipDecision("Approved", "10.0.0.1", false)}, {"Kyc Expired", 20, "", nil}},
			"Kyc Expired", 2, "10.0.0.1"},
		{"duplicate event id", []step{{"Approved", 10, "ev-1", ipDecision("Approved", "10.0.0.1", false)},
			{"Approved", 20, "ev-1", ipDecision("Approved", "10.0.0.9", true)}},
			"Approved", 1, "10.0.0.1"},
		{"duplicate without event id", []step{{"In Progress", 10, "", nil}, {"In Progress", 10, "", nil}},
			"In Progress", 1, ""},
		{"decision arrives after the status", []step{{"Approved", 10, "", nil}, {"Approved", 10, "poll-1", ipDecision("Approved", "10.0.0.1", false)}},
			"Approved", 2, "10.0.0.1"},
		{"later decision of the same status (data.updated)", []step{{"Approved", 10, "a", ipDecision("Approved", "10.0.0.1", false)},
			{"Approved", 12, "b", ipDecision("Approved", "10.0.0.3", false)}},
			"Approved", 2, "10.0.0.3"},
		{"unknown status ignored", []step{{"In Progress", 10, "", nil}, {"Finished", 20, "", nil}, {"approved", 30, "", nil}},
			"In Progress", 1, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &sessProvider{}
			r := newSessRig(t, p)
			email := fmt.Sprintf("order%d@example.com", i)
			r.verified(t, email)
			s := r.create(t, email, kyc.CreateNew)
			created := r.clock.Now()
			for _, st := range tc.steps {
				ev := kyc.SessionEvent{EventID: st.id, SessionID: s.ID, Status: st.status,
					At: created.Add(time.Duration(st.at) * time.Second), Decision: st.dec}
				if err := r.svc.HandleEvent(context.Background(), ev); err != nil {
					t.Fatalf("HandleEvent(%s @%d): %v", st.status, st.at, err)
				}
			}
			got := r.session(t, s.ID)
			if got.Status != tc.want || got.Version != int64(tc.applied) {
				t.Fatalf("stored %s after %d changes, want %s after %d", got.Status, got.Version, tc.want, tc.applied)
			}
			var ip string
			if len(got.IPInfo) > 0 {
				ip = got.IPInfo[0].IPAddress
			}
			if ip != tc.ip {
				t.Fatalf("kept decision ip %q, want %q", ip, tc.ip)
			}
			st := r.status(t, email)
			if st.Status != kyc.KYCStatus(tc.want) || st.Approved != (tc.want == "Approved") {
				t.Fatalf("status %+v for %s", st, tc.want)
			}
		})
	}
}

// TestSessionEventFetchesDecision: a decision status without a decision
// makes the service fetch it; only a decision of the same status is kept,
// and until one is kept the session stays watched.
func TestSessionEventFetchesDecision(t *testing.T) {
	t.Parallel()
	p := &sessProvider{}
	r := newSessRig(t, p)
	r.verified(t, "fetch@example.com")
	s := r.create(t, "fetch@example.com", kyc.CreateNew)
	at := r.clock.Now().Add(time.Second)
	ctx := context.Background()

	// The provider still says In Progress: the decision is not used.
	p.setDecision(s.ID, *ipDecision("In Progress", "10.0.0.5", false))
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{SessionID: s.ID, Status: "In Review", At: at}); err != nil {
		t.Fatal(err)
	}
	if got := r.session(t, s.ID); got.Status != "In Review" || got.Decision != nil || !got.Watch {
		t.Fatalf("In Review without decision: %+v", got)
	}
	p.setDecision(s.ID, *ipDecision("Approved", "10.0.0.6", true))
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{SessionID: s.ID, Status: "Approved", At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	got := r.session(t, s.ID)
	if got.Status != "Approved" || got.Decision == nil || got.Watch || !got.Blocklisted || len(got.IPInfo) != 1 || got.IPInfo[0].IPAddress != "10.0.0.6" {
		t.Fatalf("Approved with fetched decision: %+v", got)
	}
	if st := r.status(t, "fetch@example.com"); !st.Approved || !st.Session.Blocklisted {
		t.Fatalf("status %+v", st)
	}
	// Unknown sessions are ignored without error.
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{SessionID: "nope", Status: "Approved", At: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.SessionByID(ctx, "nope"); !errors.Is(err, kyc.ErrNotFound) {
		t.Fatalf("unknown session stored: %v", err)
	}
}

// TestSessionStaleClaim: a create call that died holding the person's
// creation claim (a crashed replica) delays others only until the claim
// expires; then one of them creates the session.
func TestSessionStaleClaim(t *testing.T) {
	t.Parallel()
	p := &sessProvider{}
	r := newSessRig(t, p)
	const email = "claim@example.com"
	r.verified(t, email)
	ctx := context.Background()
	enr, err := r.db.FindEnrollment(ctx, r.tenant.ID, email, "")
	if err != nil {
		t.Fatal(err)
	}
	now := r.clock.Now()
	if ok, err := r.db.ClaimSessionCreation(ctx, enr.PersonID, "crashed-replica", now.Add(60*time.Second), now); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	// While the claim is live (and the clock stands still) the call waits
	// for it, and gives up when its context does, creating nothing.
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = r.svc.CreateSession(wctx, r.tenant, kyc.KYCTypePublic, kyc.Identity{Email: email})
	if !isFailure(err) || p.creates != 0 {
		t.Fatalf("create during a live claim: %v (provider creates %d)", err, p.creates)
	}
	// Once it expires, the next call takes over.
	r.clock.add(61 * time.Second)
	s := r.create(t, email, kyc.CreateNew)
	if st := r.status(t, email); st.Session.ID != s.ID {
		t.Fatalf("status shows %s, want %s", st.Session.ID, s.ID)
	}
	if p.creates != 1 {
		t.Fatalf("provider creates = %d, want 1", p.creates)
	}
}

// TestSessionProviderReturnsKnownSession: Didit answers a create with the
// person's unfinished session when it has one (docs/didit.md §2.2). When that is
// a session kycgate stores as final (a reviewer reopened it: Declined →
// Resubmitted, a webhook the event rules ignore), create resumes it: no new
// session row, no quota, and the session is watched again.
func TestSessionProviderReturnsKnownSession(t *testing.T) {
	t.Parallel()
	p := &sessProvider{}
	r := newSessRig(t, p)
	ctx := context.Background()
	five := 5
	tenant, _, err := r.svc.CreateTenant(ctx, kyc.NewTenant{Name: "Q", MonthlyQuota: &five})
	if err != nil {
		t.Fatal(err)
	}
	r.tenant = tenant
	month := r.clock.Now().Format("2006-01")
	r.verified(t, "again@example.com")
	s := r.create(t, "again@example.com", kyc.CreateNew)
	at := r.clock.Now().Add(time.Second)
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{SessionID: s.ID, Status: kyc.StatusDeclined, At: at,
		Decision: ipDecision(kyc.StatusDeclined, "10.0.0.1", false)}); err != nil {
		t.Fatal(err)
	}
	// The Resubmitted webhook is ignored: final is never replaced by non-final.
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{SessionID: s.ID, Status: kyc.StatusResubmitted, At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := r.session(t, s.ID); got.Status != kyc.StatusDeclined || got.Watch {
		t.Fatalf("after Resubmitted webhook: %+v", got)
	}
	used, _ := r.db.QuotaUsed(ctx, tenant.ID, month)

	p.reuse = &kyc.ProviderSession{ID: s.ID, URL: s.URL, Status: kyc.StatusResubmitted}
	got := r.create(t, "again@example.com", kyc.CreateExisting)
	if got.ID != s.ID || got.URL != s.URL {
		t.Fatalf("resumed %s %s, want %s %s", got.ID, got.URL, s.ID, s.URL)
	}
	if now, _ := r.db.QuotaUsed(ctx, tenant.ID, month); now != used {
		t.Fatalf("quota used %d → %d", used, now)
	}
	stored := r.session(t, s.ID)
	if stored.Status != kyc.StatusResubmitted || !stored.Watch {
		t.Fatalf("stored after resume: %+v", stored)
	}
	if st := r.status(t, "again@example.com"); st.Status != "pending" || st.Session.ID != s.ID {
		t.Fatalf("status after resume: %+v", st)
	}
	// Open now: the next create resumes it without asking the provider.
	creates := p.creates
	r.create(t, "again@example.com", kyc.CreateExisting)
	if p.creates != creates {
		t.Fatal("create asked the provider for an open session")
	}
	// The outcome then arrives as usual.
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{SessionID: s.ID, Status: kyc.StatusApproved, At: at.Add(time.Minute),
		Decision: ipDecision(kyc.StatusApproved, "10.0.0.2", false)}); err != nil {
		t.Fatal(err)
	}
	if st := r.status(t, "again@example.com"); !st.Approved {
		t.Fatalf("status after approval: %+v", st)
	}

	// A provider answer naming another person's session is refused,
	// without using quota.
	r.verified(t, "other@example.com")
	used, _ = r.db.QuotaUsed(ctx, tenant.ID, month)
	p.reuse = &kyc.ProviderSession{ID: s.ID, URL: s.URL, Status: kyc.StatusNotStarted}
	_, err = r.svc.CreateSession(ctx, tenant, kyc.KYCTypePublic, kyc.Identity{Email: "other@example.com"})
	if !isFailure(err) {
		t.Fatalf("create with another person's session: %v", err)
	}
	if now, _ := r.db.QuotaUsed(ctx, tenant.ID, month); now != used {
		t.Fatalf("quota used %d → %d", used, now)
	}
	if st := r.status(t, "again@example.com"); !st.Approved || st.Session.ID != s.ID {
		t.Fatalf("the first person's session changed: %+v", st)
	}
}

// isFailure reports an error that is no answer of the contract's (not a
// *kyc.Error): the HTTP layer writes it as the endpoint's documented 500.
func isFailure(err error) bool {
	var kerr *kyc.Error
	return err != nil && !errors.As(err, &kerr)
}

// TestUnknownSessionEventLog: Didit's "Not Started" for a session the
// create has not stored yet is logged at debug level (every creation
// races it), any other status for an unknown session at info.
func TestUnknownSessionEventLog(t *testing.T) {
	t.Parallel()
	db, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var logs bytes.Buffer
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: &idMail{}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := svc.HandleEvent(t.Context(), kyc.SessionEvent{SessionID: "new", Status: kyc.StatusNotStarted, At: at}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a Not Started event for a session being created logged at info: %s", logs.String())
	}
	if err := svc.HandleEvent(t.Context(), kyc.SessionEvent{SessionID: "lost", Status: kyc.StatusApproved, At: at}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"session":"lost"`) {
		t.Fatalf("an Approved event for an unknown session was not logged: %q", logs.String())
	}
}
