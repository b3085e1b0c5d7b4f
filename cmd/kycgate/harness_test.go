package main

// The end-to-end harness: start kycgate through run() exactly as a user
// would (environment, subcommands), with a real SMTP server, and validate
// every response against api/openapi.yaml.

import (
	"bytes"
	"context"
	"encoding/json"

	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/contract"
	"github.com/kycgate/kycgate/internal/mail/mailtest"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// logSink collects the server's JSON log lines and announces the listen
// address, so tests never sleep waiting for start-up.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	line  []byte
	addrc chan string
	admin string // the admin listener's address, once announced
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.line = append(l.line, p...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		var rec struct {
			Msg       string `json:"msg"`
			Addr      string `json:"addr"`
			AdminAddr string `json:"admin_addr"`
		}
		if json.Unmarshal(l.line[:i], &rec) == nil && rec.Msg == "admin listening" {
			l.admin = rec.AdminAddr // announced before "kycgate listening"
		}
		if json.Unmarshal(l.line[:i], &rec) == nil && rec.Msg == "kycgate listening" {
			select {
			case l.addrc <- rec.Addr:
			default:
			}
		}
		l.line = l.line[i+1:]
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// instance is one running kycgate.
type instance struct {
	t        testing.TB
	env      map[string]string
	URL      string
	AdminURL string // "" when the admin listener is off
	client   *http.Client
	logs     *logSink
	cancel   context.CancelFunc
	hurry    chan struct{} // close after cancel: the second signal
	done     chan error
}

var (
	validatorOnce sync.Once
	validator     *contract.Validator
	validatorErr  error
)

func loadValidator(t testing.TB) *contract.Validator {
	validatorOnce.Do(func() { validator, validatorErr = contract.Load() })
	if validatorErr != nil {
		t.Fatalf("load openapi: %v", validatorErr)
	}
	return validator
}

// newEnv returns the environment for a server on a fresh database, mailing
// to smtpURL. KYCGATE_TEST_ENGINE=postgres runs the end-to-end tests on a
// fresh PostgreSQL schema instead of SQLite (scripts/test does both).
func newEnv(t testing.TB, smtpURL string) map[string]string {
	env := map[string]string{
		"KYCGATE_ADDR":         "127.0.0.1:0",
		"KYCGATE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "kycgate.db"),
		"KYCGATE_SMTP_URL":     smtpURL,
		"KYCGATE_LOG_LEVEL":    "debug",
		// The reconciler must not poll the simulator behind the tests'
		// backs: at the default (2m) a session a slow run kept open that
		// long would be polled, and a webhook a test drops on purpose
		// would be filled in from Didit.
		"KYCGATE_RECONCILE_INTERVAL": "1h",
		// Stopping a test server need not wait for load balancers.
		"KYCGATE_SHUTDOWN_DELAY": "0",
		// Outbound webhooks go to loopback receivers, and retry at once.
		"KYCGATE_WEBHOOK_ALLOW_PRIVATE":  "1",
		"KYCGATE_WEBHOOK_RETRY_SCHEDULE": testRetrySchedule,
		// Tests run side by side: each admin listener on its own port.
		"KYCGATE_ADMIN_ADDR": "127.0.0.1:0",
	}
	switch engine := os.Getenv("KYCGATE_TEST_ENGINE"); engine {
	case "", "sqlite":
	case "postgres":
		url, ok := storetest.PostgresURL(t)
		if !ok {
			t.Fatal("KYCGATE_TEST_ENGINE=postgres but no PostgreSQL is reachable (run under pg_virtualenv)")
		}
		env["KYCGATE_DATABASE_URL"] = url
		env["KYCGATE_SECRET"] = "e2e-test-secret-0123456789abcdefghijklmnop"
		env["KYCGATE_DEV"] = "1" // the tests use the embedded Didit simulator
	default:
		t.Fatalf("KYCGATE_TEST_ENGINE=%q: want sqlite or postgres", engine)
	}
	return env
}

func getenvFrom(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// start runs `kycgate serve` with env until the test ends.
func start(t testing.TB, env map[string]string) *instance {
	t.Helper()
	in := &instance{t: t, env: env}
	in.boot()
	t.Cleanup(func() {
		if in.cancel != nil {
			in.stop()
		}
	})
	return in
}

func (in *instance) boot() {
	t := in.t
	t.Helper()
	in.logs = &logSink{addrc: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	in.hurry = make(chan struct{})
	ctx = withHurry(ctx, in.hurry)
	in.done = make(chan error, 1)
	go func() { in.done <- run(ctx, []string{"serve"}, getenvFrom(in.env), io.Discard, in.logs) }()
	select {
	case addr := <-in.logs.addrc:
		in.URL = "http://" + addr
		in.logs.mu.Lock()
		if in.logs.admin != "" {
			in.AdminURL = "http://" + in.logs.admin
		}
		in.logs.mu.Unlock()
	case err := <-in.done:
		t.Fatalf("kycgate exited during start-up: %v\n%s", err, in.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("kycgate did not start\n%s", in.logs)
	}
	in.client = &http.Client{Transport: contract.Transport(t, loadValidator(t), http.DefaultTransport)}
}

// stop sends the shutdown signal and waits for a clean exit.
func (in *instance) stop() {
	in.t.Helper()
	in.cancel()
	in.cancel = nil
	if err := <-in.done; err != nil {
		in.t.Errorf("kycgate exited with error: %v", err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// restart stops the server and starts it again on the same data.
func (in *instance) restart() {
	in.t.Helper()
	in.stop()
	in.boot()
}

// cli runs a kycgate subcommand against the same configuration.
func (in *instance) cli(args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, getenvFrom(in.env), &out, &errb)
	if err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errb.String())
	}
	return out.String(), nil
}

// tenant creates a tenant and returns its id and API key.
func (in *instance) tenant(name string, flags ...string) (id, key string) {
	in.t.Helper()
	out, err := in.cli(append([]string{"tenant", "create", "--name", name, "--json"}, flags...)...)
	if err != nil {
		in.t.Fatalf("tenant create: %v", err)
	}
	var v struct{ TenantID, APIKey string }
	dec := json.NewDecoder(strings.NewReader(out))
	var m map[string]string
	if err := dec.Decode(&m); err != nil || dec.More() {
		in.t.Fatalf("tenant create --json printed %q, want exactly one JSON object", out)
	}
	v.TenantID, v.APIKey = m["tenant_id"], m["api_key"]
	if v.TenantID == "" || v.APIKey == "" {
		in.t.Fatalf("tenant create --json printed %q", out)
	}
	return v.TenantID, v.APIKey
}

// reply is one decoded response.
type reply struct {
	Code   int
	Header http.Header
	Raw    []byte
	Env    struct {
		StatusCode int             `json:"statusCode"`
		Success    bool            `json:"success"`
		Status     string          `json:"status"`
		Message    string          `json:"message"`
		Data       json.RawMessage `json:"data"`
	}
}

// data decodes the envelope's data into v.
func (r reply) data(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Env.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Env.Data, err)
	}
}

// call sends one request. body may be nil, a string (sent raw) or a value
// (sent as JSON).
func (in *instance) call(method, path, key string, body any) reply {
	in.t.Helper()
	r, err := in.try(method, path, key, body)
	if err != nil {
		in.t.Fatal(err)
	}
	return r
}

// try is call for use from goroutines: it returns errors instead of failing.
func (in *instance) try(method, path, key string, body any) (reply, error) {
	return in.tryWith(method, path, key, body, nil)
}

// tryWith is try with extra request headers.
func (in *instance) tryWith(method, path, key string, body any, hdr http.Header) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, in.URL+path, rd)
	if err != nil {
		return reply{}, err
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{Code: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.Env); err != nil {
			return r, fmt.Errorf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return r, nil
}

// expect fails unless the reply has this HTTP status and status string
// (and, when given, message); it also checks the envelope's own rules.
func expect(t testing.TB, r reply, code int, status string, message ...string) {
	t.Helper()
	if r.Code != code || r.Env.Status != status {
		t.Fatalf("got %d %q, want %d %q; body %s", r.Code, r.Env.Status, code, status, r.Raw)
	}
	if r.Env.StatusCode != r.Code || r.Env.Success != (code >= 200 && code < 300) {
		t.Fatalf("envelope statusCode/success wrong: %s", r.Raw)
	}
	if len(message) > 0 && r.Env.Message != message[0] {
		t.Fatalf("message %q, want %q", r.Env.Message, message[0])
	}
}

// mailbox wraps the test SMTP server.
type mailbox struct {
	t   testing.TB
	srv *mailtest.Server
}

func newMailbox(t testing.TB, opts ...mailtest.Option) *mailbox {
	return &mailbox{t: t, srv: mailtest.NewServer(t, opts...)}
}

// code waits for the next mail to addr and returns its code.
func (m *mailbox) code(addr string) string {
	m.t.Helper()
	_, code := m.next(m.t, addr)
	return code
}

// next waits for the next mail to addr and returns it and its code,
// failing t (which may be a subtest) when none comes.
func (m *mailbox) next(t testing.TB, addr string) (mailtest.Message, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg, err := m.srv.WaitFor(ctx, addr)
	if err != nil {
		t.Fatalf("no mail to %s: %v", addr, err)
	}
	code, err := msg.Code()
	if err != nil {
		t.Fatalf("mail to %s: %v\n%s", addr, err, msg.Text)
	}
	return msg, code
}

// verifyEmail runs prepare → send-otp → read mail → verify-otp.
func (in *instance) verifyEmail(mb *mailbox, key, email string) {
	in.t.Helper()
	if r := in.call("POST", "/kyc/prepare", key, map[string]string{"email": email}); r.Code != 201 && r.Code != 200 {
		in.t.Fatalf("prepare: %s", r.Raw)
	}
	expect(in.t, in.call("POST", "/security/email/send-otp", key, map[string]string{"email": email}), 201, "otp_sent")
	code := mb.code(strings.ToLower(email))
	expect(in.t, in.call("POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code}), 200, "email_verified")
}
