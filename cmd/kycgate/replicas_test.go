package main

// Issue 5's multi-replica proof: the real kycgate binary, built once, run as
// two or three `kycgate serve` processes on one PostgreSQL schema, each on
// its own loopback port, sharing KYCGATE_SECRET, one SMTP server (mailtest)
// and one Didit simulator on its own HTTP server. Requests are spread
// round-robin over the replicas; every invariant of docs/api.md §4–§7 and §11 is
// asserted across them, and a replica killed with SIGKILL in the middle of
// a mixed load loses nothing it acknowledged (read back from the database).
//
// Nothing here sleeps to synchronise: start-up waits for each process's
// "kycgate listening" log line, mail for mailtest.WaitFor, webhooks for the
// simulator's record of attempts, concurrency for channels.
//
// The tests skip when no PostgreSQL is configured, and fail instead under
// KYCGATE_TEST_POSTGRES=require:
//
//	pg_virtualenv -t env KYCGATE_TEST_POSTGRES=require go test -race -count=1 ./cmd/kycgate/ -run Replica -v

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/mr-tron/base58"
	"golang.org/x/crypto/sha3"

	"github.com/kycgate/kycgate/internal/contract"
	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
	"github.com/kycgate/kycgate/internal/wallet"
)

const rpCreatePath = "/kyc/create/verify_public_kyc"

// ---------------------------------------------------------------- binary

var rpBin struct {
	once sync.Once
	path string
	err  error
}

// rpBinary returns a kycgate binary built from this package. Under `go
// test` it is built once per run, into go test's own work directory beside
// the test binary (go test removes that directory when it exits); a test
// binary run some other way builds into each test's temporary directory.
func rpBinary(t *testing.T) string {
	t.Helper()
	rpBin.once.Do(func() {
		if dir := rpGoTestWorkDir(); dir != "" {
			rpBin.path, rpBin.err = rpBuild(dir)
		}
	})
	if rpBin.err != nil {
		t.Fatal(rpBin.err)
	}
	if rpBin.path != "" {
		return rpBin.path
	}
	p, err := rpBuild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rpGoTestWorkDir is the directory of the running test binary when go test
// made it ($WORK/b001), else "".
func rpGoTestWorkDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	dir := filepath.Dir(exe)
	if !strings.HasPrefix(filepath.Base(filepath.Dir(dir)), "go-build") {
		return ""
	}
	return dir
}

func rpBuild(dir string) (string, error) {
	path := filepath.Join(dir, "kycgate-replica")
	out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build kycgate: %v\n%s", err, out)
	}
	return path, nil
}

// ---------------------------------------------------------------- simulator

// rpSim is the Didit simulator on its own loopback HTTP server. It counts
// the session creations it answered 201 per tenant (kycgate sends its
// tenant id as metadata): the simulator hands back the open session of the
// same vendor_data instead of a new one, so its session list alone could
// hide a duplicate create call.
type rpSim struct {
	sim      *diditsim.Sim
	URL      string
	apiKey   string
	workflow string
	secret   string

	mu      sync.Mutex
	creates map[string]int // tenant id → create calls answered 201
}

func rpStartSim(t *testing.T) *rpSim {
	t.Helper()
	s := &rpSim{apiKey: "sim_" + randomHex(16), workflow: uuid.NewString(), secret: "whsec_" + randomHex(20), creates: map[string]int{}}
	srv := httptest.NewUnstartedServer(nil)
	cfg := diditsim.DefaultConfig()
	cfg.APIKey = s.apiKey
	cfg.WorkflowIDs = []string{s.workflow}
	cfg.BaseURL = "http://" + srv.Listener.Addr().String()
	cfg.RetrySchedule = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	cfg.Logger = slog.New(slog.DiscardHandler)
	sim, err := diditsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.sim = sim
	h := sim.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isCreate := r.Method == http.MethodPost && r.URL.Path == "/v3/session/"
		var body []byte
		if isCreate {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &diditStatusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if isCreate && rec.code == http.StatusCreated {
			var req struct {
				Metadata struct {
					TenantID string `json:"tenant_id"`
				} `json:"metadata"`
			}
			_ = json.Unmarshal(body, &req)
			s.mu.Lock()
			s.creates[req.Metadata.TenantID]++
			s.mu.Unlock()
		}
	})
	srv.Start()
	s.URL = srv.URL
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return s
}

// createsFor is how many sessions kycgate created at the simulator for a
// tenant (201 answers to POST /v3/session/).
func (s *rpSim) createsFor(tenantID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates[tenantID]
}

// ---------------------------------------------------------------- processes

// rpLog keeps a replica's stderr (JSON log lines) for failure reports and
// announces the listening address.
type rpLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *rpLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > 600 {
		l.lines = slices.Clone(l.lines[len(l.lines)-400:])
	}
}

func (l *rpLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "")
}

// rpProc is one `kycgate serve` process. Its embedded instance gives the
// harness's try (through a client that validates every response against
// api/openapi.yaml).
type rpProc struct {
	*instance
	name string
	cmd  *exec.Cmd
	log  *rpLog
	addr chan string
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's error, set before done closes

	// Once armed, wrote gets a token whenever a request has been written
	// to this replica (see rpWroteRT).
	armed atomic.Bool
	wrote chan struct{}
}

// rpWroteRT reports, once its replica is armed, each request fully written
// to the replica: the moment to kill it with a request in its hands.
type rpWroteRT struct {
	next http.RoundTripper
	p    *rpProc
}

func (rt rpWroteRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt.p.armed.Load() {
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
			select {
			case rt.p.wrote <- struct{}{}:
			default:
			}
		}}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	}
	return rt.next.RoundTrip(req)
}

// rpCluster is the shared world of one test: a database, a binary, one SMTP
// server, one simulator and the replicas.
type rpCluster struct {
	t     *testing.T
	bin   string
	dbURL string
	env   []string
	mail  *mailbox
	sim   *rpSim
	procs []*rpProc

	dbOnce sync.Once
	db     *sql.DB
}

const rpSecret = "replica-test-secret-0123456789abcdefghijklmnop"

// rpNewCluster prepares a fresh PostgreSQL schema, the binary, the mail
// server and the simulator; it skips the test when PostgreSQL is not
// configured (storetest fails it instead under KYCGATE_TEST_POSTGRES=require).
func rpNewCluster(t *testing.T) *rpCluster {
	t.Helper()
	url, ok := storetest.PostgresURL(t)
	if !ok {
		t.Skip("multi-replica tests need PostgreSQL: run under `pg_virtualenv -t` (KYCGATE_TEST_POSTGRES=require makes this a failure)")
	}
	c := &rpCluster{t: t, bin: rpBinary(t), dbURL: url, mail: newMailbox(t), sim: rpStartSim(t)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KYCGATE_") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env,
		"KYCGATE_ADDR=127.0.0.1:0",
		"KYCGATE_ADMIN_ADDR=127.0.0.1:0",
		"KYCGATE_DATABASE_URL="+url,
		"KYCGATE_SECRET="+rpSecret,
		"KYCGATE_DB_MAX_CONNS=10",
		"KYCGATE_SMTP_URL="+c.mail.srv.URL(),
		"KYCGATE_DIDIT_URL="+c.sim.URL,
		"KYCGATE_DIDIT_API_KEY="+c.sim.apiKey,
		"KYCGATE_DIDIT_WORKFLOW_ID="+c.sim.workflow,
		"KYCGATE_DIDIT_WEBHOOK_SECRET="+c.sim.secret,
		// The reconciler must not poll the simulator behind the tests' backs.
		"KYCGATE_RECONCILE_INTERVAL=1h",
		"KYCGATE_SHUTDOWN_DELAY=0",
		"KYCGATE_LOG_LEVEL=info",
		"KYCGATE_WEBHOOK_ALLOW_PRIVATE=1",
		"KYCGATE_WEBHOOK_RETRY_SCHEDULE="+testRetrySchedule,
	)
	return c
}

// command runs a kycgate subcommand (migrate, tenant …) to completion.
func (c *rpCluster) command(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kycgate %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// tenant creates a tenant through `kycgate tenant create --json`.
func (c *rpCluster) tenant(t *testing.T, name string, flags ...string) (id, key string) {
	t.Helper()
	out := c.command(t, append([]string{"tenant", "create", "--name", name, "--json"}, flags...)...)
	var v struct {
		TenantID string `json:"tenant_id"`
		APIKey   string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.TenantID == "" || v.APIKey == "" {
		t.Fatalf("tenant create --json printed %q", out)
	}
	return v.TenantID, v.APIKey
}

// start launches n replicas together (so their migrations race for the
// advisory lock), waits until every one is listening, and points the
// simulator's webhooks at the first.
func (c *rpCluster) start(t *testing.T, n int) {
	t.Helper()
	var procs []*rpProc
	for i := range n {
		procs = append(procs, c.spawn(t, fmt.Sprintf("replica-%d", i)))
	}
	for _, p := range procs {
		p.await(t)
	}
	c.procs = append(c.procs, procs...)
	if err := c.sim.sim.SetWebhooks([]diditsim.Destination{{URL: c.procs[0].URL + "/webhooks/didit", Secret: c.sim.secret}}); err != nil {
		t.Fatal(err)
	}
}

func (c *rpCluster) spawn(t *testing.T, name string) *rpProc {
	t.Helper()
	cmd := exec.Command(c.bin, "serve")
	cmd.Env = c.env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &rpProc{instance: &instance{t: t}, name: name, cmd: cmd, log: &rpLog{},
		addr: make(chan string, 1), done: make(chan struct{}), wrote: make(chan struct{}, 1)}
	go func() {
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				p.log.add(line)
				var rec struct {
					Msg  string `json:"msg"`
					Addr string `json:"addr"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "kycgate listening" {
					select {
					case p.addr <- rec.Addr:
					default:
					}
				}
			}
			if err != nil {
				break
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// await waits for the process's "kycgate listening" line.
func (p *rpProc) await(t *testing.T) {
	t.Helper()
	select {
	case addr := <-p.addr:
		p.URL = "http://" + addr
	case <-p.done:
		t.Fatalf("%s exited during start-up: %v\n%s", p.name, p.err, p.log.tail(50))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start listening\n%s", p.name, p.log.tail(50))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	p.client = &http.Client{Transport: contract.Transport(t, loadValidator(t), rpWroteRT{tr, p}), Timeout: 60 * time.Second}
}

// kill ends the process at once, as a crash or an OOM kill would.
func (p *rpProc) kill(t *testing.T) {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("SIGKILL %s: %v", p.name, err)
	}
}

// stop shuts a still-running replica down with SIGTERM and requires a
// clean exit; it dumps the log tail when the test failed.
func (p *rpProc) stop(t *testing.T) {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.err != nil {
				t.Errorf("%s: exit after SIGTERM: %v", p.name, p.err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s of SIGTERM; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if t.Failed() {
		t.Logf("%s log tail:\n%s", p.name, p.log.tail(40))
	}
}

// pick is replica i of the round-robin.
func (c *rpCluster) pick(i int) *rpProc { return c.procs[i%len(c.procs)] }

// ---------------------------------------------------------------- database

// openDB opens the replicas' database directly (same URL, search_path
// included).
func (c *rpCluster) openDB(t *testing.T) *sql.DB {
	t.Helper()
	c.dbOnce.Do(func() {
		db, err := sql.Open("pgx", c.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(2)
		c.db = db
		c.t.Cleanup(func() { db.Close() })
	})
	return c.db
}

func (c *rpCluster) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := c.openDB(t).QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

type rpMigration struct {
	Version   int64
	AppliedAt int64
}

// migrations reads schema_migrations.
func (c *rpCluster) migrations(t *testing.T) []rpMigration {
	t.Helper()
	rows, err := c.openDB(t).Query(`SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []rpMigration
	for rows.Next() {
		var m rpMigration
		if err := rows.Scan(&m.Version, &m.AppliedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rpMigrationFiles are the versions of the migrations PostgreSQL runs.
func rpMigrationFiles(t *testing.T) []int64 {
	t.Helper()
	out, err := store.MigrationVersions(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no PostgreSQL migration files found")
	}
	return out
}

// checkMigrations requires exactly one schema_migrations row per file.
func (c *rpCluster) checkMigrations(t *testing.T) []rpMigration {
	t.Helper()
	want := rpMigrationFiles(t)
	got := c.migrations(t)
	var versions []int64
	for _, m := range got {
		versions = append(versions, m.Version)
	}
	if !slices.Equal(versions, want) {
		t.Fatalf("schema_migrations versions %v, want exactly one row per migration file %v", versions, want)
	}
	return got
}

// ---------------------------------------------------------------- wallets

// rpWallet is a wallet played by Go's own signers: EIP-191 personal_sign on
// secp256k1 (EVM) or ed25519 (Solana).
type rpWallet struct {
	Address string
	sign    func(msg string) string
}

func rpKeccak(b []byte) []byte {
	h := sha3.NewLegacyKeccak256()
	h.Write(b)
	return h.Sum(nil)
}

func rpEVMWallet(t testing.TB) rpWallet {
	t.Helper()
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.PubKey().SerializeUncompressed() // 0x04 ‖ X ‖ Y
	addr := "0x" + hex.EncodeToString(rpKeccak(pub[1:])[12:])
	w := rpWallet{Address: addr, sign: func(msg string) string {
		hash := rpKeccak([]byte(fmt.Sprintf("\x19Ethereum Signed Message:\n%d%s", len(msg), msg)))
		sig := secpecdsa.SignCompact(priv, hash, false) // v ‖ r ‖ s, v = 27 + recovery id; low S
		return "0x" + hex.EncodeToString(append(sig[1:65:65], sig[0]))
	}}
	rpSelfCheck(t, w)
	return w
}

func rpSolanaWallet(t testing.TB) rpWallet {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := rpWallet{Address: base58.Encode(pub), sign: func(msg string) string {
		return base58.Encode(ed25519.Sign(priv, []byte(msg)))
	}}
	rpSelfCheck(t, w)
	return w
}

// rpSelfCheck makes sure the test's signer is right before the server is
// blamed for refusing it.
func rpSelfCheck(t testing.TB, w rpWallet) {
	t.Helper()
	addr, err := wallet.ParseAddress(w.Address)
	if err != nil {
		t.Fatalf("test wallet %s: %v", w.Address, err)
	}
	msg := "self-check " + randomHex(8)
	if err := wallet.VerifySignature(addr, []byte(msg), w.sign(msg)); err != nil {
		t.Fatalf("test signer for %s is wrong: %v", w.Address, err)
	}
}

// ---------------------------------------------------------------- calls

// rpReq is one request of a concurrent batch.
type rpReq struct {
	method, path, key string
	body              any
}

// concurrent sends every request at the same moment, request i to replica
// i mod n, and returns the replies in order.
func (c *rpCluster) concurrent(t *testing.T, reqs []rpReq) []reply {
	t.Helper()
	out := make([]reply, len(reqs))
	errs := make([]error, len(reqs))
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, rq := range reqs {
		wg.Go(func() {
			<-gate
			out[i], errs[i] = c.pick(i).try(rq.method, rq.path, rq.key, rq.body)
		})
	}
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// call sends one request to replica i and fails t on transport errors.
func (c *rpCluster) call(t *testing.T, i int, method, path, key string, body any) reply {
	t.Helper()
	r, err := c.pick(i).try(method, path, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tally counts replies by "HTTP status".
func rpTally(rs []reply) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[fmt.Sprintf("%d %s", r.Code, r.Env.Status)]++
	}
	return m
}

func rpWantTally(t *testing.T, what string, rs []reply, want map[string]int) {
	t.Helper()
	got := rpTally(rs)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for _, r := range rs {
		if r.Env.Status != "" && (r.Env.StatusCode != r.Code || r.Env.Success != (r.Code >= 200 && r.Code < 300)) {
			t.Fatalf("%s: envelope statusCode/success wrong: %s", what, r.Raw)
		}
	}
}

// sendCode prepares email on one replica, sends the code from another and
// returns the code from the mail.
func (c *rpCluster) sendCode(t *testing.T, key, email string) string {
	t.Helper()
	expect(t, c.call(t, 0, "POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")
	expect(t, c.call(t, 1, "POST", "/security/email/send-otp", key, map[string]string{"email": email}), 201, "otp_sent")
	return c.code(t, email)
}

// code waits for the next mail to addr and returns its code.
func (c *rpCluster) code(t *testing.T, addr string) string {
	t.Helper()
	_, code := c.mail.next(t, addr)
	return code
}

// challenge asks replica i for a challenge and returns its message and the
// normalised wallet.
func (c *rpCluster) challenge(i int, key, addr string) (msg, normalised string, err error) {
	r, err := c.pick(i).try("POST", "/security/wallet/challenge", key, map[string]string{"wallet": addr})
	if err != nil {
		return "", "", err
	}
	if r.Code != 201 || r.Env.Status != "challenge_created" {
		return "", "", fmt.Errorf("challenge: %d %s", r.Code, r.Raw)
	}
	var d struct{ Message, Wallet string }
	if err := json.Unmarshal(r.Env.Data, &d); err != nil {
		return "", "", err
	}
	return d.Message, d.Wallet, nil
}

// proveWallet registers w by a signed challenge (challenge on replica i,
// prepare-wallet on the next) and returns the normalised address.
func (c *rpCluster) proveWallet(i int, key string, w rpWallet) (string, error) {
	msg, addr, err := c.challenge(i, key, w.Address)
	if err != nil {
		return "", err
	}
	r, err := c.pick(i+1).try("POST", "/kyc/prepare-wallet", key,
		map[string]string{"wallet": addr, "message": msg, "signed_bytes": w.sign(msg)})
	if err != nil {
		return "", err
	}
	if r.Code != 201 || r.Env.Status != "user_prepared" {
		return "", fmt.Errorf("prepare-wallet %s: %d %s", addr, r.Code, r.Raw)
	}
	return addr, nil
}

// verifiedWallets registers n fresh Solana wallets concurrently.
func (c *rpCluster) verifiedWallets(t *testing.T, key string, n int) []string {
	t.Helper()
	ws := make([]rpWallet, n)
	for i := range ws {
		ws[i] = rpSolanaWallet(t)
	}
	out := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() { out[i], errs[i] = c.proveWallet(i, key, ws[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

type rpCreateData struct {
	Message string `json:"message"`
	Session struct {
		SessionID  string `json:"session_id"`
		SessionURL string `json:"session_url"`
	} `json:"session"`
}

// postHook POSTs a webhook body with its headers to one replica.
func (p *rpProc) postHook(body []byte, h http.Header) (reply, error) {
	req, err := http.NewRequest("POST", p.URL+"/webhooks/didit", bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("webhook to %s: %w", p.name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{Code: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &r.Env); err != nil {
		return r, fmt.Errorf("webhook answer from %s is not JSON: %s", p.name, raw)
	}
	return r, nil
}

// rpHook is a signed Didit webhook.
func rpHook(t *testing.T, secret, sessionID, status string, ts int64, decision json.RawMessage) (string, []byte, http.Header) {
	t.Helper()
	eventID := uuid.NewString()
	body, err := json.Marshal(struct {
		EventID     string          `json:"event_id"`
		WebhookType string          `json:"webhook_type"`
		SessionID   string          `json:"session_id"`
		Status      string          `json:"status"`
		Timestamp   int64           `json:"timestamp"`
		CreatedAt   int64           `json:"created_at"`
		Decision    json.RawMessage `json:"decision,omitempty"`
	}{eventID, "status.updated", sessionID, status, ts, ts, decision})
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := didit.Sign(secret, body, ts)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	sigs.SetHeaders(h)
	return eventID, body, h
}

// ---------------------------------------------------------------- tests

// TestReplicaInvariants runs three replicas started together on one fresh
// PostgreSQL schema and asserts, with requests spread over all three, every
// rule that must hold across replicas.
func TestReplicaInvariants(t *testing.T) {
	t.Parallel()
	c := rpNewCluster(t)
	c.start(t, 3)
	// All three migrated at once under the advisory lock: each migration
	// applied exactly once.
	c.checkMigrations(t)
	for i, p := range c.procs {
		if r := c.call(t, i, "GET", "/readyz", "", nil); r.Code != 200 {
			t.Fatalf("%s /readyz: %d %s", p.name, r.Code, r.Raw)
		}
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c *rpCluster)
	}{
		{"OTPGuesses", rpInvariantOTPGuesses},
		{"SendOTP", rpInvariantSendOTP},
		{"ChallengeUse", rpInvariantChallengeUse},
		{"CreateOneUser", rpInvariantCreateOneUser},
		{"Quota", rpInvariantQuota},
		{"Webhooks", rpInvariantWebhooks},
		{"RateLimit", rpInvariantRateLimit},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
	}
}

// rpInvariantOTPGuesses is TestReplicaInvariants/OTPGuesses.
func rpInvariantOTPGuesses(t *testing.T, c *rpCluster) {
	_, key := c.tenant(t, "Guesses", "--rate-limit-per-minute", "0")
	email := "guess-" + randomHex(4) + "@example.com"
	code := c.sendCode(t, key, email)
	right, _ := strconv.Atoi(code)
	var reqs []rpReq
	for i := range 50 {
		wrong := fmt.Sprintf("%06d", (right+1+i)%1000000)
		reqs = append(reqs, rpReq{"POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": wrong}})
	}
	rs := c.concurrent(t, reqs)
	rpWantTally(t, "50 concurrent wrong guesses", rs, map[string]int{
		"400 otp_invalid": 5, "400 otp_max_attempts": 45})
	// The code is dead now, whichever replica is asked.
	for i := range c.procs {
		expect(t, c.call(t, i, "POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code}),
			400, "otp_max_attempts", "Max attempts reached, please request a new code")
	}
}

// rpInvariantSendOTP is TestReplicaInvariants/SendOTP.
func rpInvariantSendOTP(t *testing.T, c *rpCluster) {
	_, key := c.tenant(t, "Sends", "--rate-limit-per-minute", "0")
	email := "send-" + randomHex(4) + "@example.com"
	expect(t, c.call(t, 2, "POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")
	var reqs []rpReq
	for range 12 {
		reqs = append(reqs, rpReq{"POST", "/security/email/send-otp", key, map[string]string{"email": email}})
	}
	rs := c.concurrent(t, reqs)
	rpWantTally(t, "12 concurrent send-otp", rs, map[string]int{
		"201 otp_sent": 1, "429 otp_send_rate_limited": 11})
	for _, r := range rs {
		if r.Code == 429 && r.Header.Get("Retry-After") == "" {
			t.Fatalf("otp_send_rate_limited without Retry-After: %v", r.Header)
		}
	}
	// send-otp answers 201 only once the SMTP server accepted the mail,
	// so with every answer in, the count is final.
	n := 0
	for _, m := range c.mail.srv.Messages() {
		if slices.ContainsFunc(m.To, func(to string) bool { return strings.EqualFold(to, email) }) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d mails to %s, want exactly 1", n, email)
	}
	code := c.code(t, email)
	expect(t, c.call(t, 0, "POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code}),
		200, "email_verified")
}

// rpInvariantChallengeUse is TestReplicaInvariants/ChallengeUse.
func rpInvariantChallengeUse(t *testing.T, c *rpCluster) {
	tenantID, key := c.tenant(t, "Challenges", "--rate-limit-per-minute", "0")
	w := rpEVMWallet(t)
	msg, addr, err := c.challenge(0, key, w.Address)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]string{"wallet": addr, "message": msg, "signed_bytes": w.sign(msg)}
	var reqs []rpReq
	for range 20 {
		reqs = append(reqs, rpReq{"POST", "/kyc/prepare-wallet", key, body})
	}
	rs := c.concurrent(t, reqs)
	rpWantTally(t, "20 concurrent prepare-wallet on one challenge", rs, map[string]int{
		"201 user_prepared": 1, "400 challenge_not_found": 19})
	if n := c.count(t, `SELECT count(*) FROM persons p JOIN enrollments e ON e.person_id = p.id
		WHERE p.wallet = $1 AND e.tenant_id = $2 AND e.wallet = p.wallet`, addr, tenantID); n != 1 {
		t.Fatalf("%d verified enrollments for %s, want 1", n, addr)
	}
	if n := c.count(t, `SELECT count(*) FROM challenges WHERE tenant_id = $1 AND used_at IS NOT NULL`, tenantID); n != 1 {
		t.Fatalf("%d used challenges, want 1", n)
	}
}

// rpInvariantCreateOneUser is TestReplicaInvariants/CreateOneUser.
func rpInvariantCreateOneUser(t *testing.T, c *rpCluster) {
	tenantID, key := c.tenant(t, "One user", "--rate-limit-per-minute", "0")
	addr := c.verifiedWallets(t, key, 1)[0]
	var reqs []rpReq
	for range 20 {
		reqs = append(reqs, rpReq{"POST", rpCreatePath, key, map[string]string{"wallet": addr}})
	}
	rs := c.concurrent(t, reqs)
	rpWantTally(t, "20 concurrent creates for one user", rs, map[string]int{"201 kyc_session_created": 20})
	kinds := map[string]int{}
	ids := map[string]bool{}
	for _, r := range rs {
		var d rpCreateData
		r.data(t, &d)
		kinds[d.Message]++
		ids[d.Session.SessionID] = true
	}
	if kinds[kyc.CreateNew] != 1 || kinds[kyc.CreateExisting] != 19 || len(ids) != 1 {
		t.Fatalf("creates: kinds %v, session ids %v; want one new and 19 resumed, one id", kinds, ids)
	}
	if n := c.sim.createsFor(tenantID); n != 1 {
		t.Fatalf("kycgate created %d sessions at Didit, want 1", n)
	}
	if n := c.count(t, `SELECT count(*) FROM kyc_sessions WHERE tenant_id = $1`, tenantID); n != 1 {
		t.Fatalf("%d kyc_sessions rows, want 1", n)
	}
	for id := range ids {
		if _, err := c.sim.sim.Session(id); err != nil {
			t.Fatalf("session %s unknown to the simulator: %v", id, err)
		}
	}
}

// rpInvariantQuota is TestReplicaInvariants/Quota.
func rpInvariantQuota(t *testing.T, c *rpCluster) {
	tenantID, key := c.tenant(t, "Small quota", "--quota", "5", "--rate-limit-per-minute", "0")
	addrs := c.verifiedWallets(t, key, 20)
	var reqs []rpReq
	for _, a := range addrs {
		reqs = append(reqs, rpReq{"POST", rpCreatePath, key, map[string]string{"wallet": a}})
	}
	rs := c.concurrent(t, reqs)
	rpWantTally(t, "20 users creating against a quota of 5", rs, map[string]int{
		"201 kyc_session_created": 5, "429 verify_quota_exceeded": 15})
	for _, r := range rs {
		if r.Code == 201 {
			var d rpCreateData
			r.data(t, &d)
			if d.Message != kyc.CreateNew {
				t.Fatalf("create: %s, want a new session", r.Env.Data)
			}
		}
	}
	if n := c.sim.createsFor(tenantID); n != 5 {
		t.Fatalf("kycgate created %d sessions at Didit, want 5", n)
	}
	if n := c.count(t, `SELECT count(*) FROM kyc_sessions WHERE tenant_id = $1`, tenantID); n != 5 {
		t.Fatalf("%d kyc_sessions rows, want 5", n)
	}
	if n := c.count(t, `SELECT COALESCE(SUM(used), 0) FROM quota_usage WHERE tenant_id = $1`, tenantID); n != 5 {
		t.Fatalf("quota_usage says %d used, want 5", n)
	}
}

// rpInvariantWebhooks is TestReplicaInvariants/Webhooks.
func rpInvariantWebhooks(t *testing.T, c *rpCluster) {
	_, key := c.tenant(t, "Webhooks", "--rate-limit-per-minute", "0")
	addr := c.verifiedWallets(t, key, 1)[0]
	r := c.call(t, 1, "POST", rpCreatePath, key, map[string]string{"wallet": addr})
	expect(t, r, 201, "kyc_session_created")
	var cd rpCreateData
	r.data(t, &cd)
	id := cd.Session.SessionID

	// Let the simulator's own Not Started delivery (to replica 0) land,
	// then keep its later ones to itself: the test delivers the
	// decision.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.sim.sim.WaitFor(ctx, func(ds []diditsim.Delivery) bool {
		return slices.ContainsFunc(ds, func(d diditsim.Delivery) bool { return d.SessionID == id && d.ResponseStatus == 200 })
	}); err != nil {
		t.Fatalf("Not Started webhook: %v", err)
	}
	c.sim.sim.HoldWebhooks(id)
	if err := c.sim.sim.Complete(ctx, id, diditsim.Outcome{Preset: diditsim.PresetApproved}); err != nil {
		t.Fatal(err)
	}
	decision, err := c.sim.sim.Decision(id)
	if err != nil {
		t.Fatal(err)
	}

	var version0 int
	if err := c.openDB(t).QueryRow(`SELECT version FROM kyc_sessions WHERE id = $1`, id).Scan(&version0); err != nil {
		t.Fatal(err)
	}

	now := time.Now().Unix()
	eventID, body, h := rpHook(t, c.sim.secret, id, "Approved", now, decision)
	// The same signed body, twice to every replica, all at once.
	const copies = 6
	rs := make([]reply, copies)
	errs := make([]error, copies)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range copies {
		wg.Go(func() {
			<-gate
			rs[i], errs[i] = c.pick(i).postHook(body, h)
		})
	}
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	rpWantTally(t, "duplicate webhooks on every replica", rs, map[string]int{"200 webhook_received": copies})

	var status string
	var version int
	var hasDecision bool
	row := c.openDB(t).QueryRow(`SELECT status, version, decision IS NOT NULL FROM kyc_sessions WHERE id = $1`, id)
	if err := row.Scan(&status, &version, &hasDecision); err != nil {
		t.Fatal(err)
	}
	if status != "Approved" || version != version0+1 || !hasDecision {
		t.Fatalf("after %d copies: status %q, version %d (was %d), decision stored %v; want Approved applied exactly once",
			copies, status, version, version0, hasDecision)
	}
	if n := c.count(t, `SELECT count(*) FROM webhook_events WHERE event_key = $1`, eventID); n != 1 {
		t.Fatalf("%d webhook_events rows for the event, want 1", n)
	}
	events := c.count(t, `SELECT count(*) FROM webhook_events WHERE session_id = $1`, id)

	// Older events, each to another replica: neither a final nor an open
	// status from the past changes anything.
	for i, st := range []string{"Declined", "In Progress"} {
		_, old, oh := rpHook(t, c.sim.secret, id, st, now-60, nil)
		rep, err := c.pick(i+1).postHook(old, oh)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, rep, 200, "webhook_received")
	}
	row = c.openDB(t).QueryRow(`SELECT status, version FROM kyc_sessions WHERE id = $1`, id)
	if err := row.Scan(&status, &version); err != nil {
		t.Fatal(err)
	}
	if status != "Approved" || version != version0+1 {
		t.Fatalf("after older events: status %q, version %d; want Approved, version %d", status, version, version0+1)
	}
	if n := c.count(t, `SELECT count(*) FROM webhook_events WHERE session_id = $1`, id); n != events {
		t.Fatalf("older events recorded: %d webhook_events rows, was %d", n, events)
	}
	// Every replica reports the approval.
	for i := range c.procs {
		rep := c.call(t, i, "GET", "/kyc/status?wallet="+addr, key, nil)
		expect(t, rep, 200, "kyc_status_retrieved")
		var st struct {
			Status   string `json:"status"`
			Approved bool   `json:"approved"`
		}
		rep.data(t, &st)
		if st.Status != "approved" || !st.Approved {
			t.Fatalf("replica %d status: %s", i, rep.Env.Data)
		}
	}
}

// rpInvariantRateLimit is TestReplicaInvariants/RateLimit.
func rpInvariantRateLimit(t *testing.T, c *rpCluster) {
	_, key := c.tenant(t, "Limited", "--rate-limit-per-minute", "30") // ⌈30/60⌉ = 1 per second
	var reqs []rpReq
	for range 20 {
		reqs = append(reqs, rpReq{"GET", "/config/products", key, nil})
	}
	// Start the burst just before a second boundary, so that it
	// straddles two windows: the boundary is where fixed-window
	// counters go wrong. This aligns the burst with the wall clock; it
	// synchronises nothing, and the assertions below hold wherever the
	// burst falls.
	now := time.Now()
	at := now.Truncate(time.Second).Add(time.Second - 8*time.Millisecond)
	if at.Sub(now) < 2*time.Millisecond {
		at = at.Add(time.Second)
	}
	<-time.After(time.Until(at))
	begin := time.Now()
	rs := c.concurrent(t, reqs)
	end := time.Now()
	ok, limited := 0, 0
	for _, r := range rs {
		switch r.Code {
		case 200:
			ok++
		case 429:
			limited++
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(r.Raw, &body); err != nil || body.Code != 429 || body.Message == "" ||
				r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 answer: %v %s", r.Header, r.Raw)
			}
		default:
			t.Fatalf("products: %d %s", r.Code, r.Raw)
		}
	}
	// Each replica counts in the shared database, in fixed windows of
	// the wall clock: at most one request per one-second window and 30
	// per minute window, across all replicas. Every request was counted
	// between begin and end, so it fell in one of these windows.
	seconds := int(end.Truncate(time.Second).Sub(begin.Truncate(time.Second))/time.Second) + 1
	minutes := int(end.Truncate(time.Minute).Sub(begin.Truncate(time.Minute))/time.Minute) + 1
	t.Logf("%d accepted, %d limited, over %d second window(s)", ok, limited, seconds)
	if ok > seconds || ok > 30*minutes || ok < 1 {
		t.Fatalf("%d requests accepted over %d one-second window(s): the shared limit is 1 per second, 30 per minute", ok, seconds)
	}
	if seconds < len(reqs) && limited == 0 {
		t.Fatal("no request was limited")
	}
}

// rpLoad is a bounded mixed load whose acknowledged answers are recorded
// for checking against the database afterwards.
type rpLoad struct {
	t         *testing.T
	c         *rpCluster
	key       string
	victim    int
	killAfter int

	next    atomic.Uint64
	killNow chan struct{} // closed at the killAfter-th acknowledgement
	killing atomic.Bool   // set just before SIGKILL: the victim's failures are expected from then on
	dead    atomic.Bool   // set just after: no more requests go to the victim
	killed  chan struct{} // closed once SIGKILL was sent
	lost    atomic.Int64  // requests that died with the victim
	mailCtx context.Context

	mu            sync.Mutex
	acks          int
	acksAfterKill int
	prepared      []string          // emails answered 201 user_prepared
	verified      []string          // emails answered 200 email_verified
	wallets       []string          // wallets answered 201 user_prepared by prepare-wallet
	sessions      map[string]string // session id → "email:…" or "wallet:…"
}

// send sends one request to the next replica still alive. ok is false when
// the request died with the victim (not acknowledged: nothing to check) or
// a live replica failed, which is reported.
func (l *rpLoad) send(method, path string, body any) (reply, bool) {
	for {
		i := int(l.next.Add(1) % uint64(len(l.c.procs)))
		if i == l.victim && l.dead.Load() {
			continue
		}
		r, err := l.c.procs[i].try(method, path, l.key, body)
		if err != nil {
			if i == l.victim && l.killing.Load() {
				l.lost.Add(1)
				return r, false
			}
			l.t.Errorf("%s %s on %s (alive): %v", method, path, l.c.procs[i].name, err)
			return r, false
		}
		return r, true
	}
}

// want checks an answer and counts it as acknowledged; the kill comes
// after killAfter acknowledgements.
func (l *rpLoad) want(r reply, code int, status string) bool {
	if r.Code != code || r.Env.Status != status {
		l.t.Errorf("got %d %q, want %d %q: %s", r.Code, r.Env.Status, code, status, r.Raw)
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks++
	if l.acks == l.killAfter {
		close(l.killNow)
	}
	if l.killing.Load() {
		l.acksAfterKill++
	}
	return true
}

// killer waits for the killAfter-th acknowledgement, then for a request
// to have been written to the victim, and kills the victim with SIGKILL
// while that request is in its hands.
func (l *rpLoad) killer(loadDone <-chan struct{}) {
	victim := l.c.procs[l.victim]
	select {
	case <-l.killNow:
	case <-loadDone:
		return
	}
	victim.armed.Store(true)
	select {
	case <-victim.wrote:
	case <-loadDone:
	}
	l.killing.Store(true)
	victim.kill(l.t)
	l.dead.Store(true)
	close(l.killed)
}

func (l *rpLoad) record(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

func (l *rpLoad) createFor(field, value string) {
	r, ok := l.send("POST", rpCreatePath, map[string]string{field: value})
	if !ok || !l.want(r, 201, "kyc_session_created") {
		return
	}
	var d rpCreateData
	if err := json.Unmarshal(r.Env.Data, &d); err != nil || d.Message != kyc.CreateNew || d.Session.SessionID == "" {
		l.t.Errorf("create for %s: %s", value, r.Env.Data)
		return
	}
	l.record(func() { l.sessions[d.Session.SessionID] = field + ":" + value })
}

// emailFlow: prepare → send-otp → (mail) → verify-otp → create.
func (l *rpLoad) emailFlow(n int) {
	email := fmt.Sprintf("load%d-%s@example.com", n, randomHex(3))
	r, ok := l.send("POST", "/kyc/prepare", map[string]string{"email": email})
	if !ok || !l.want(r, 201, "user_prepared") {
		return
	}
	l.record(func() { l.prepared = append(l.prepared, email) })
	r, ok = l.send("POST", "/security/email/send-otp", map[string]string{"email": email})
	if !ok || !l.want(r, 201, "otp_sent") {
		return
	}
	msg, err := l.c.mail.srv.WaitFor(l.mailCtx, email)
	if err != nil {
		l.t.Errorf("otp_sent to %s but no mail: %v", email, err)
		return
	}
	code, err := msg.Code()
	if err != nil {
		l.t.Errorf("mail to %s: %v", email, err)
		return
	}
	r, ok = l.send("POST", "/security/email/verify-otp", map[string]string{"email": email, "code": code})
	if !ok || !l.want(r, 200, "email_verified") {
		return
	}
	l.record(func() { l.verified = append(l.verified, email) })
	l.createFor("email", email)
}

// walletFlow: challenge → prepare-wallet → create.
func (l *rpLoad) walletFlow(w rpWallet) {
	r, ok := l.send("POST", "/security/wallet/challenge", map[string]string{"wallet": w.Address})
	if !ok || !l.want(r, 201, "challenge_created") {
		return
	}
	var ch struct{ Message, Wallet string }
	if err := json.Unmarshal(r.Env.Data, &ch); err != nil {
		l.t.Errorf("challenge data %s: %v", r.Env.Data, err)
		return
	}
	r, ok = l.send("POST", "/kyc/prepare-wallet", map[string]string{
		"wallet": ch.Wallet, "message": ch.Message, "signed_bytes": w.sign(ch.Message)})
	if !ok || !l.want(r, 201, "user_prepared") {
		return
	}
	l.record(func() { l.wallets = append(l.wallets, ch.Wallet) })
	l.createFor("wallet", ch.Wallet)
}

// TestReplicaSIGKILL kills one of three replicas with SIGKILL in the middle
// of a mixed load spread over all three, lets the load finish on the other
// two, and then reads the database: everything that was acknowledged is
// there, and the survivors still serve.
func TestReplicaSIGKILL(t *testing.T) {
	t.Parallel()
	c := rpNewCluster(t)
	c.start(t, 3)
	tenantID, key := c.tenant(t, "Load", "--rate-limit-per-minute", "0")

	const emailUsers, walletUsers, workers = 10, 10, 4
	// 10×4 + 10×3 = 70 acknowledgements if nothing is lost: the kill
	// comes early enough that most of the load runs after it.
	mailCtx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	l := &rpLoad{t: t, c: c, key: key, victim: 2, killAfter: 20, killNow: make(chan struct{}),
		killed: make(chan struct{}), mailCtx: mailCtx, sessions: map[string]string{}}
	wallets := make([]rpWallet, walletUsers)
	for i := range wallets {
		if i%2 == 0 {
			wallets[i] = rpEVMWallet(t)
		} else {
			wallets[i] = rpSolanaWallet(t)
		}
	}
	loadDone, killerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killerDone)
		l.killer(loadDone)
	}()
	jobs := make(chan func())
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for job := range jobs {
				job()
			}
		})
	}
	for i := range max(emailUsers, walletUsers) {
		if i < emailUsers {
			jobs <- func() { l.emailFlow(i) }
		}
		if i < walletUsers {
			jobs <- func() { l.walletFlow(wallets[i]) }
		}
	}
	close(jobs)
	wg.Wait()
	close(loadDone)
	<-killerDone

	select {
	case <-l.killed:
	default:
		t.Fatalf("the load ended after %d acknowledgements, before the kill at %d", l.acks, l.killAfter)
	}
	victim := c.procs[l.victim]
	select {
	case <-victim.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still running after SIGKILL", victim.name)
	}
	var exit *exec.ExitError
	if !errors.As(victim.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %v, want killed by SIGKILL", victim.name, victim.err)
	}
	t.Logf("%d acknowledged (%d after the kill), %d requests died with %s; %d prepared, %d verified, %d wallets, %d sessions",
		l.acks, l.acksAfterKill, l.lost.Load(), victim.name, len(l.prepared), len(l.verified), len(l.wallets), len(l.sessions))
	if l.acksAfterKill == 0 {
		t.Fatal("no request was acknowledged after the kill: the load did not go on on the survivors")
	}
	if t.Failed() {
		return
	}

	db := c.openDB(t)
	for _, email := range l.prepared {
		if n := c.count(t, `SELECT count(*) FROM persons p JOIN enrollments e ON e.person_id = p.id
			WHERE p.email = $1 AND e.tenant_id = $2 AND e.email = p.email`, email, tenantID); n != 1 {
			t.Errorf("prepare of %s was acknowledged, but %d person+enrollment rows", email, n)
		}
	}
	for _, email := range l.verified {
		var v bool
		err := db.QueryRow(`SELECT e.email_verified FROM persons p JOIN enrollments e ON e.person_id = p.id
			WHERE p.email = $1 AND e.tenant_id = $2`, email, tenantID).Scan(&v)
		if err != nil || !v {
			t.Errorf("email_verified for %s was acknowledged, but the enrollment says %v (%v)", email, v, err)
		}
	}
	for _, w := range l.wallets {
		if n := c.count(t, `SELECT count(*) FROM persons p JOIN enrollments e ON e.person_id = p.id
			WHERE p.wallet = $1 AND e.tenant_id = $2 AND e.wallet = p.wallet`, w, tenantID); n != 1 {
			t.Errorf("prepare-wallet for %s was acknowledged, but %d enrollments hold the verified wallet", w, n)
		}
	}
	for id, who := range l.sessions {
		var email, wal sql.NullString
		err := db.QueryRow(`SELECT p.email, p.wallet FROM kyc_sessions s JOIN persons p ON p.id = s.person_id
			WHERE s.id = $1 AND s.tenant_id = $2`, id, tenantID).Scan(&email, &wal)
		field, value, _ := strings.Cut(who, ":")
		switch {
		case err != nil:
			t.Errorf("session %s for %s was acknowledged, but kyc_sessions has no row: %v", id, who, err)
		case field == "email" && email.String != value, field == "wallet" && wal.String != value:
			t.Errorf("session %s for %s belongs to %v / %v", id, who, email, wal)
		}
		if _, err := c.sim.sim.Session(id); err != nil {
			t.Errorf("session %s for %s unknown to the simulator: %v", id, who, err)
		}
	}
	rows, err := db.Query(`SELECT person_id, status FROM kyc_sessions`)
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]int{}
	for rows.Next() {
		var person string
		var status kyc.DiditStatus
		if err := rows.Scan(&person, &status); err != nil {
			t.Fatal(err)
		}
		if kyc.Open(status) {
			open[person]++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for person, n := range open {
		if n > 1 {
			t.Errorf("person %s has %d open sessions", person, n)
		}
	}
	for i, p := range c.procs {
		if i == l.victim {
			continue
		}
		if r := c.call(t, i, "GET", "/readyz", "", nil); r.Code != 200 {
			t.Errorf("survivor %s /readyz: %d %s", p.name, r.Code, r.Raw)
		}
	}
}

// TestReplicaMigrateCommand: `kycgate migrate` run on its own against a
// fresh schema applies every migration once; a replica started afterwards,
// and migrate run again, apply nothing more.
func TestReplicaMigrateCommand(t *testing.T) {
	t.Parallel()
	c := rpNewCluster(t)
	if n := c.count(t, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`); n != 0 {
		t.Fatal("the schema is not fresh")
	}
	if out := c.command(t, "migrate"); strings.TrimSpace(out) != "migrations applied" {
		t.Fatalf("kycgate migrate printed %q", out)
	}
	before := c.checkMigrations(t)

	c.start(t, 1)
	after := c.checkMigrations(t)
	if !slices.Equal(before, after) {
		t.Fatalf("the replica re-ran migrations: schema_migrations %v, was %v", after, before)
	}
	if out := c.command(t, "migrate"); strings.TrimSpace(out) != "migrations applied" {
		t.Fatalf("kycgate migrate (again) printed %q", out)
	}
	if again := c.checkMigrations(t); !slices.Equal(before, again) {
		t.Fatalf("migrate re-ran migrations: schema_migrations %v, was %v", again, before)
	}

	// The replica serves on the migrated schema.
	if r := c.call(t, 0, "GET", "/readyz", "", nil); r.Code != 200 {
		t.Fatalf("/readyz: %d %s", r.Code, r.Raw)
	}
	_, key := c.tenant(t, "After migrate", "--rate-limit-per-minute", "0")
	expect(t, c.call(t, 0, "POST", "/kyc/prepare", key, map[string]string{"email": "migrated@example.com"}), 201, "user_prepared")
}

// TestCrashLeftovers kills a replica with SIGKILL while it holds a
// session-creation claim with its quota unit (Didit is slow to answer) and
// while it waits for the mail server to accept a code. Afterwards the unit
// comes back by itself (quota used equals sessions stored, with no retry
// by the user), and the user whose code was never mailed gets a new one as
// soon as the dead send's lease lapses, not after the minute-long gap.
func TestCrashLeftovers(t *testing.T) {
	c := rpNewCluster(t)
	// Sweeps every second; the victim's requests (and so its send lease)
	// last at most 5 s.
	c.env = append(c.env, "KYCGATE_RECONCILE_INTERVAL=4s", "KYCGATE_REQUEST_TIMEOUT=5s")
	c.start(t, 2)
	tenantID, key := c.tenant(t, "Crash", "--quota", "10", "--rate-limit-per-minute", "0")
	const victim = 1
	ann, bob := "ann-"+randomHex(3)+"@example.com", "bob-"+randomHex(3)+"@example.com"
	code := c.sendCode(t, key, ann)
	expect(t, c.call(t, 0, "POST", "/security/email/verify-otp", key, map[string]string{"email": ann, "code": code}), 200, "email_verified")
	expect(t, c.call(t, 0, "POST", "/kyc/prepare", key, map[string]string{"email": bob}), 201, "user_prepared")

	// Didit holds the victim's create; the mail server holds its code.
	if err := c.sim.sim.AddFault(diditsim.Fault{Kind: diditsim.FaultLatency, PathPrefix: "/v3/session/",
		Method: "POST", Latency: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	inData, release := make(chan struct{}, 1), make(chan struct{})
	c.mail.srv.SetDataHook(func(ctx context.Context) error {
		inData <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return errors.New("the sender died") // drops the connection: nothing kept
	})
	v := c.procs[victim]
	go func() { _, _ = v.try("POST", "/kyc/create/verify_public_kyc", key, map[string]string{"email": ann}) }()
	go func() { _, _ = v.try("POST", "/security/email/send-otp", key, map[string]string{"email": bob}) }()
	<-inData
	for len(c.sim.sim.Faults()) > 0 { // the create reached Didit
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.count(t, `SELECT COALESCE(SUM(used), 0) FROM quota_usage WHERE tenant_id = $1`, tenantID); n != 1 {
		t.Fatalf("before the kill quota_usage says %d, want the create's 1", n)
	}
	v.kill(t)
	<-v.done
	c.mail.srv.SetDataHook(nil)
	close(release)

	// Bob asks again on the survivor: at first the dead send still counts
	// (it may have been delivered), but only for its lease, not the gap.
	r := c.call(t, 0, "POST", "/security/email/send-otp", key, map[string]string{"email": bob})
	if r.Code == 429 {
		wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || wait > 10 {
			t.Fatalf("send-otp after the crash: Retry-After %q, want at most the 5 s + 5 s lease", r.Header.Get("Retry-After"))
		}
		deadline := time.Now().Add(30 * time.Second)
		for r.Code == 429 && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond) // polling the lease's end
			r = c.call(t, 0, "POST", "/security/email/send-otp", key, map[string]string{"email": bob})
		}
	}
	expect(t, r, 201, "otp_sent")
	expect(t, c.call(t, 0, "POST", "/security/email/verify-otp", key, map[string]string{"email": bob, "code": c.code(t, bob)}), 200, "email_verified")

	// The dead create's unit comes back without anyone retrying.
	deadline := time.Now().Add(60 * time.Second)
	for {
		used := c.count(t, `SELECT COALESCE(SUM(used), 0) FROM quota_usage WHERE tenant_id = $1`, tenantID)
		sessions := c.count(t, `SELECT count(*) FROM kyc_sessions WHERE tenant_id = $1`, tenantID)
		if used == sessions {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the kill quota_usage says %d for %d sessions", used, sessions)
		}
		time.Sleep(250 * time.Millisecond) // polling the sweep
	}
	if n := c.count(t, `SELECT count(*) FROM session_claims`); n != 0 {
		t.Errorf("%d claims left after the sweep", n)
	}
	// And Ann can create her session: one session, one unit.
	expect(t, c.call(t, 0, "POST", "/kyc/create/verify_public_kyc", key, map[string]string{"email": ann}), 201, "kyc_session_created")
	used := c.count(t, `SELECT COALESCE(SUM(used), 0) FROM quota_usage WHERE tenant_id = $1`, tenantID)
	sessions := c.count(t, `SELECT count(*) FROM kyc_sessions WHERE tenant_id = $1`, tenantID)
	if used != 1 || sessions != 1 {
		t.Errorf("after Ann's create: quota_usage %d, sessions %d; want 1, 1", used, sessions)
	}
}
