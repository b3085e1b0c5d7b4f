package kyc_test

// The reconciler (docs/api.md §11: "a lost webhook never strands a user"), on a
// real SQLite store, against the Didit simulator over HTTP through the real
// Didit client, with the service's clock in the test's hands. The
// simulator has no webhook destination: every webhook is lost.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/kyc"
)

const (
	reconcileKey      = "reconcile-test-key"
	reconcileWorkflow = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
)

// reconcileSim runs the simulator on its own server and counts the
// decision reads that reach it.
type reconcileSim struct {
	sim   *diditsim.Sim
	url   string
	reads atomic.Int64 // GET /v3/session/{id}/decision/
}

func startReconcileSim(t *testing.T) *reconcileSim {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg := diditsim.DefaultConfig()
	cfg.APIKey = reconcileKey
	cfg.WorkflowIDs = []string{reconcileWorkflow}
	cfg.BaseURL = "http://" + srv.Listener.Addr().String()
	cfg.Logger = slog.New(slog.DiscardHandler)
	sim, err := diditsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs := &reconcileSim{sim: sim}
	h := sim.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/decision/") {
			rs.reads.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	srv.Start()
	rs.url = srv.URL
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return rs
}

func newReconcileRig(t *testing.T) (*sessRig, *reconcileSim) {
	t.Helper()
	rs := startReconcileSim(t)
	client, err := didit.NewClient(didit.ClientConfig{BaseURL: rs.url, APIKey: reconcileKey, WorkflowID: reconcileWorkflow,
		MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return newSessRig(t, client), rs
}

// reconcile runs one pass and requires it to check want sessions and read
// want decisions at Didit.
func reconcile(t *testing.T, r *sessRig, rs *reconcileSim, every time.Duration, want int) {
	t.Helper()
	before := rs.reads.Load()
	n, err := r.svc.Reconcile(context.Background(), every, 100)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if reads := rs.reads.Load() - before; n != want || reads != int64(want) {
		t.Fatalf("reconcile checked %d sessions with %d decision reads, want %d", n, reads, want)
	}
}

var simIP = kyc.IPInfo{IPAddress: "203.0.113.7", IPCountry: "Spain", IPState: "Madrid", IPCity: "Madrid",
	Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone"}

// TestReconcileFindsLostOutcome: the person finishes at Didit, every
// webhook is lost, and the next due poll brings the outcome in.
func TestReconcileFindsLostOutcome(t *testing.T) {
	t.Parallel()
	const every = 2 * time.Minute
	r, rs := newReconcileRig(t)
	ctx := context.Background()
	r.verified(t, "lost@example.com")
	s := r.create(t, "lost@example.com", kyc.CreateNew)
	if err := rs.sim.Complete(ctx, s.ID, diditsim.Outcome{Preset: diditsim.PresetApproved}); err != nil {
		t.Fatal(err)
	}
	if st := r.status(t, "lost@example.com"); st.Status != "pending" || st.Session.Status != kyc.StatusNotStarted {
		t.Fatalf("before reconcile: %+v", st)
	}

	// Not due yet: created (checked) just now, then just under the interval.
	reconcile(t, r, rs, every, 0)
	r.clock.add(every - time.Second)
	reconcile(t, r, rs, every, 0)
	if st := r.status(t, "lost@example.com"); st.Status != "pending" {
		t.Fatalf("polled before due: %+v", st)
	}

	// Due: polled once, and the outcome with its decision is stored.
	r.clock.add(2 * time.Second)
	reconcile(t, r, rs, every, 1)
	st := r.status(t, "lost@example.com")
	if st.Status != "approved" || !st.Approved || st.Session.Status != kyc.StatusApproved || st.Session.Blocklisted {
		t.Fatalf("after reconcile: %+v", st)
	}
	if !reflect.DeepEqual(ipsOf(t, st.Session.IPInfo), []kyc.IPInfo{simIP}) {
		t.Fatalf("ip_info = %+v, want %+v", st.Session.IPInfo, simIP)
	}
	if got := r.session(t, s.ID); got.Decision == nil || got.Watch {
		t.Fatalf("stored: decision %d bytes, watch %v", len(got.Decision), got.Watch)
	}
	// Decided with its decision: never polled again.
	r.clock.add(10 * every)
	reconcile(t, r, rs, every, 0)
	// And create now says approved, without a new session.
	if n := len(rs.sim.Sessions()); n != 1 {
		t.Fatalf("simulator has %d sessions", n)
	}
	r.create(t, "lost@example.com", kyc.CreateApproved)
}

// TestReconcilePollsOnlyWhenDue: an open session is polled once per
// interval, not on every pass; a late outcome (blocklisted) is picked up
// at the next due poll.
func TestReconcilePollsOnlyWhenDue(t *testing.T) {
	t.Parallel()
	const every = time.Minute
	r, rs := newReconcileRig(t)
	ctx := context.Background()
	r.verified(t, "open@example.com")
	s := r.create(t, "open@example.com", kyc.CreateNew)

	r.clock.add(every + time.Second)
	reconcile(t, r, rs, every, 1) // still Not Started at Didit
	if got := r.session(t, s.ID); got.Status != kyc.StatusNotStarted || !got.Watch || !got.CheckedAt.Equal(r.clock.Now()) {
		t.Fatalf("after first poll: %+v", got)
	}
	reconcile(t, r, rs, every, 0) // checked just now
	r.clock.add(every / 2)
	reconcile(t, r, rs, every, 0) // checked half an interval ago

	if err := rs.sim.Start(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	r.clock.add(every/2 + time.Second)
	reconcile(t, r, rs, every, 1)
	if st := r.status(t, "open@example.com"); st.Status != "pending" || st.Session.Status != kyc.StatusInProgress {
		t.Fatalf("after second poll: %+v", st)
	}

	if err := rs.sim.Complete(ctx, s.ID, diditsim.Outcome{Preset: diditsim.PresetBlocklistFace}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, r, rs, every, 0)
	r.clock.add(every + time.Second)
	reconcile(t, r, rs, every, 1)
	st := r.status(t, "open@example.com")
	if st.Status != "declined" || st.Approved || !st.Session.Blocklisted || !reflect.DeepEqual(ipsOf(t, st.Session.IPInfo), []kyc.IPInfo{simIP}) {
		t.Fatalf("after the outcome: %+v", st)
	}
	r.clock.add(every + time.Second)
	reconcile(t, r, rs, every, 0)
}

// TestReconcileFetchesMissingDecision: an Approved webhook was applied but
// its decision could not be read (Didit failing); the session stays watched
// and the reconciler fills the decision in.
func TestReconcileFetchesMissingDecision(t *testing.T) {
	t.Parallel()
	const every = time.Minute
	r, rs := newReconcileRig(t)
	ctx := context.Background()
	r.verified(t, "late@example.com")
	s := r.create(t, "late@example.com", kyc.CreateNew)
	if err := rs.sim.Complete(ctx, s.ID, diditsim.Outcome{Preset: diditsim.PresetVPN}); err != nil {
		t.Fatal(err)
	}
	// The webhook (here: its event, without a decision) arrives while
	// Didit's decision endpoint is failing.
	if err := rs.sim.AddFault(diditsim.Fault{Kind: diditsim.FaultError, PathPrefix: "/v3/session/", Method: "GET", Status: 502}); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{EventID: "ev-declined", SessionID: s.ID, Status: kyc.StatusDeclined,
		At: r.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := r.session(t, s.ID); got.Status != kyc.StatusDeclined || got.Decision != nil || !got.Watch || len(got.IPInfo) != 0 {
		t.Fatalf("after the webhook: %+v", got)
	}
	if len(rs.sim.Faults()) != 0 {
		t.Fatal("the decision was not attempted")
	}
	r.clock.add(every + time.Second)
	reconcile(t, r, rs, every, 1)
	got := r.session(t, s.ID)
	vpn := kyc.IPInfo{IPAddress: "198.51.100.23", IPCountry: "Germany", IPState: "Berlin", IPCity: "Berlin",
		Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone", IsVPNOrTor: true}
	if got.Status != kyc.StatusDeclined || got.Decision == nil || got.Watch || !reflect.DeepEqual(got.IPInfo, []kyc.IPInfo{vpn}) {
		t.Fatalf("after reconcile: %+v", got)
	}
	r.clock.add(every + time.Second)
	reconcile(t, r, rs, every, 0)
}

// TestReconcileStopsOnDeletedSession: a session deleted at Didit (decision
// 404) is polled once more, then never again, and keeps its last status.
func TestReconcileStopsOnDeletedSession(t *testing.T) {
	t.Parallel()
	const every = time.Minute
	r, rs := newReconcileRig(t)
	r.verified(t, "gone@example.com")
	s := r.create(t, "gone@example.com", kyc.CreateNew)
	req, _ := http.NewRequest(http.MethodDelete, rs.url+"/v3/session/"+s.ID+"/delete/", nil)
	req.Header.Set("x-api-key", reconcileKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("delete at the simulator: %d", resp.StatusCode)
	}
	r.clock.add(every + time.Second)
	reconcile(t, r, rs, every, 1)
	if got := r.session(t, s.ID); got.Watch || got.Status != kyc.StatusNotStarted {
		t.Fatalf("after the 404: %+v", got)
	}
	r.clock.add(10 * every)
	reconcile(t, r, rs, every, 0)
}

// ipsOf decodes the ip_info JSON that status passes through unchanged.
func ipsOf(t *testing.T, raw json.RawMessage) []kyc.IPInfo {
	t.Helper()
	var ips []kyc.IPInfo
	if err := json.Unmarshal(raw, &ips); err != nil {
		t.Fatalf("ip_info %q: %v", raw, err)
	}
	return ips
}
