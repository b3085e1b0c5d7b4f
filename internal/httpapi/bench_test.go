package httpapi

// Benchmarks of the HTTP layer's hot paths: envelope encoding, and whole
// requests through the real stack (routes, middleware, service, SQLite
// store) without a network, so the figures are the server's own CPU per
// request. The load harness (cmd/kycload) measures the same endpoints over
// loopback; see BENCHMARKS.md.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/benchcpu"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/metrics"
	"github.com/kycgate/kycgate/internal/store"
)

func BenchmarkRespondEnvelope(b *testing.B) {
	ip, err := json.Marshal([]kyc.IPInfo{{IPAddress: "203.0.113.7", IPCountry: "Portugal", IPState: "Lisbon", IPCity: "Lisbon",
		Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone"}})
	if err != nil {
		b.Fatal(err)
	}
	data := kyc.StatusData{Status: "approved", Approved: true, SessionID: "5f1c1a9e-2b7c-4c1e-9d0a-3e8f7b6a5c4d",
		SessionStatus: "Approved", SessionURL: "https://verify.didit.me/session/abcdefghijklmnop", IPInfo: ip}
	b.Run("with-data", func(b *testing.B) {
		b.ReportAllocs()
		w := discardWriter{h: http.Header{}}
		for b.Loop() {
			respond(w, http.StatusOK, "kyc_status_retrieved", "KYC status retrieved", data)
		}
	})
	b.Run("no-data", func(b *testing.B) {
		b.ReportAllocs()
		w := discardWriter{h: http.Header{}}
		for b.Loop() {
			respond(w, http.StatusCreated, "user_prepared", "User prepared for KYC, please verify your email", nil)
		}
	})
}

type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}

// codeMailer remembers the last code sent to each address.
type codeMailer struct {
	mu    sync.Mutex
	codes map[string]string
}

func (m *codeMailer) SendCode(_ context.Context, cm kyc.CodeMail) error {
	to, code := cm.To, cm.Code
	m.mu.Lock()
	m.codes[to] = code
	m.mu.Unlock()
	return nil
}

type benchServer struct {
	h      http.Handler
	key    string
	db     *store.DB
	mailer *codeMailer
}

// newBenchServer is the real stack on a fresh SQLite database, logging
// (JSON, as kycgate does) to io.Discard, with one tenant without limits;
// previous are the service's previous secrets (none: no rotation).
func newBenchServer(b *testing.B, previous ...[]byte) *benchServer {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := &codeMailer{codes: map[string]string{}}
	// The metrics kycgate serve wires, so their cost is in the figures.
	reg := metrics.New(db.Pools())
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: m, Logger: log, Observer: reg},
		kyc.Config{Secret: []byte("benchmark-secret-0123456789abcdefghijklmnop"), PreviousSecrets: previous})
	if err != nil {
		b.Fatal(err)
	}
	zero := 0
	_, key, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: "bench", MonthlyQuota: &zero, RatePerMinute: &zero})
	if err != nil {
		b.Fatal(err)
	}
	return &benchServer{h: New(Config{Service: svc, Logger: log, Metrics: reg}), key: key, db: db, mailer: m}
}

func (s *benchServer) do(b *testing.B, method, path, body string, want int) string {
	return s.doKey(b, method, path, body, "", want)
}

// doKey is do with an Idempotency-Key ("" for none).
func (s *benchServer) doKey(b *testing.B, method, path, body, idem string, want int) string {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("x-api-key", s.key)
	req.Header.Set("Content-Type", "application/json")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	if w.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	return w.Body.String()
}

// verified prepares n people through the API and verifies their email,
// then gives each an approved session.
func (s *benchServer) verified(b *testing.B, n int) []string {
	b.Helper()
	emails := make([]string, n)
	now := time.Now().UTC()
	for i := range emails {
		e := "user" + strconv.Itoa(i) + "@example.com"
		emails[i] = e
		s.do(b, "POST", "/kyc/prepare", `{"email":"`+e+`"}`, 201)
		s.do(b, "POST", "/security/email/send-otp", `{"email":"`+e+`"}`, 201)
		s.mailer.mu.Lock()
		code := s.mailer.codes[e]
		s.mailer.mu.Unlock()
		s.do(b, "POST", "/security/email/verify-otp", `{"email":"`+e+`","code":"`+code+`"}`, 200)
		en, err := s.db.FindEnrollment(context.Background(), tenantIDOf(b, s), e, "")
		if err != nil {
			b.Fatal(err)
		}
		p := kyc.Person{ID: en.PersonID}
		sess := kyc.Session{ID: "sess-" + strconv.Itoa(i), PersonID: p.ID, TenantID: tenantIDOf(b, s),
			URL: "https://verify.didit.me/session/" + strconv.Itoa(i), Status: kyc.StatusApproved,
			IPInfo:   []kyc.IPInfo{{IPAddress: "203.0.113.7", IPCountry: "Portugal", Platform: "mobile"}},
			Decision: []byte(`{"status":"Approved"}`), EventAt: now, CreatedAt: now, UpdatedAt: now, CheckedAt: now}
		if _, err := s.db.ClaimSessionCreation(context.Background(), p.ID, "bench", now.Add(time.Minute), now); err != nil {
			b.Fatal(err)
		}
		if err := s.db.InsertSession(context.Background(), sess, "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
	return emails
}

func tenantIDOf(b *testing.B, s *benchServer) string {
	ts, err := s.db.ListTenants(context.Background())
	if err != nil || len(ts) != 1 {
		b.Fatalf("tenants: %v %v", ts, err)
	}
	return ts[0].ID
}

// BenchmarkServeStatus is GET /kyc/status end to end: API key lookup,
// enrollment, latest session, envelope, access log.
func BenchmarkServeStatus(b *testing.B) {
	s := newBenchServer(b)
	emails := s.verified(b, 20)
	b.ReportAllocs()
	i := 0
	benchcpu.Loop(b, func() {
		i++
		s.do(b, "GET", "/kyc/status?email="+emails[i%len(emails)], "", 200)
	})
}

// BenchmarkServeStatusRotation is BenchmarkServeStatus with a good key
// (hit) and an unknown one (miss, 403), without and with a previous
// secret: a hit costs the same, a miss one more hash and lookup.
func BenchmarkServeStatusRotation(b *testing.B) {
	for _, prev := range []string{"none", "one"} {
		for _, hit := range []bool{true, false} {
			name := "previous=" + prev + "/miss"
			if hit {
				name = "previous=" + prev + "/hit"
			}
			b.Run(name, func(b *testing.B) {
				var previous [][]byte
				if prev == "one" {
					previous = [][]byte{[]byte("previous-secret-0123456789abcdefghijklmnop")}
				}
				s := newBenchServer(b, previous...)
				emails := s.verified(b, 20)
				want := 200
				if !hit {
					s.key, want = "kg_"+strings.Repeat("x", 39), 403
				}
				b.ReportAllocs()
				i := 0
				benchcpu.Loop(b, func() {
					i++
					s.do(b, "GET", "/kyc/status?email="+emails[i%len(emails)], "", want)
				})
			})
		}
	}
}

// BenchmarkServePrepare is POST /kyc/prepare for a new email each time.
func BenchmarkServePrepare(b *testing.B) {
	s := newBenchServer(b)
	b.ReportAllocs()
	i := 0
	benchcpu.Loop(b, func() {
		i++
		s.do(b, "POST", "/kyc/prepare", `{"email":"new`+strconv.Itoa(i)+`@example.com"}`, 201)
	})
}

// BenchmarkServePrepareIdempotent is BenchmarkServePrepare with a new
// Idempotency-Key each time (the key's claim and its stored answer: two
// more writes), and a retry that gets the stored answer replayed.
func BenchmarkServePrepareIdempotent(b *testing.B) {
	b.Run("new-key", func(b *testing.B) {
		s := newBenchServer(b)
		b.ReportAllocs()
		i := 0
		benchcpu.Loop(b, func() {
			i++
			n := strconv.Itoa(i)
			s.doKey(b, "POST", "/kyc/prepare", `{"email":"new`+n+`@example.com"}`, "key-"+n, 201)
		})
	})
	b.Run("replay", func(b *testing.B) {
		s := newBenchServer(b)
		s.doKey(b, "POST", "/kyc/prepare", `{"email":"once@example.com"}`, "key-once", 201)
		b.ReportAllocs()
		benchcpu.Loop(b, func() { s.doKey(b, "POST", "/kyc/prepare", `{"email":"once@example.com"}`, "key-once", 201) })
	})
}

// BenchmarkServeProducts is the lightest authenticated route: the cost of
// the middleware (key lookup, log, metrics) and the envelope alone.
func BenchmarkServeProducts(b *testing.B) {
	s := newBenchServer(b)
	b.ReportAllocs()
	benchcpu.Loop(b, func() { s.do(b, "GET", "/config/products", "", 200) })
}
