// Command kycload is kycgate's load harness: it starts kycgate (a built
// binary, as a subprocess) on SQLite and on PostgreSQL, an SMTP sink and the
// Didit simulator in this process, and a baseline server (this binary again,
// `kycload baseline`) that does the same database work with nothing around
// it; then it drives every main endpoint of both with a closed-loop load
// generator, and kycgate again at a fixed rate of half its peak, and prints
// requests/s and p50/p99/p99.9 latency per endpoint and engine, the ratio to
// the baseline, the email round trip, and a 1,000,000-user scale run.
//
// Everything listens on 127.0.0.1. Every phase has a fixed duration and a
// bounded fixture pool. See BENCHMARKS.md; run it with scripts/bench.
//
// -only webhook-flood runs, instead, forged webhooks against kycgate while
// an authenticated endpoint is measured (see flood.go); it is never part
// of the default run.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

type options struct {
	kycgate     string
	engines     []string
	only        []string
	workers     int
	duration    time.Duration
	openDur     time.Duration
	warmup      time.Duration
	pool        int
	emailDur    time.Duration
	scaleUsers  int
	scaleDur    time.Duration
	profileDir  string
	mdOut       string
	jsonOut     string
	keep        bool
	skipEmail   bool
	skipEngines bool
	kycgateEnv  []string // extra KYCGATE_* settings for every kycgate
	rateLimit   int      // the tenant's requests per minute; 0 = no limiter

	// webhook-flood (flood.go)
	floodWorkers  int
	floodSize     int
	floodShape    string
	floodDuration time.Duration
	floodQuiet    time.Duration
	floodRequests int
	floodRate     float64
}

type harness struct {
	opt        options
	dir        string
	kycgateBin string
	self       string
	secret     string
	hookSecret string
	diditKey   string
	workflow   string
	simURL     string
	sim        atomic.Pointer[diditsim.Sim]
	sink       *sink
	addrs      []string // EVM addresses for challenge requests
	pgBase     *url.URL
	pgAdmin    *sql.DB
	tagSeq     int

	Results []Result      `json:"results"`
	Email   []EmailResult `json:"email_round_trip"`
	Scale   []ScaleResult `json:"scale"`
	Flood   []FloodResult `json:"webhook_flood,omitempty"`
	Servers []ServerInfo  `json:"servers"`
	Machine Machine       `json:"machine"`
}

// ServerInfo is what we learnt about a kycgate process after its run.
type ServerInfo struct {
	Engine    string `json:"engine"`
	RSSKiB    int64  `json:"rss_kib"`
	HWMKiB    int64  `json:"peak_rss_kib"`
	LogErrors int    `json:"log_errors"`
	FirstErr  string `json:"first_log_error,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "flood" {
		if err := floodMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "flood:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		if err := baselineMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var engines, only string
	flag.StringVar(&o.kycgate, "kycgate", "", "kycgate binary (default: go build ./cmd/kycgate into a temporary folder)")
	flag.StringVar(&engines, "engines", "sqlite,postgres", "engines to run: sqlite, postgres (PostgreSQL from PG* variables, e.g. under pg_virtualenv)")
	flag.StringVar(&only, "only", "", "comma-separated endpoints to run (default all): "+scenarioNames())
	flag.IntVar(&o.workers, "workers", 16, "closed-loop workers (concurrent requests)")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "measured time per endpoint, target and engine (closed loop)")
	flag.DurationVar(&o.openDur, "open-duration", 4*time.Second, "measured time per endpoint and engine at half the peak rate (open loop)")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unrecorded warm-up before each closed-loop phase")
	flag.IntVar(&o.pool, "pool", 40000, "fixtures per closed-loop phase for endpoints that use one up per request")
	flag.DurationVar(&o.emailDur, "email-duration", 5*time.Second, "time per concurrency of the email round trip (SQLite)")
	flag.IntVar(&o.scaleUsers, "scale-users", 1_000_000, "enrolled users in the scale run (0 skips it)")
	flag.DurationVar(&o.scaleDur, "scale-duration", 3*time.Second, "time per measurement in the scale run")
	flag.StringVar(&o.profileDir, "profile", "", "write kycgate CPU profiles (one per closed-loop phase) into this folder")
	flag.StringVar(&o.mdOut, "md", "", "also write the results as Markdown tables to this file")
	flag.StringVar(&o.jsonOut, "json", "", "also write every result as JSON to this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (databases, server logs)")
	flag.BoolVar(&o.skipEmail, "skip-email", false, "skip the email round trip")
	flag.BoolVar(&o.skipEngines, "skip-endpoints", false, "skip the per-endpoint runs (email and scale only)")
	var kgEnv string
	flag.IntVar(&o.rateLimit, "rate-limit", 0, "the load tenant's --rate-limit-per-minute: 0 turns the limiter off, as the baseline has none; a limit too high to reach measures what counting costs")
	flag.IntVar(&o.floodWorkers, "flood-workers", 128, floodScenario+": concurrent forged webhook posts")
	flag.IntVar(&o.floodSize, "flood-size", 1<<20, floodScenario+": bytes per forged webhook body")
	flag.StringVar(&o.floodShape, "flood-shape", "objects", floodScenario+": what the body is made of: objects, keys, nested, escapes, floats")
	flag.DurationVar(&o.floodDuration, "flood-duration", 10*time.Second, floodScenario+": how long the flood lasts")
	flag.DurationVar(&o.floodQuiet, "flood-quiet", 3*time.Second, floodScenario+": status measured alone before the flood, for comparison")
	flag.IntVar(&o.floodRequests, "flood-requests", 50000, floodScenario+": at most this many forged posts")
	flag.Float64Var(&o.floodRate, "flood-rate", 100, floodScenario+": status requests per second during the measurement")
	flag.StringVar(&kgEnv, "kycgate-env", "", "comma-separated NAME=value settings added to every kycgate's environment after the harness's own (so they override them; values cannot contain commas), e.g. KYCGATE_LOG_LEVEL=warn")
	flag.Parse()
	if path := os.Getenv("KYCLOAD_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		traceOpen = f
	}
	o.engines = splitList(engines)
	o.kycgateEnv = splitList(kgEnv)
	o.only = splitList(only)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	h, err := newHarness(ctx, o)
	if err == nil {
		err = h.runAll(ctx)
		h.close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kycload:", err)
		os.Exit(1)
	}
	fmt.Printf("\nkycload finished in %s\n", time.Since(start).Round(time.Second))
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func scenarioNames() string {
	var n []string
	for _, s := range scenarios {
		n = append(n, s.name)
	}
	return strings.Join(n, ",") + "; and, only when named, " + floodScenario
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newHarness(ctx context.Context, o options) (*harness, error) {
	for _, name := range o.only {
		if name != floodScenario && !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.name == name }) {
			return nil, fmt.Errorf("unknown endpoint %q (have %s)", name, scenarioNames())
		}
	}
	if slices.Contains(o.only, floodScenario) && (o.floodWorkers < 1 || o.floodSize < 2 || o.floodRequests < 1 || o.floodRate <= 0 || o.floodDuration <= 0) {
		return nil, fmt.Errorf("%s: -flood-workers, -flood-size, -flood-requests, -flood-rate and -flood-duration must be positive", floodScenario)
	}
	dir, err := os.MkdirTemp("", "kycload-")
	if err != nil {
		return nil, err
	}
	h := &harness{opt: o, dir: dir, secret: randHex(32), hookSecret: randHex(24), diditKey: randHex(16),
		workflow: "7c1e8f52-3b6a-4d2e-9f10-2a5b8c9d0e1f"}
	h.self, err = os.Executable()
	if err != nil {
		return nil, err
	}
	h.kycgateBin = o.kycgate
	if h.kycgateBin == "" {
		fmt.Println("building kycgate …")
		if h.kycgateBin, err = buildKycgate(ctx, dir); err != nil {
			return nil, err
		}
	}
	h.Machine = machine()
	if slices.Contains(o.engines, "postgres") {
		if h.pgBase, err = pgBaseURL(); err != nil {
			return nil, err
		}
		if h.pgAdmin, err = sql.Open("pgx", h.pgBase.String()); err != nil {
			return nil, err
		}
		if err := h.pgAdmin.PingContext(ctx); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		h.Machine.Postgres = pgVersion(ctx, h.pgAdmin)
	}

	if h.sink, err = startSink(); err != nil {
		return nil, err
	}
	// The Didit simulator, with Didit's own rate limits lifted (they would
	// cap create-session at 600 a minute) and no webhook destinations (the
	// webhook endpoint is driven by the harness itself).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h.simURL = "http://" + ln.Addr().String()
	if err := h.freshSim(); err != nil {
		return nil, err
	}
	simHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.sim.Load().Handler().ServeHTTP(w, r) })
	go (&http.Server{Handler: simHandler, ReadHeaderTimeout: 5 * time.Second}).Serve(ln)

	for range 1000 {
		_, a := newEVMWallet()
		h.addrs = append(h.addrs, a)
	}
	fmt.Printf("kycload: %d CPUs (%s), Go %s; work folder %s\n", runtime.NumCPU(), h.Machine.CPU, runtime.Version(), dir)
	return h, nil
}

// freshSim replaces the Didit simulator with an empty one (same key, same
// workflow, same address). Its create call scans every session it holds
// (looking for one to reuse), so each create-session phase starts with an
// empty one to be measured on equal terms.
func (h *harness) freshSim() error {
	cfg := diditsim.DefaultConfig()
	cfg.APIKey, cfg.WorkflowIDs, cfg.BaseURL = h.diditKey, []string{h.workflow}, h.simURL
	cfg.Logger = slog.New(slog.DiscardHandler)
	sim, err := diditsim.New(cfg)
	if err != nil {
		return err
	}
	sim.SetRateLimits(diditsim.RateLimits{})
	if old := h.sim.Swap(sim); old != nil {
		old.Close()
	}
	return nil
}

func (h *harness) close() {
	if h.sink != nil {
		h.sink.Close()
	}
	if sim := h.sim.Load(); sim != nil {
		sim.Close()
	}
	if h.pgAdmin != nil {
		h.pgAdmin.Close()
	}
	if !h.opt.keep {
		os.RemoveAll(h.dir)
	} else {
		fmt.Println("kept", h.dir)
	}
}

// pgBaseURL builds a URL from the libpq variables (pg_virtualenv sets them).
func pgBaseURL() (*url.URL, error) {
	if s := os.Getenv("KYCLOAD_POSTGRES_URL"); s != "" {
		return url.Parse(s)
	}
	if os.Getenv("PGHOST") == "" && os.Getenv("PGPORT") == "" {
		return nil, errors.New("postgres: no PGHOST/PGPORT (run under pg_virtualenv, e.g. scripts/bench, set KYCLOAD_POSTGRES_URL, or pass -engines sqlite)")
	}
	v := url.Values{}
	for _, kv := range [][2]string{{"PGHOST", "host"}, {"PGPORT", "port"}, {"PGUSER", "user"},
		{"PGPASSWORD", "password"}, {"PGDATABASE", "dbname"}, {"PGSSLMODE", "sslmode"}} {
		if s := os.Getenv(kv[0]); s != "" {
			v.Set(kv[1], s)
		}
	}
	return &url.URL{Scheme: "postgres", Path: "/", RawQuery: v.Encode()}, nil
}

func pgVersion(ctx context.Context, db *sql.DB) string {
	var v string
	db.QueryRowContext(ctx, "SHOW server_version").Scan(&v)
	return v
}

// newDatabase makes a fresh, empty database of the engine.
func (h *harness) newDatabase(ctx context.Context, engineName, label string) (string, error) {
	if engineName == "sqlite" {
		return "sqlite:" + filepath.Join(h.dir, label+".db"), nil
	}
	name := "kycload_" + label + "_" + randHex(4)
	if _, err := h.pgAdmin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	u := *h.pgBase
	v := u.Query()
	v.Set("dbname", name)
	u.RawQuery = v.Encode()
	return u.String(), nil
}

// kycgateEnv is how every kycgate of the run is configured.
func (h *harness) kycgateEnv(dbURL string, port int) []string {
	return append([]string{
		"KYCGATE_DATABASE_URL=" + dbURL,
		"KYCGATE_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"KYCGATE_ADMIN_ADDR=127.0.0.1:0", // replicas side by side: one admin port each
		"KYCGATE_SECRET=" + h.secret,
		"KYCGATE_SMTP_URL=smtp://" + h.sink.Addr(),
		"KYCGATE_DIDIT_URL=" + h.simURL,
		"KYCGATE_DIDIT_API_KEY=" + h.diditKey,
		"KYCGATE_DIDIT_WORKFLOW_ID=" + h.workflow,
		"KYCGATE_DIDIT_WEBHOOK_SECRET=" + h.hookSecret,
		// The reconciler polls Didit for open sessions with no news for this
		// long; the run is shorter, so it stays out of the measurements.
		"KYCGATE_RECONCILE_INTERVAL=1h",
		"KYCGATE_LOG_LEVEL=info",
	}, h.opt.kycgateEnv...)
}

// newEngine creates a database, migrates it with `kycgate migrate`, and
// creates a tenant with no rate limit and no quota.
// statusEngine is a fresh engine holding the status phase's users, each
// with an approved session.
func (h *harness) statusEngine(ctx context.Context, engineName, label string) (*engine, error) {
	e, err := h.newEngine(ctx, engineName, label)
	if err != nil {
		return nil, err
	}
	if err := e.persons(ctx, "st", statusUsers, true); err != nil {
		e.db.Close()
		return nil, err
	}
	if err := e.sessions(ctx, "st", statusUsers, "Approved"); err != nil {
		e.db.Close()
		return nil, err
	}
	return e, nil
}

func (h *harness) newEngine(ctx context.Context, engineName, label string) (*engine, error) {
	dbURL, err := h.newDatabase(ctx, engineName, label)
	if err != nil {
		return nil, err
	}
	e := &engine{name: engineName, url: dbURL}
	env := append(os.Environ(), h.kycgateEnv(dbURL, 0)...)
	cmd := exec.CommandContext(ctx, h.kycgateBin, "migrate")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kycgate migrate: %v: %s", err, out)
	}
	cmd = exec.CommandContext(ctx, h.kycgateBin, "tenant", "create", "--name", "kycload", "--quota", "0", "--rate-limit-per-minute", strconv.Itoa(h.opt.rateLimit), "--json")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kycgate tenant create: %v", err)
	}
	var t struct {
		TenantID string `json:"tenant_id"`
		APIKey   string `json:"api_key"`
	}
	if err := json.Unmarshal(out, &t); err != nil {
		return nil, fmt.Errorf("kycgate tenant create: %v: %s", err, out)
	}
	e.tenantID, e.apiKey = t.TenantID, t.APIKey
	if e.db, err = openFixtureDB(engineName, dbURL); err != nil {
		return nil, err
	}
	return e, nil
}

// startKycgate runs `kycgate serve` on e.
func (h *harness) startKycgate(ctx context.Context, e *engine, label string, extraEnv ...string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	env := append(h.kycgateEnv(e.url, port), extraEnv...)
	pprofAddr := ""
	if h.opt.profileDir != "" {
		pp, err := freePort()
		if err != nil {
			return nil, "", err
		}
		pprofAddr = "127.0.0.1:" + strconv.Itoa(pp)
		env = append(env, "KYCGATE_PPROF_ADDR="+pprofAddr)
	}
	p, err := startProc(ctx, "kycgate", h.kycgateBin, []string{"serve"}, env, port, filepath.Join(h.dir, "kycgate-"+label+".log"), "/readyz")
	return p, pprofAddr, err
}

func (h *harness) startBaseline(ctx context.Context, e *engine, label string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	pprofAddr := ""
	if h.opt.profileDir != "" {
		pp, err := freePort()
		if err != nil {
			return nil, "", err
		}
		pprofAddr = "127.0.0.1:" + strconv.Itoa(pp)
	}
	args := []string{"baseline", "-addr", "127.0.0.1:" + strconv.Itoa(port), "-db", e.url, "-tenant", e.tenantID,
		"-secret", h.secret, "-hook-secret", h.hookSecret, "-smtp", h.sink.Addr(),
		"-didit", h.simURL, "-didit-key", h.diditKey, "-workflow", h.workflow, "-pprof", pprofAddr}
	p, err := startProc(ctx, "baseline", h.self, args, nil, port, filepath.Join(h.dir, "baseline-"+label+".log"), "/readyz")
	return p, pprofAddr, err
}

func (h *harness) tag(prefix string) string {
	h.tagSeq++
	return fmt.Sprintf("%s%d", prefix, h.tagSeq)
}

func (h *harness) runAll(ctx context.Context) error {
	if !h.opt.skipEngines && slices.ContainsFunc(scenarios, func(s scenario) bool { return h.selected(s.name) }) {
		for _, name := range h.opt.engines {
			if err := h.runEngine(ctx, name); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if slices.Contains(h.opt.only, floodScenario) {
		if err := h.runWebhookFlood(ctx); err != nil {
			return fmt.Errorf("%s: %w", floodScenario, err)
		}
	}
	if !h.opt.skipEmail {
		if err := h.runEmail(ctx); err != nil {
			return fmt.Errorf("email round trip: %w", err)
		}
	}
	if h.opt.scaleUsers > 0 {
		if err := h.runScale(ctx); err != nil {
			return fmt.Errorf("scale run: %w", err)
		}
	}
	h.Machine.LoadEnd = loadavg()
	h.report(os.Stdout)
	if h.opt.mdOut != "" {
		f, err := os.Create(h.opt.mdOut)
		if err != nil {
			return err
		}
		h.markdown(f)
		f.Close()
	}
	if h.opt.jsonOut != "" {
		b, _ := json.MarshalIndent(h, "", "  ")
		if err := os.WriteFile(h.opt.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) selected(name string) bool {
	return len(h.opt.only) == 0 || slices.Contains(h.opt.only, name)
}

// target is one server under load: kycgate or the baseline.
type target struct {
	name  string // "kycgate" or "baseline", the report's column
	p     *proc
	c     *http.Client
	key   string // the API key its requests carry ("" for the baseline)
	pprof string // its profiling address
}

// runEngine measures every endpoint on one engine: kycgate and the
// baseline closed loop, then kycgate at half its peak, open loop.
func (h *harness) runEngine(ctx context.Context, engineName string) error {
	fmt.Printf("\n== %s: setting up\n", engineName)
	e, err := h.statusEngine(ctx, engineName, "endpoints")
	if err != nil {
		return err
	}
	defer e.db.Close()
	kg, pprofAddr, err := h.startKycgate(ctx, e, engineName)
	if err != nil {
		return err
	}
	defer kg.stop()
	bl, blPprof, err := h.startBaseline(ctx, e, engineName)
	if err != nil {
		return err
	}
	defer bl.stop()
	k := target{"kycgate", kg, newClient(), e.apiKey, pprofAddr}
	b := target{"baseline", bl, newClient(), "", blPprof}

	for _, sc := range scenarios {
		if !h.selected(sc.name) || ctx.Err() != nil {
			continue
		}
		if err := h.runScenario(ctx, e, engineName, sc, k, b); err != nil {
			return err
		}
	}
	rss, hwm := kg.memory()
	n, first := countErrors(kg.log)
	h.Servers = append(h.Servers, ServerInfo{Engine: engineName, RSSKiB: rss, HWMKiB: hwm, LogErrors: n, FirstErr: first})
	if h.selected("status") && ctx.Err() == nil {
		return h.runAuthCache(ctx, e, k.c)
	}
	return nil
}

// runScenario measures one endpoint: kycgate and the baseline closed loop,
// then both at a fixed rate of half kycgate's measured peak: the control
// that shows how much of the latency tail is the machine's (other
// processes, the load generator itself) rather than kycgate's.
func (h *harness) runScenario(ctx context.Context, e *engine, engineName string, sc scenario, k, b target) error {
	poolN := h.opt.pool
	if sc.name == "prepare-wallet" {
		poolN = max(1, poolN/4) // signing fixtures is the slow part of setup
	}
	closed := func(c *http.Client, gen Gen, p *proc) Result {
		return closedLoop(ctx, c, gen, sc.expect, h.opt.workers, h.opt.warmup, h.opt.duration, p)
	}
	rk, err := h.measure(ctx, e, engineName, sc, k, "k", poolN, "", h.opt.warmup+h.opt.duration, closed)
	if err != nil {
		return err
	}
	if _, err := h.measure(ctx, e, engineName, sc, b, "b", poolN, "-baseline", h.opt.warmup+h.opt.duration, closed); err != nil {
		return err
	}
	if rk.RPS <= 0 || h.opt.openDur <= 0 {
		return nil
	}
	rate := rk.RPS / 2
	n := int(math.Ceil(rate*(h.opt.warmup+h.opt.openDur).Seconds()*1.05)) + 100
	open := func(c *http.Client, gen Gen, p *proc) Result {
		return openLoop(ctx, c, gen, sc.expect, rate, h.opt.warmup, h.opt.openDur, p)
	}
	if _, err := h.measure(ctx, e, engineName, sc, k, "o", n, "-open", h.opt.openDur, open); err != nil {
		return err
	}
	_, err = h.measure(ctx, e, engineName, sc, b, "c", n, "-baseline-open", h.opt.openDur, open)
	return err
}

// measure runs one loop against t on a fresh simulator and n fresh
// fixtures (tagged with prefix so runs never share them), profiled for
// span under the scenario's name plus suffix, and records the result.
func (h *harness) measure(ctx context.Context, e *engine, engineName string, sc scenario, t target, prefix string, n int,
	suffix string, span time.Duration, loop func(*http.Client, Gen, *proc) Result) (Result, error) {
	if err := h.freshSim(); err != nil {
		return Result{}, err
	}
	gen, err := sc.setup(ctx, h, e, h.tag(prefix), n)
	if err != nil {
		return Result{}, fmt.Errorf("%s setup: %w", sc.name, err)
	}
	e.settle(ctx)
	stopProf := h.profile(t.pprof, engineName, sc.name+suffix, span)
	r := loop(t.c, gen(t.p.base, t.key), t.p)
	stopProf()
	h.add(&r, sc, t.name, engineName)
	return r, nil
}

// authCacheRow names the status run with the optional API-key cache on.
const authCacheRow = "status, KYCGATE_AUTH_CACHE_TTL=1s"

// runAuthCache measures status again on a second kycgate that keeps
// validated API keys for a second (KYCGATE_AUTH_CACHE_TTL, off by default).
func (h *harness) runAuthCache(ctx context.Context, e *engine, c *http.Client) error {
	kg, pprofAddr, err := h.startKycgate(ctx, e, e.name+"-authcache", "KYCGATE_AUTH_CACHE_TTL=1s")
	if err != nil {
		return err
	}
	defer kg.stop()
	sc := scenario{name: authCacheRow, expect: 200}
	gen := statusGen("st", statusUsers)
	stopProf := h.profile(pprofAddr, e.name, "status-authcache", h.opt.warmup+h.opt.duration)
	r := closedLoop(ctx, c, gen(kg.base, e.apiKey), 200, h.opt.workers, h.opt.warmup, h.opt.duration, kg)
	stopProf()
	h.add(&r, sc, "kycgate", e.name)
	if r.RPS > 0 && h.opt.openDur > 0 {
		ro := openLoop(ctx, c, gen(kg.base, e.apiKey), 200, r.RPS/2, h.opt.warmup, h.opt.openDur, kg)
		h.add(&ro, sc, "kycgate", e.name)
	}
	return nil
}

func (h *harness) add(r *Result, sc scenario, target, engineName string) {
	r.Name, r.Target, r.Engine = sc.name, target, engineName
	h.Results = append(h.Results, *r)
	printResult(engineName+" "+target, sc.name, r)
}

func printResult(label, name string, r *Result) {
	extra := ""
	if r.Mode == "open" {
		extra = fmt.Sprintf(" (offered %.0f/s; machine %.0f %% busy, stall %s ms, steal %s ms)", r.Rate, 100*r.Busy, ms(r.Stall), ms(r.Steal))
	}
	if r.Errors > 0 {
		extra += fmt.Sprintf("  ERRORS %d: %s", r.Errors, r.FirstErr)
	}
	if r.Exhaust {
		extra += "  (fixture pool used up)"
	}
	fmt.Printf("%-17s %-15s %-6s c=%-3d %8.0f req/s  p50 %6s  p99 %6s  p99.9 %6s ms  cpu %4d µs/req (client %3d)  n=%d%s\n",
		label, name, r.Mode, r.Workers, r.RPS, ms(r.P50), ms(r.P99), ms(r.P999), r.CPUPerReq.Microseconds(), r.ClientCPUPerReq.Microseconds(), r.N, extra)
}

// profile records a CPU profile of kycgate for the coming closed-loop phase.
func (h *harness) profile(addr, engineName, name string, span time.Duration) func() {
	if addr == "" {
		return func() {}
	}
	secs := max(1, int(span.Seconds())-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer resp.Body.Close()
		os.MkdirAll(h.opt.profileDir, 0o755)
		f, err := os.Create(filepath.Join(h.opt.profileDir, engineName+"-"+name+".pprof"))
		if err != nil {
			return
		}
		io.Copy(f, resp.Body)
		f.Close()
	}()
	return func() { <-done }
}
