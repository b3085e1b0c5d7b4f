package main

// Issue 3, "Didit sessions end to end": kycgate started through run(), a
// real SMTP server, and a separate Didit simulator on its own HTTP server
// that kycgate reaches through KYCGATE_DIDIT_* exactly as it would reach
// Didit. The simulator's webhooks go to kycgate's /webhooks/didit.
//
// Nothing here sleeps: the tests wait on the simulator's record of webhook
// attempts (an attempt is recorded once kycgate has answered it) and on
// channels.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

const diditCreatePath = "/kyc/create/verify_public_kyc"

// diditSimServer is the simulator on its own HTTP server.
type diditSimServer struct {
	sim      *diditsim.Sim
	URL      string
	apiKey   string
	workflow string
	secret   string
	creates  atomic.Int64 // POST /v3/session/ answered 201
}

// diditStatusRecorder remembers the status a handler wrote.
type diditStatusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *diditStatusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *diditStatusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets the simulator's drop fault reach the connection.
func (r *diditStatusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// startDiditSim runs the simulator with a tiny webhook retry schedule and no
// webhook destination yet.
func startDiditSim(t *testing.T) *diditSimServer {
	t.Helper()
	ss := &diditSimServer{apiKey: "sim_" + randomHex(16), workflow: uuid.NewString(), secret: "whsec_" + randomHex(20)}
	srv := httptest.NewUnstartedServer(nil)
	cfg := diditsim.DefaultConfig()
	cfg.APIKey = ss.apiKey
	cfg.WorkflowIDs = []string{ss.workflow}
	cfg.BaseURL = "http://" + srv.Listener.Addr().String()
	cfg.RetrySchedule = []time.Duration{5 * time.Millisecond, 10 * time.Millisecond}
	cfg.Logger = slog.New(slog.DiscardHandler)
	sim, err := diditsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ss.sim = sim
	h := sim.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &diditStatusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && r.URL.Path == "/v3/session/" && rec.code == http.StatusCreated {
			ss.creates.Add(1)
		}
	})
	srv.Start()
	ss.URL = srv.URL
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return ss
}

// diditRig is one kycgate talking to one simulated Didit.
type diditRig struct {
	*diditSimServer
	t  *testing.T
	in *instance
	mb *mailbox

	dbOnce sync.Once
	db     *store.DB
}

// startKycgateWithDidit starts kycgate pointed at the simulator with apiKey.
func startKycgateWithDidit(t *testing.T, ss *diditSimServer, mb *mailbox, apiKey string) *instance {
	t.Helper()
	env := newEnv(t, mb.srv.URL())
	env["KYCGATE_DIDIT_URL"] = ss.URL
	env["KYCGATE_DIDIT_API_KEY"] = apiKey
	env["KYCGATE_DIDIT_WORKFLOW_ID"] = ss.workflow
	env["KYCGATE_DIDIT_WEBHOOK_SECRET"] = ss.secret
	env["KYCGATE_LOG_LEVEL"] = "info"
	return start(t, env)
}

// startDidit starts the simulator, then kycgate pointed at it, then sends
// the simulator's webhooks to kycgate.
func startDidit(t *testing.T) *diditRig {
	t.Helper()
	ss := startDiditSim(t)
	mb := newMailbox(t)
	in := startKycgateWithDidit(t, ss, mb, ss.apiKey)
	if err := ss.sim.SetWebhooks([]diditsim.Destination{{URL: in.URL + "/webhooks/didit", Secret: ss.secret}}); err != nil {
		t.Fatal(err)
	}
	return &diditRig{diditSimServer: ss, t: t, in: in, mb: mb}
}

// store opens kycgate's database to look at what it stored.
func (r *diditRig) store() *store.DB {
	r.dbOnce.Do(func() {
		db, err := store.OpenNoMigrate(context.Background(), r.in.env["KYCGATE_DATABASE_URL"], store.Options{MaxOpenConns: 2})
		if err != nil {
			r.t.Fatalf("open kycgate database: %v", err)
		}
		r.db = db
		r.t.Cleanup(func() { db.Close() })
	})
	return r.db
}

// stored returns kycgate's row for a session.
func (r *diditRig) stored(t *testing.T, id string) kyc.Session {
	t.Helper()
	s, err := r.store().SessionByID(context.Background(), id)
	if err != nil {
		t.Fatalf("stored session %s: %v", id, err)
	}
	return s
}

// sessions is how many sessions the simulator holds.
func (r *diditRig) sessions() int { return len(r.sim.Sessions()) }

// ---- API helpers ----

type diditCreateOut struct {
	Success  bool   `json:"success"`
	Message  string `json:"message"`
	Approved bool   `json:"approved"`
	Session  struct {
		SessionID  string `json:"session_id"`
		SessionURL string `json:"session_url"`
	} `json:"session"`
}

// create calls create and requires a 201 with data.message = kind.
func (r *diditRig) create(t *testing.T, path, key, email, kind string) diditCreateOut {
	t.Helper()
	rep := r.in.call("POST", path, key, map[string]string{"email": email})
	expect(t, rep, 201, "kyc_session_created", "KYC session created")
	var c diditCreateOut
	rep.data(t, &c)
	if !c.Success || c.Message != kind || c.Session.SessionID == "" || c.Session.SessionURL == "" {
		t.Fatalf("create data = %s, want message %q", rep.Env.Data, kind)
	}
	if c.Approved != (kind == kyc.CreateApproved) {
		t.Fatalf("create data.approved = %v for %s: %s", c.Approved, kind, rep.Env.Data)
	}
	return c
}

// newSession creates a new session for email and checks the simulator
// made exactly one, with the same id and url.
func (r *diditRig) newSession(t *testing.T, path, key, email string) diditCreateOut {
	t.Helper()
	before, n := r.creates.Load(), r.sessions()
	c := r.create(t, path, key, email, kyc.CreateNew)
	if got := r.creates.Load() - before; got != 1 {
		t.Fatalf("create made %d Didit create calls, want 1", got)
	}
	if r.sessions() != n+1 {
		t.Fatalf("simulator has %d sessions, want %d", r.sessions(), n+1)
	}
	info, err := r.sim.Session(c.Session.SessionID)
	if err != nil {
		t.Fatalf("session %s unknown to the simulator: %v", c.Session.SessionID, err)
	}
	if info.URL != c.Session.SessionURL {
		t.Fatalf("session_url %q, simulator says %q", c.Session.SessionURL, info.URL)
	}
	r.settle(t, c.Session.SessionID)
	return c
}

type diditIP struct {
	IPAddress    string `json:"ip_address"`
	IPCountry    string `json:"ip_country"`
	IPState      string `json:"ip_state"`
	IPCity       string `json:"ip_city"`
	Platform     string `json:"platform"`
	DeviceBrand  string `json:"device_brand"`
	DeviceModel  string `json:"device_model"`
	IsVPNOrTor   bool   `json:"is_vpn_or_tor"`
	IsDataCenter bool   `json:"is_data_center"`
}

type diditStatusOut struct {
	Status        string    `json:"status"`
	Approved      bool      `json:"approved"`
	SessionID     string    `json:"session_id"`
	SessionStatus string    `json:"session_status"`
	SessionURL    string    `json:"session_url"`
	IPInfo        []diditIP `json:"ip_info"`
	IsBlocklisted bool      `json:"is_blocklisted"`
}

// The simulator's default device and IP (its approved preset).
var simDefaultIP = diditIP{IPAddress: "203.0.113.7", IPCountry: "Spain", IPState: "Madrid", IPCity: "Madrid",
	Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone"}

// checkStatus requires GET status to answer 200 with exactly want as data:
// the same keys, the same values.
func (r *diditRig) checkStatus(t *testing.T, path, key, email string, want diditStatusOut) {
	t.Helper()
	rep := r.in.call("GET", path+"?email="+email, key, nil)
	expect(t, rep, 200, "kyc_status_retrieved", "KYC status retrieved")
	if want.IPInfo == nil {
		want.IPInfo = []diditIP{}
	}
	wantJSON, _ := json.Marshal(want)
	var got, exp any
	if err := json.Unmarshal(rep.Env.Data, &got); err != nil {
		t.Fatalf("status data %s: %v", rep.Env.Data, err)
	}
	json.Unmarshal(wantJSON, &exp)
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("status data\n got  %s\n want %s", rep.Env.Data, wantJSON)
	}
}

// diditPending is the status of a session with no decision yet.
func diditPending(c diditCreateOut, sessionStatus string) diditStatusOut {
	return diditStatusOut{Status: "pending", SessionID: c.Session.SessionID, SessionStatus: sessionStatus,
		SessionURL: c.Session.SessionURL}
}

// diditDecided is the status after a decision.
func diditDecided(c diditCreateOut, sessionStatus, status string, blocklisted bool, ips ...diditIP) diditStatusOut {
	return diditStatusOut{Status: status, Approved: status == "approved", SessionID: c.Session.SessionID,
		SessionStatus: sessionStatus, SessionURL: c.Session.SessionURL, IPInfo: ips, IsBlocklisted: blocklisted}
}

// verifyMany runs prepare → send-otp → mail → verify-otp for every email,
// several at a time.
func (r *diditRig) verifyMany(t *testing.T, key string, emails []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	verify := func(email string) error {
		steps := []struct {
			path   string
			code   int
			status string
		}{{"/kyc/prepare", 201, "user_prepared"}, {"/security/email/send-otp", 201, "otp_sent"}}
		for _, s := range steps {
			rep, err := r.in.try("POST", s.path, key, map[string]string{"email": email})
			if err != nil {
				return err
			}
			if rep.Code != s.code || rep.Env.Status != s.status {
				return fmt.Errorf("%s %s: %d %s", s.path, email, rep.Code, rep.Raw)
			}
		}
		msg, err := r.mb.srv.WaitFor(ctx, email)
		if err != nil {
			return fmt.Errorf("no mail to %s: %w", email, err)
		}
		code, err := msg.Code()
		if err != nil {
			return err
		}
		rep, err := r.in.try("POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code})
		if err != nil {
			return err
		}
		if rep.Code != 200 || rep.Env.Status != "email_verified" {
			return fmt.Errorf("verify-otp %s: %d %s", email, rep.Code, rep.Raw)
		}
		return nil
	}
	errs := make(chan error, len(emails))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, e := range emails {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- verify(e)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// ---- webhook waiting ----

// delivered waits until the simulator has made the last attempt it will
// make for event eventID (kycgate answered something Didit does not retry,
// or the retries ran out) and returns that attempt.
func (r *diditRig) delivered(t *testing.T, eventID string) diditsim.Delivery {
	t.Helper()
	final := func(d diditsim.Delivery) bool {
		if d.EventID != eventID || d.Resend {
			return false
		}
		retry := d.Error != "" || d.ResponseStatus >= 500 || d.ResponseStatus == http.StatusNotFound
		return !retry || d.Attempt >= 3 || d.Tamper == diditsim.TamperDrop
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ds, err := r.sim.WaitFor(ctx, func(ds []diditsim.Delivery) bool {
		for _, d := range ds {
			if final(d) {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("event %s: %v", eventID, err)
	}
	var last diditsim.Delivery
	for _, d := range ds {
		if final(d) {
			last = d
		}
	}
	return last
}

// settle waits for every event the simulator has emitted for the session
// so far and requires kycgate to have accepted each (200).
func (r *diditRig) settle(t *testing.T, sessionID string) {
	t.Helper()
	for _, ev := range r.sim.Events(sessionID) {
		if d := r.delivered(t, ev.ID); d.ResponseStatus != http.StatusOK && d.Tamper == "" {
			t.Fatalf("webhook %s %q: kycgate answered %d %s\n%s", ev.WebhookType, ev.Status, d.ResponseStatus, d.Error, d.Body)
		}
	}
}

// step runs a simulator action on a session and waits until kycgate has
// answered the webhooks it caused.
func (r *diditRig) step(t *testing.T, sessionID string, action func(ctx context.Context) error) {
	t.Helper()
	if err := action(context.Background()); err != nil {
		t.Fatalf("simulator action on %s: %v", sessionID, err)
	}
	r.settle(t, sessionID)
}

func (r *diditRig) complete(t *testing.T, sessionID string, o diditsim.Outcome) {
	t.Helper()
	r.step(t, sessionID, func(ctx context.Context) error { return r.sim.Complete(ctx, sessionID, o) })
}

// updateStatus calls the simulator's Didit API like a reviewer's tool
// would: PATCH /v3/session/{id}/update-status/.
func (r *diditRig) updateStatus(t *testing.T, sessionID, newStatus string) {
	t.Helper()
	r.step(t, sessionID, func(ctx context.Context) error {
		body := strings.NewReader(`{"new_status":"` + newStatus + `","comment":"checked by hand"}`)
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, r.URL+"/v3/session/"+sessionID+"/update-status/", body)
		if err != nil {
			return err
		}
		req.Header.Set("x-api-key", r.apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("update-status: %d %s", resp.StatusCode, b)
		}
		return nil
	})
}

// ---- signed webhooks sent by the test itself ----

// diditHook is a webhook body in the order Didit writes it.
type diditHook struct {
	EventID     string          `json:"event_id,omitempty"`
	WebhookType string          `json:"webhook_type"`
	SessionID   string          `json:"session_id"`
	Status      string          `json:"status"`
	Timestamp   int64           `json:"timestamp"`
	CreatedAt   int64           `json:"created_at"`
	Decision    json.RawMessage `json:"decision,omitempty"`
}

func diditHookBody(t *testing.T, sessionID, status, webhookType string, ts int64, decision json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(diditHook{EventID: uuid.NewString(), WebhookType: webhookType, SessionID: sessionID, Status: status,
		Timestamp: ts, CreatedAt: ts, Decision: decision})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diditSigned returns Didit's four headers for body under secret at ts.
func diditSigned(t *testing.T, secret string, body []byte, ts int64) http.Header {
	t.Helper()
	sigs, err := didit.Sign(secret, body, ts)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	sigs.SetHeaders(h)
	return h
}

// postHook sends a webhook to kycgate through the validating client.
func (r *diditRig) postHook(t *testing.T, body []byte, h http.Header) reply {
	t.Helper()
	req, err := http.NewRequest("POST", r.in.URL+"/webhooks/didit", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	rep := reply{Code: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &rep.Env); err != nil {
		t.Fatalf("webhook answer is not JSON: %s", raw)
	}
	return rep
}

func expectHookAccepted(t *testing.T, rep reply) {
	t.Helper()
	expect(t, rep, 200, "webhook_received", "Webhook received")
}

func expectHookRejected(t *testing.T, rep reply) {
	t.Helper()
	expect(t, rep, 401, "invalid_webhook_signature", "Invalid webhook signature")
}

// ---- the tests ----

// TestDiditSessionFlows walks the session outcomes of docs/api.md §7, §8 and
// §11 through kycgate and the simulator, asserting create's data.message
// and the status endpoint's whole data at each step.
func TestDiditSessionFlows(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	tenantID, key := r.in.tenant("Flows", "--rate-limit-per-minute", "0")
	n := 0
	user := func() string {
		n++
		email := fmt.Sprintf("flow%d@example.com", n)
		r.in.verifyEmail(r.mb, key, email)
		return email
	}

	t.Run("approved", func(t *testing.T) {
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		r.checkStatus(t, "/kyc/status", key, email, diditPending(c, "Not Started"))
		r.step(t, c.Session.SessionID, func(ctx context.Context) error { return r.sim.Start(ctx, c.Session.SessionID) })
		r.checkStatus(t, "/kyc/status", key, email, diditPending(c, "In Progress"))
		r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetApproved})
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, simDefaultIP))

		// Already approved: the approving session, no Didit call.
		creates, sessions := r.creates.Load(), r.sessions()
		again := r.create(t, diditCreatePath, key, email, kyc.CreateApproved)
		if again.Session != c.Session {
			t.Fatalf("already approved returned %+v, want the approving session %+v", again.Session, c.Session)
		}
		if r.creates.Load() != creates || r.sessions() != sessions {
			t.Fatal("kyc_already_approved called Didit")
		}
		// Prepare reports the approval to this (verified) tenant.
		rep := r.in.call("POST", "/kyc/prepare", key, map[string]string{"email": email})
		expect(t, rep, 200, "user_already_prepared")
		if string(rep.Env.Data) != `{"email_verified":true,"kyc_approved":true,"kyc_status":"approved"}` {
			t.Fatalf("prepare data = %s", rep.Env.Data)
		}
	})

	t.Run("declined", func(t *testing.T) {
		email := user()
		c := r.newSession(t, "/api"+diditCreatePath, key, email)
		r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetDeclinedID})
		r.checkStatus(t, "/api/kyc/status", key, email, diditDecided(c, "Declined", "declined", false, simDefaultIP))
		// A declined person may try again: a new session.
		c2 := r.newSession(t, "/api"+diditCreatePath, key, email)
		if c2.Session.SessionID == c.Session.SessionID {
			t.Fatal("create after a decline resumed the declined session")
		}
		r.checkStatus(t, "/api/kyc/status", key, email, diditPending(c2, "Not Started"))
	})

	t.Run("declined, resubmission requested", func(t *testing.T) {
		// A reviewer asks a declined person to redo some steps: Didit moves
		// the session to Resubmitted (open again) and answers a create for
		// the same vendor_data with that session (docs/didit.md §2.2). kycgate
		// ignored the Resubmitted webhook (a final status is never replaced
		// by a non-final one), so create must cope with Didit handing back
		// a session it already has.
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetDeclinedLiveness})
		r.step(t, c.Session.SessionID, func(ctx context.Context) error { return r.sim.Resubmit(ctx, c.Session.SessionID) })
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Declined", "declined", false, simDefaultIP))
		month := time.Now().UTC().Format("2006-01")
		used, err := r.store().QuotaUsed(context.Background(), tenantID, month)
		if err != nil {
			t.Fatal(err)
		}
		sessions := r.sessions()
		got := r.create(t, diditCreatePath, key, email, kyc.CreateExisting)
		if got.Session != c.Session {
			t.Fatalf("create gave %+v, want the resubmitted session %+v", got.Session, c.Session)
		}
		if r.sessions() != sessions {
			t.Fatal("the simulator created a new session")
		}
		if now, err := r.store().QuotaUsed(context.Background(), tenantID, month); err != nil || now != used {
			t.Fatalf("resuming Didit's session used quota: %d → %d (%v)", used, now, err)
		}
		// kycgate now knows the session is open again, and watches it so a
		// lost webhook cannot strand the person.
		if st := r.stored(t, c.Session.SessionID); st.Status != "Resubmitted" || !st.Watch {
			t.Fatalf("stored after the resume: %s watch=%v", st.Status, st.Watch)
		}
		rep := r.in.call("GET", "/kyc/status?email="+email, key, nil)
		var st diditStatusOut
		rep.data(t, &st)
		if st.Status != "pending" || st.Approved || st.SessionStatus != "Resubmitted" || st.SessionID != c.Session.SessionID {
			t.Fatalf("status after the resume: %s", rep.Env.Data)
		}
		r.create(t, diditCreatePath, key, email, kyc.CreateExisting)
		// The person finishes; the outcome arrives as usual.
		r.complete(t, c.Session.SessionID, diditsim.Outcome{})
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, simDefaultIP))
		r.create(t, diditCreatePath, key, email, kyc.CreateApproved)
	})

	t.Run("in review then approved", func(t *testing.T) {
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetInReviewAML})
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "In Review", "in_review", false, simDefaultIP))
		// In Review is open (§7 step 6): create resumes it.
		creates := r.creates.Load()
		if got := r.create(t, diditCreatePath, key, email, kyc.CreateExisting); got.Session != c.Session {
			t.Fatalf("resumed %+v, want %+v", got.Session, c.Session)
		}
		if r.creates.Load() != creates {
			t.Fatal("resume called Didit's create")
		}
		r.updateStatus(t, c.Session.SessionID, "Approved")
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, simDefaultIP))
		r.create(t, diditCreatePath, key, email, kyc.CreateApproved)
	})

	t.Run("abandoned then a new session", func(t *testing.T) {
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		r.step(t, c.Session.SessionID, func(ctx context.Context) error { return r.sim.Abandon(ctx, c.Session.SessionID) })
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Abandoned", "abandoned", false, simDefaultIP))
		c2 := r.newSession(t, diditCreatePath, key, email)
		if c2.Session.SessionID == c.Session.SessionID || c2.Session.SessionURL == c.Session.SessionURL {
			t.Fatalf("new session %+v repeats the abandoned one", c2.Session)
		}
		r.checkStatus(t, "/kyc/status", key, email, diditPending(c2, "Not Started"))
		r.complete(t, c2.Session.SessionID, diditsim.Outcome{})
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c2, "Approved", "approved", false, simDefaultIP))
	})

	t.Run("expired and kyc expired", func(t *testing.T) {
		// Never opened: Didit expires it; the person may start again.
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		r.step(t, c.Session.SessionID, func(ctx context.Context) error { return r.sim.Expire(ctx, c.Session.SessionID) })
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Expired", "expired", false))
		c2 := r.newSession(t, diditCreatePath, key, email)
		// Approved, then the document expires: no longer approved, and a
		// create opens a new session.
		r.complete(t, c2.Session.SessionID, diditsim.Outcome{})
		r.step(t, c2.Session.SessionID, func(ctx context.Context) error { return r.sim.KycExpire(ctx, c2.Session.SessionID) })
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c2, "Kyc Expired", "kyc_expired", false, simDefaultIP))
		c3 := r.newSession(t, diditCreatePath, key, email)
		if c3.Session.SessionID == c2.Session.SessionID || c3.Session.SessionID == c.Session.SessionID {
			t.Fatal("create after expiry reused an old session")
		}
	})

	t.Run("blocklisted", func(t *testing.T) {
		for _, preset := range []string{diditsim.PresetBlocklistFace, diditsim.PresetBlocklistDocument} {
			email := user()
			c := r.newSession(t, diditCreatePath, key, email)
			r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: preset})
			r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Declined", "declined", true, simDefaultIP))
		}
	})

	t.Run("vpn", func(t *testing.T) {
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		// The same VPN address seen from a second device: one ip_info entry.
		r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetVPN,
			ExtraIPs: []diditsim.IPFields{{IPAddress: "198.51.100.23", DeviceModel: "Pixel 8", DeviceBrand: "Google"}}})
		if dec, _ := r.sim.Decision(c.Session.SessionID); bytes.Count(dec, []byte(`"ip_address":"198.51.100.23"`)) < 2 {
			t.Fatalf("simulator decision lacks the repeated IP: %s", dec)
		}
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Declined", "declined", false, diditIP{
			IPAddress: "198.51.100.23", IPCountry: "Germany", IPState: "Berlin", IPCity: "Berlin",
			Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone", IsVPNOrTor: true}))
	})

	t.Run("data centre", func(t *testing.T) {
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetDataCenter})
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "In Review", "in_review", false, diditIP{
			IPAddress: "192.0.2.44", IPCountry: "United States", IPState: "Virginia", IPCity: "Ashburn",
			Platform: "desktop", DeviceBrand: "Unknown", DeviceModel: "Unknown", IsDataCenter: true}))
	})

	t.Run("several IPs", func(t *testing.T) {
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetMultiIP})
		r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, simDefaultIP, diditIP{
			IPAddress: "198.51.100.77", IPCountry: "Portugal", IPState: "Lisboa", IPCity: "Lisboa",
			Platform: "desktop", DeviceBrand: "Apple", DeviceModel: "Mac"}))
	})

	t.Run("resume an open session", func(t *testing.T) {
		email := user()
		c := r.newSession(t, diditCreatePath, key, email)
		creates, sessions := r.creates.Load(), r.sessions()
		for _, path := range []string{diditCreatePath, "/api" + diditCreatePath} {
			if got := r.create(t, path, key, email, kyc.CreateExisting); got.Session != c.Session {
				t.Fatalf("resumed %+v, want %+v", got.Session, c.Session)
			}
		}
		r.step(t, c.Session.SessionID, func(ctx context.Context) error { return r.sim.Start(ctx, c.Session.SessionID) })
		if got := r.create(t, diditCreatePath, key, email, kyc.CreateExisting); got.Session != c.Session {
			t.Fatalf("resumed %+v, want %+v", got.Session, c.Session)
		}
		if r.creates.Load() != creates || r.sessions() != sessions {
			t.Fatal("resuming an open session called Didit's create")
		}
		r.checkStatus(t, "/api/kyc/status", key, email, diditPending(c, "In Progress"))
	})
}

// TestDiditSessionErrors checks §7's order of checks and its errors, and
// §8's, with Didit failing in the two ways a deployment sees: 5xx beyond
// the client's retries, and a wrong API key.
func TestDiditSessionErrors(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	_, key := r.in.tenant("Errors", "--rate-limit-per-minute", "0", "--quota", "1")

	// 1. Unknown kyc_type wins over everything, even an empty body.
	for _, body := range []any{nil, "", "not json", map[string]string{}, map[string]string{"email": "nobody@example.com"}} {
		for _, path := range []string{"/kyc/create/verify_private_kyc", "/api/kyc/create/nope"} {
			expect(t, r.in.call("POST", path, key, body), 404, "method_not_found", "KYC method not found")
		}
	}
	// 2. Neither identifier.
	for _, body := range []any{map[string]string{}, map[string]string{"email": ""}, map[string]any{"email": nil, "wallet": ""}} {
		expect(t, r.in.call("POST", diditCreatePath, key, body), 400, "missing_params", "email or wallet is required")
	}
	// 3. Not prepared for this tenant.
	expect(t, r.in.call("POST", diditCreatePath, key, map[string]string{"email": "nobody@example.com"}), 403, "user_not_prepared",
		"Complete KYC prepare and verify your email or wallet before starting a session")
	// 4. Prepared, not verified.
	expect(t, r.in.call("POST", "/kyc/prepare", key, map[string]string{"email": "unverified@example.com"}), 201, "user_prepared")
	expect(t, r.in.call("POST", "/api"+diditCreatePath, key, map[string]string{"email": "Unverified@Example.com"}), 403, "identity_not_verified",
		"You must verify your email or wallet before starting KYC")

	// §8 status errors.
	expect(t, r.in.call("GET", "/kyc/status", key, nil), 400, "missing_params", "email or wallet is required")
	expect(t, r.in.call("GET", "/api/kyc/status?email=", key, nil), 400, "missing_params", "email or wallet is required")
	expect(t, r.in.call("GET", "/kyc/status?email=nobody@example.com", key, nil), 404, "user_not_found", "User not found")
	expect(t, r.in.call("GET", "/kyc/status?email=unverified@example.com", key, nil), 404, "kyc_not_found", "No KYC session found for this user")

	email := "first@example.com"
	r.in.verifyEmail(r.mb, key, email)
	expect(t, r.in.call("GET", "/kyc/status?email="+email, key, nil), 404, "kyc_not_found", "No KYC session found for this user")

	// 8. Didit failing beyond the client's retries (1 + 3 attempts): 500,
	// and no quota used — the tenant's only unit is still there after.
	creates, sessions := r.creates.Load(), r.sessions()
	if err := r.sim.AddFault(diditsim.Fault{Kind: diditsim.FaultError, PathPrefix: "/v3/session/", Method: "POST", Status: 503, Count: 4}); err != nil {
		t.Fatal(err)
	}
	expect(t, r.in.call("POST", diditCreatePath, key, map[string]string{"email": email}), 500, "server_failed", "Server failed on KYC")
	if left := r.sim.Faults(); len(left) != 0 {
		t.Fatalf("faults left unconsumed: %+v", left)
	}
	if r.creates.Load() != creates || r.sessions() != sessions {
		t.Fatal("a session was created although every call failed")
	}
	expect(t, r.in.call("GET", "/kyc/status?email="+email, key, nil), 404, "kyc_not_found")
	c := r.newSession(t, diditCreatePath, key, email)

	// 7. Quota used up (1): another user is refused...
	other := "second@example.com"
	r.in.verifyEmail(r.mb, key, other)
	expect(t, r.in.call("POST", diditCreatePath, key, map[string]string{"email": other}), 429, "verify_quota_exceeded",
		"Monthly KYC session quota exceeded")
	// ...but steps 5 and 6 come before the quota: resume and approval
	// need none.
	r.create(t, diditCreatePath, key, email, kyc.CreateExisting)
	r.complete(t, c.Session.SessionID, diditsim.Outcome{})
	r.create(t, diditCreatePath, key, email, kyc.CreateApproved)

	// A wrong Didit API key: a second kycgate with a bad key against the
	// same simulator.
	t.Run("wrong api key", func(t *testing.T) {
		mb := newMailbox(t)
		bad := startKycgateWithDidit(t, r.diditSimServer, mb, "wrong-"+r.apiKey)
		_, key := bad.tenant("BadKey", "--rate-limit-per-minute", "0", "--quota", "1")
		bad.verifyEmail(mb, key, "badkey@example.com")
		creates, sessions := r.creates.Load(), r.sessions()
		for range 2 { // twice: the failure used no quota unit
			expect(t, bad.call("POST", diditCreatePath, key, map[string]string{"email": "badkey@example.com"}), 500, "server_failed", "Server failed on KYC")
		}
		if r.creates.Load() != creates || r.sessions() != sessions {
			t.Fatal("the simulator created a session for a wrong key")
		}
	})
}

// TestDiditSharedVerification is docs/api.md §10 across two tenants.
func TestDiditSharedVerification(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	_, keyA := r.in.tenant("TenantA", "--rate-limit-per-minute", "0")
	_, keyB := r.in.tenant("TenantB", "--rate-limit-per-minute", "0", "--quota", "1")
	const email = "shared@example.com"

	r.in.verifyEmail(r.mb, keyA, email)
	c := r.newSession(t, diditCreatePath, keyA, email)
	r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetVPN})
	// VPN is declined by Didit; a reviewer approves it.
	r.updateStatus(t, c.Session.SessionID, "Approved")
	vpnIP := diditIP{IPAddress: "198.51.100.23", IPCountry: "Germany", IPState: "Berlin", IPCity: "Berlin",
		Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone", IsVPNOrTor: true}
	approved := diditDecided(c, "Approved", "approved", false, vpnIP)
	r.checkStatus(t, "/kyc/status", keyA, email, approved)

	// B enrolls the same person but has not verified the email: B learns
	// nothing.
	expect(t, r.in.call("POST", "/kyc/prepare", keyB, map[string]string{"email": email}), 201, "user_prepared")
	rep := r.in.call("POST", "/kyc/prepare", keyB, map[string]string{"email": email})
	expect(t, rep, 200, "user_already_prepared")
	if string(rep.Env.Data) != `{"email_verified":false,"kyc_approved":false,"kyc_status":"pending"}` {
		t.Fatalf("B's prepare before verification = %s", rep.Env.Data)
	}
	expect(t, r.in.call("GET", "/kyc/status?email="+email, keyB, nil), 404, "kyc_not_found", "No KYC session found for this user")
	expect(t, r.in.call("POST", diditCreatePath, keyB, map[string]string{"email": email}), 403, "identity_not_verified")

	// After B's own OTP: the approval is shared, with no new session and
	// no quota.
	r.in.verifyEmail(r.mb, keyB, email)
	creates, sessions := r.creates.Load(), r.sessions()
	got := r.create(t, diditCreatePath, keyB, email, kyc.CreateApproved)
	if got.Session != c.Session {
		t.Fatalf("B got %+v, want A's approving session %+v", got.Session, c.Session)
	}
	if r.creates.Load() != creates || r.sessions() != sessions {
		t.Fatal("shared approval called Didit")
	}
	r.checkStatus(t, "/api/kyc/status", keyB, email, approved)
	rep = r.in.call("POST", "/kyc/prepare", keyB, map[string]string{"email": email})
	if string(rep.Env.Data) != `{"email_verified":true,"kyc_approved":true,"kyc_status":"approved"}` {
		t.Fatalf("B's prepare after verification = %s", rep.Env.Data)
	}

	// B's single quota unit is untouched: a new user of B gets a session,
	// and only then is B's quota used up.
	r.in.verifyEmail(r.mb, keyB, "b-own@example.com")
	r.newSession(t, diditCreatePath, keyB, "b-own@example.com")
	r.in.verifyEmail(r.mb, keyB, "b-next@example.com")
	expect(t, r.in.call("POST", diditCreatePath, keyB, map[string]string{"email": "b-next@example.com"}), 429, "verify_quota_exceeded")
	// A's view is unchanged.
	r.checkStatus(t, "/kyc/status", keyA, email, approved)
}

// TestDiditSessionConcurrency checks §7's invariants under concurrent
// creates: one open session per person, the quota exact, failures free.
func TestDiditSessionConcurrency(t *testing.T) {
	t.Parallel()
	r := startDidit(t)

	t.Run("one person, 20 creates", func(t *testing.T) {
		_, key := r.in.tenant("Burst", "--rate-limit-per-minute", "0")
		const email = "burst@example.com"
		r.in.verifyEmail(r.mb, key, email)
		creates, sessions := r.creates.Load(), r.sessions()
		outs := make([]reply, 20)
		errs := make([]error, 20)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range outs {
			wg.Go(func() {
				<-gate
				outs[i], errs[i] = r.in.try("POST", diditCreatePath, key, map[string]string{"email": email})
			})
		}
		close(gate)
		wg.Wait()
		ids, kinds := map[string]int{}, map[string]int{}
		for i, rep := range outs {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			expect(t, rep, 201, "kyc_session_created")
			var c diditCreateOut
			rep.data(t, &c)
			ids[c.Session.SessionID]++
			kinds[c.Message]++
		}
		if len(ids) != 1 {
			t.Fatalf("20 creates gave %d session ids: %v", len(ids), ids)
		}
		if kinds[kyc.CreateNew] != 1 || kinds[kyc.CreateExisting] != 19 {
			t.Fatalf("kinds = %v, want 1 new and 19 existing", kinds)
		}
		if got := r.creates.Load() - creates; got != 1 {
			t.Fatalf("Didit create called %d times, want 1", got)
		}
		if r.sessions() != sessions+1 {
			t.Fatalf("simulator has %d new sessions, want 1", r.sessions()-sessions)
		}
	})

	t.Run("100 people, quota 10", func(t *testing.T) {
		_, key := r.in.tenant("Crowd", "--rate-limit-per-minute", "0", "--quota", "10")
		const n = 100
		emails := make([]string, n)
		for i := range emails {
			emails[i] = fmt.Sprintf("crowd%03d@example.com", i)
		}
		r.verifyMany(t, key, emails)
		creates, sessions := r.creates.Load(), r.sessions()
		outs := make([]reply, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range outs {
			wg.Go(func() {
				<-gate
				outs[i], errs[i] = r.in.try("POST", diditCreatePath, key, map[string]string{"email": emails[i]})
			})
		}
		close(gate)
		wg.Wait()
		got := map[string]int{}
		for i, rep := range outs {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			switch rep.Code {
			case 201:
				expect(t, rep, 201, "kyc_session_created")
				var c diditCreateOut
				rep.data(t, &c)
				got[c.Message]++
			case 429:
				expect(t, rep, 429, "verify_quota_exceeded", "Monthly KYC session quota exceeded")
				got["verify_quota_exceeded"]++
			default:
				t.Fatalf("create %d: %d %s", i, rep.Code, rep.Raw)
			}
		}
		if got[kyc.CreateNew] != 10 || got["verify_quota_exceeded"] != 90 || len(got) != 2 {
			t.Fatalf("outcomes = %v, want 10 %s and 90 verify_quota_exceeded", got, kyc.CreateNew)
		}
		if d := r.creates.Load() - creates; d != 10 {
			t.Fatalf("Didit create called %d times, want 10", d)
		}
		if d := r.sessions() - sessions; d != 10 {
			t.Fatalf("simulator has %d new sessions, want 10", d)
		}
	})

	t.Run("failure uses no quota", func(t *testing.T) {
		_, key := r.in.tenant("Fragile", "--rate-limit-per-minute", "0", "--quota", "1")
		const email = "fragile@example.com"
		r.in.verifyEmail(r.mb, key, email)
		// A throttle whose Retry-After is past the client's limit fails
		// the create at once (no retry).
		if err := r.sim.AddFault(diditsim.Fault{Kind: diditsim.FaultThrottle, PathPrefix: "/v3/session/", Method: "POST", RetryAfter: 3600}); err != nil {
			t.Fatal(err)
		}
		expect(t, r.in.call("POST", diditCreatePath, key, map[string]string{"email": email}), 500, "server_failed", "Server failed on KYC")
		r.newSession(t, diditCreatePath, key, email)
	})
}

// TestDiditWebhooks checks kycgate's /webhooks/didit (docs/api.md §11): what it
// refuses, and that duplicates, stale-ordered events and unknown sessions
// are acknowledged and change nothing.
func TestDiditWebhooks(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	_, key := r.in.tenant("Hooks", "--rate-limit-per-minute", "0")
	n := 0
	session := func(t *testing.T) (string, diditCreateOut) {
		n++
		email := fmt.Sprintf("hook%d@example.com", n)
		r.in.verifyEmail(r.mb, key, email)
		return email, r.newSession(t, diditCreatePath, key, email)
	}

	for _, tc := range []struct {
		name string
		run  func(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut))
	}{
		{"signatures and timestamps", hookSignaturesAndTimestamps},
		{"duplicates change nothing", hookDuplicatesChangeNothing},
		{"out of order", hookOutOfOrder},
		{"canonical V2 signature", hookCanonicalV2Signature},
		{"simulator decisions verify", hookSimulatorDecisionsVerify},
		{"unknown session", hookUnknownSession},
		{"data.updated", hookDataUpdated},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, r, key, session) })
	}
}

// hookSignaturesAndTimestamps is TestDiditWebhooks/signatures and timestamps.
func hookSignaturesAndTimestamps(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut)) {
	email, c := session(t)
	sid := c.Session.SessionID
	v0 := r.stored(t, sid).Version
	body := func(ts int64) []byte { return diditHookBody(t, sid, "In Progress", "status.updated", ts, nil) }

	ts := time.Now().Unix()
	b := body(ts)
	expectHookRejected(t, r.postHook(t, b, diditSigned(t, "whsec_not_the_secret", b, ts)))
	// Stale, either way. The exact 300/301 s boundary is pinned with a
	// fixed clock in internal/didit; here the server reads the wall
	// clock after ours, so a boundary offset would race the second
	// ticking over. A minute's margin cannot.
	for _, off := range []int64{-360, -900, 360, 86400} {
		b := body(ts + off)
		expectHookRejected(t, r.postHook(t, b, diditSigned(t, r.secret, b, ts+off)))
	}
	// X-Signature-Simple alone does not cover the decision.
	h := diditSigned(t, r.secret, b, ts)
	h.Del(didit.HeaderSignature)
	h.Del(didit.HeaderSignatureV2)
	expectHookRejected(t, r.postHook(t, b, h))
	// No signature at all; no timestamp.
	h = diditSigned(t, r.secret, b, ts)
	for _, k := range []string{didit.HeaderSignature, didit.HeaderSignatureV2, didit.HeaderSignatureSimple} {
		h.Del(k)
	}
	expectHookRejected(t, r.postHook(t, b, h))
	// A correctly signed body replayed under a fresh X-Timestamp.
	old := body(ts - 400)
	h = diditSigned(t, r.secret, old, ts)
	expectHookRejected(t, r.postHook(t, old, h))
	// A well-signed body with no time of its own, under a fresh
	// X-Timestamp: replayable at will, so refused.
	untimed := []byte(fmt.Sprintf(`{"session_id":%q,"status":"Approved","webhook_type":"status.updated"}`, sid))
	expectHookRejected(t, r.postHook(t, untimed, diditSigned(t, r.secret, untimed, ts)))
	// Tampered body under a good signature.
	h = diditSigned(t, r.secret, b, ts)
	expectHookRejected(t, r.postHook(t, bytes.Replace(b, []byte("In Progress"), []byte("Approved"), 1), h))
	if v := r.stored(t, sid).Version; v != v0 {
		t.Fatalf("a refused webhook changed the session (version %d → %d)", v0, v)
	}
	r.checkStatus(t, "/kyc/status", key, email, diditPending(c, "Not Started"))

	// The same from the simulator's own sender.
	for _, tamper := range []string{diditsim.TamperBadSignature, diditsim.TamperStaleTimestamp} {
		if err := r.sim.TamperNext(tamper, 1, sid); err != nil {
			t.Fatal(err)
		}
		if err := r.sim.SetStatus(context.Background(), sid, "In Progress"); err != nil {
			t.Fatal(err)
		}
		evs := r.sim.Events(sid)
		d := r.delivered(t, evs[len(evs)-1].ID)
		if d.ResponseStatus != 401 || d.Tamper != tamper || d.Attempt != 1 {
			t.Fatalf("tampered (%s) delivery: %+v", tamper, d)
		}
	}
	r.checkStatus(t, "/kyc/status", key, email, diditPending(c, "Not Started"))

	// Either signature alone is enough, anywhere within the window.
	only := func(b []byte, ts int64, keep string) http.Header {
		h := diditSigned(t, r.secret, b, ts)
		for _, k := range []string{didit.HeaderSignature, didit.HeaderSignatureV2, didit.HeaderSignatureSimple} {
			if k != keep {
				h.Del(k)
			}
		}
		return h
	}
	ts = time.Now().Unix() + 100
	b = body(ts)
	expectHookAccepted(t, r.postHook(t, b, only(b, ts, didit.HeaderSignature)))
	if got := r.stored(t, sid); got.Status != "In Progress" || got.Version != v0+1 {
		t.Fatalf("X-Signature alone: stored %s v%d, want In Progress v%d", got.Status, got.Version, v0+1)
	}
	r.checkStatus(t, "/kyc/status", key, email, diditPending(c, "In Progress"))
	ts = time.Now().Unix() + 200
	b = diditHookBody(t, sid, "Resubmitted", "status.updated", ts, nil)
	expectHookAccepted(t, r.postHook(t, b, only(b, ts, didit.HeaderSignatureV2)))
	if got := r.stored(t, sid); got.Status != "Resubmitted" || got.Version != v0+2 {
		t.Fatalf("X-Signature-V2 alone: stored %s v%d, want Resubmitted v%d", got.Status, got.Version, v0+2)
	}
	// Fresh but older than what was applied: acknowledged, not applied.
	// Far from the window's edge, like every accepted offset here: the
	// server reads its clock after ours.
	ts = time.Now().Unix() - 100
	b = diditHookBody(t, sid, "Not Started", "status.updated", ts, nil)
	expectHookAccepted(t, r.postHook(t, b, only(b, ts, didit.HeaderSignatureV2)))
	r.checkStatus(t, "/kyc/status", key, email, diditPending(c, "Resubmitted"))
}

// hookDuplicatesChangeNothing is TestDiditWebhooks/duplicates change nothing.
func hookDuplicatesChangeNothing(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut)) {
	email, c := session(t)
	sid := c.Session.SessionID
	if err := r.sim.TamperNext(diditsim.TamperDuplicate, 1, sid); err != nil {
		t.Fatal(err)
	}
	r.complete(t, sid, diditsim.Outcome{})
	ds := r.sim.Deliveries()
	dups := 0
	for _, d := range ds {
		if d.SessionID == sid && d.Tamper == diditsim.TamperDuplicate {
			dups++
			if d.ResponseStatus != 200 {
				t.Fatalf("duplicate answered %d", d.ResponseStatus)
			}
		}
	}
	if dups != 2 {
		t.Fatalf("%d duplicate deliveries, want 2", dups)
	}
	want := diditDecided(c, "Approved", "approved", false, simDefaultIP)
	r.checkStatus(t, "/kyc/status", key, email, want)
	v := r.stored(t, sid).Version

	// Replay every delivery of the session byte for byte, and
	// re-deliver each event freshly signed: all 200, nothing changes.
	for _, d := range ds {
		if d.SessionID != sid || d.ResponseStatus != 200 {
			continue
		}
		out, err := r.sim.Resend(context.Background(), d.ID, diditsim.TamperReplay)
		if err != nil || len(out) != 1 || out[0].ResponseStatus != 200 {
			t.Fatalf("replay of %s %q: %+v %v", d.WebhookType, d.Status, out, err)
		}
	}
	for _, ev := range r.sim.Events(sid) {
		out, err := r.sim.Redeliver(context.Background(), ev.ID, "")
		if err != nil || len(out) != 1 || out[0].ResponseStatus != 200 {
			t.Fatalf("redelivery of %q: %+v %v", ev.Status, out, err)
		}
	}
	if got := r.stored(t, sid).Version; got != v {
		t.Fatalf("duplicates changed the session (version %d → %d)", v, got)
	}
	r.checkStatus(t, "/kyc/status", key, email, want)
}

// hookOutOfOrder is TestDiditWebhooks/out of order.
func hookOutOfOrder(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut)) {
	email, c := session(t)
	sid := c.Session.SessionID
	ts := time.Now().Unix()
	// In Review now, then an In Progress stamped 10 s earlier.
	b := diditHookBody(t, sid, "In Review", "status.updated", ts, nil)
	expectHookAccepted(t, r.postHook(t, b, diditSigned(t, r.secret, b, ts)))
	v := r.stored(t, sid).Version
	b = diditHookBody(t, sid, "In Progress", "status.updated", ts-10, nil)
	expectHookAccepted(t, r.postHook(t, b, diditSigned(t, r.secret, b, ts-10)))
	if got := r.stored(t, sid); got.Version != v || got.Status != "In Review" {
		t.Fatalf("an older event was applied: %s v%d (was v%d)", got.Status, got.Version, v)
	}

	// Then the reviewer approves it; Didit's older In Progress
	// arrives late (held and released newest first).
	r.sim.HoldWebhooks(sid)
	if err := r.sim.SetStatus(context.Background(), sid, "In Progress"); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Complete(context.Background(), sid, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	if got := r.sim.ReleaseWebhooks(sid, true); got != 2 {
		t.Fatalf("released %d webhooks, want 2 (In Progress, Approved)", got)
	}
	r.settle(t, sid)
	want := diditDecided(c, "Approved", "approved", false, simDefaultIP)
	r.checkStatus(t, "/kyc/status", key, email, want)

	// A final status is never replaced by a newer non-final one.
	v = r.stored(t, sid).Version
	for i, st := range []string{"In Progress", "Not Started", "Resubmitted", "In Review"} {
		ts := time.Now().Unix() + int64(i) + 1
		b := diditHookBody(t, sid, st, "status.updated", ts, nil)
		expectHookAccepted(t, r.postHook(t, b, diditSigned(t, r.secret, b, ts)))
	}
	if got := r.stored(t, sid).Version; got != v {
		t.Fatalf("a non-final event replaced Approved (version %d → %d)", v, got)
	}
	r.checkStatus(t, "/kyc/status", key, email, want)
}

// hookCanonicalV2Signature is TestDiditWebhooks/canonical V2 signature.
func hookCanonicalV2Signature(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut)) {
	email, c := session(t)
	sid := c.Session.SessionID
	ts := time.Now().Unix()
	// Written as Python's json.dumps writes it by default: ASCII
	// escapes, spaced separators, 1.0 and 0.00005 as floats.
	raw := fmt.Sprintf(`{"event_id": "%[3]s", "webhook_type": "status.updated", "session_id": "%[1]s", "status": "Approved", "timestamp": %[2]d, "created_at": %[2]d, `+
		`"decision": {"session_id": "%[1]s", "status": "Approved", `+
		`"id_verifications": [{"node_id": "feature_ocr", "status": "Approved", "first_name": "Jos\u00e9", "last_name": "M\u00fcller", "full_name": "Jos\u00e9 M\u00fcller", "age": 34.0}], `+
		`"liveness_checks": [{"node_id": "feature_liveness", "status": "Approved", "score": 1.0, "face_quality": 89.0}], `+
		`"aml_screenings": [{"node_id": "feature_aml", "status": "Approved", "score": 0.00005, "total_hits": 0}], `+
		`"ip_analyses": [{"node_id": "feature_ip_analysis", "status": "Approved", "ip_address": "203.0.113.9", "ip_country": "Espa\u00f1a", "ip_state": "Andaluc\u00eda", "ip_city": "M\u00e1laga", "platform": "mobile", "device_brand": "Apple", "device_model": "iPhone", "is_vpn_or_tor": false, "is_data_center": false, "latitude": 36.72, "longitude": -4.42}, `+
		`{"node_id": "feature_ip_analysis", "status": "Approved", "ip_address": "203.0.113.9", "ip_country": "Espa\u00f1a", "ip_state": "Andaluc\u00eda", "ip_city": "M\u00e1laga", "platform": "desktop", "device_brand": "Apple", "device_model": "Mac", "is_vpn_or_tor": false, "is_data_center": false, "latitude": 36.72, "longitude": -4.42}]}}`,
		sid, ts, uuid.NewString())
	// Its canonical form, by hand (docs/didit.md §6.4): keys sorted at every
	// level, compact, raw UTF-8, integer-valued floats shortened,
	// Python's float repr.
	ipItem := func(platform, model string) string {
		return `{"device_brand":"Apple","device_model":"` + model + `","ip_address":"203.0.113.9","ip_city":"Málaga","ip_country":"España","ip_state":"Andalucía",` +
			`"is_data_center":false,"is_vpn_or_tor":false,"latitude":36.72,"longitude":-4.42,"node_id":"feature_ip_analysis","platform":"` + platform + `","status":"Approved"}`
	}
	var ev struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatalf("test body is not JSON: %v", err)
	}
	canonical := fmt.Sprintf(`{"created_at":%[2]d,"decision":{`+
		`"aml_screenings":[{"node_id":"feature_aml","score":5e-05,"status":"Approved","total_hits":0}],`+
		`"id_verifications":[{"age":34,"first_name":"José","full_name":"José Müller","last_name":"Müller","node_id":"feature_ocr","status":"Approved"}],`+
		`"ip_analyses":[%[4]s,%[5]s],`+
		`"liveness_checks":[{"face_quality":89,"node_id":"feature_liveness","score":1,"status":"Approved"}],`+
		`"session_id":"%[1]s","status":"Approved"},`+
		`"event_id":"%[3]s","session_id":"%[1]s","status":"Approved","timestamp":%[2]d,"webhook_type":"status.updated"}`,
		sid, ts, ev.EventID, ipItem("mobile", "iPhone"), ipItem("desktop", "Mac"))
	mac := func(msg string) string {
		m := hmac.New(sha256.New, []byte(r.secret))
		m.Write([]byte(msg))
		return hex.EncodeToString(m.Sum(nil))
	}
	// The library agrees with the hand-written form.
	if sigs, err := didit.Sign(r.secret, []byte(raw), ts); err != nil || sigs.V2 != mac(canonical) {
		t.Fatalf("didit.Sign V2 does not match the hand-made canonical form (err %v)", err)
	}
	hdr := func(v2 string) http.Header {
		return http.Header{didit.HeaderSignatureV2: {v2}, didit.HeaderTimestamp: {strconv.FormatInt(ts, 10)}}
	}
	v := r.stored(t, sid).Version
	// V2 over anything but the canonical form is refused: the raw
	// body, or the canonical form with ASCII escapes kept.
	expectHookRejected(t, r.postHook(t, []byte(raw), hdr(mac(raw))))
	escaped := strings.NewReplacer("é", `\u00e9`, "ü", `\u00fc`, "á", `\u00e1`, "ñ", `\u00f1`, "í", `\u00ed`).Replace(canonical)
	expectHookRejected(t, r.postHook(t, []byte(raw), hdr(mac(escaped))))
	if got := r.stored(t, sid).Version; got != v {
		t.Fatal("a refused webhook changed the session")
	}
	// V2 alone, over the canonical form: accepted and applied.
	expectHookAccepted(t, r.postHook(t, []byte(raw), hdr(mac(canonical))))
	r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, diditIP{
		IPAddress: "203.0.113.9", IPCountry: "España", IPState: "Andalucía", IPCity: "Málaga",
		Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone"}))
	if dec := r.stored(t, sid).Decision; !bytes.Contains(dec, []byte("0.00005")) && !bytes.Contains(dec, []byte("5e-05")) {
		t.Fatalf("stored decision lost the AML score: %s", dec)
	}
}

// hookSimulatorDecisionsVerify is TestDiditWebhooks/simulator decisions verify.
func hookSimulatorDecisionsVerify(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut)) {
	// The simulator's own decisions carry José Müller, 89.0, 40.0 and
	// 5e-05; with only X-Signature-V2 kept they must still verify.
	email, c := session(t)
	sid := c.Session.SessionID
	if err := r.sim.TamperNext(diditsim.TamperDrop, 2, sid); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Complete(context.Background(), sid, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	// Dropped, so kycgate never saw them; take their signed bytes and
	// send them with X-Signature-V2 only.
	var approved diditsim.Delivery
	for _, ev := range r.sim.Events(sid) {
		if ev.Status == "Approved" {
			approved = r.delivered(t, ev.ID)
		}
	}
	if !bytes.Contains(approved.Body, []byte("Jos\\u00e9 M\\u00fcller")) && !bytes.Contains(approved.Body, []byte("José Müller")) {
		t.Fatalf("simulator body lacks the non-ASCII name: %.300s", approved.Body)
	}
	for _, lit := range []string{"89.0", "40.0", "5e-05"} {
		if !bytes.Contains(approved.Body, []byte(lit)) {
			t.Fatalf("simulator body lacks the float %s: %.300s", lit, approved.Body)
		}
	}
	if approved.Error == "" || approved.ResponseStatus != 0 {
		t.Fatalf("the dropped delivery reached kycgate: %+v", approved)
	}
	r.checkStatus(t, "/kyc/status", key, email, diditPending(c, "Not Started"))
	h := http.Header{didit.HeaderSignatureV2: {approved.Header.Get(didit.HeaderSignatureV2)}, didit.HeaderTimestamp: {approved.Header.Get(didit.HeaderTimestamp)}}
	expectHookAccepted(t, r.postHook(t, approved.Body, h))
	r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, simDefaultIP))
}

// hookUnknownSession is TestDiditWebhooks/unknown session.
func hookUnknownSession(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut)) {
	sid := uuid.NewString()
	ts := time.Now().Unix()
	dec := json.RawMessage(`{"status":"Approved","ip_analyses":[{"ip_address":"203.0.113.1"}]}`)
	b := diditHookBody(t, sid, "Approved", "status.updated", ts, dec)
	expectHookAccepted(t, r.postHook(t, b, diditSigned(t, r.secret, b, ts)))
	if _, err := r.store().SessionByID(context.Background(), sid); !errors.Is(err, kyc.ErrNotFound) {
		t.Fatalf("unknown session stored: %v", err)
	}
	// Event types kycgate does not handle are acknowledged too.
	b = diditHookBody(t, sid, "Approved", "user.status.updated", ts, nil)
	expectHookAccepted(t, r.postHook(t, b, diditSigned(t, r.secret, b, ts)))
}

// hookDataUpdated is TestDiditWebhooks/data.updated.
func hookDataUpdated(t *testing.T, r *diditRig, key string, session func(*testing.T) (string, diditCreateOut)) {
	email, c := session(t)
	sid := c.Session.SessionID
	r.complete(t, sid, diditsim.Outcome{})
	r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, simDefaultIP))
	// A reviewer corrects the IP data a little later.
	r.sim.AdvanceClock(2 * time.Second)
	r.step(t, sid, func(ctx context.Context) error {
		return r.sim.UpdateData(ctx, sid, diditsim.DataEdit{
			ID: map[string]string{"first_name": "Josefina"},
			IP: &diditsim.IPFields{IPCity: "Alcalá de Henares", IPAddress: "203.0.113.8"}})
	})
	evs := r.sim.Events(sid)
	if last := evs[len(evs)-1]; last.WebhookType != diditsim.EventDataUpdated {
		t.Fatalf("last event %+v, want data.updated", last)
	}
	edited := simDefaultIP
	edited.IPCity, edited.IPAddress = "Alcalá de Henares", "203.0.113.8"
	r.checkStatus(t, "/kyc/status", key, email, diditDecided(c, "Approved", "approved", false, edited))
	if dec := r.stored(t, sid).Decision; !bytes.Contains(dec, []byte("Josefina")) {
		t.Fatalf("stored decision not updated: %.200s", dec)
	}
}
