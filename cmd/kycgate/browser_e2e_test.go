package main

// Browser tests: a real headless Chromium, driven with chromedp, walks the
// development pages of a real `kycgate serve` the way a newcomer would.
// They skip when no Chromium is installed, and fail under scripts/test,
// which installs Debian's.

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/kycgate/kycgate/internal/testenv"
)

// chromiumPath finds a Chromium: $KYCGATE_CHROMIUM, else the usual names.
func chromiumPath() string {
	if p := os.Getenv("KYCGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium for one test, with the URLs of every
// request its pages made (to prove they load nothing from elsewhere).
type browser struct {
	t    *testing.T
	ctx  context.Context // the first tab
	base string
	dir  string // where screenshots go

	mu   sync.Mutex
	urls []string
}

// needChromium skips the test when there is no Chromium; tests call it
// before starting a server they would not use.
func needChromium(t *testing.T) string {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		testenv.Missing(t, "Chromium (for the browser tests)", "apt-get install chromium, or set KYCGATE_CHROMIUM to a Chrome/Chromium binary")
	}
	return path
}

// newBrowser starts Chromium, or skips the test when there is none.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := needChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI and containers run as root
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// One deadline for the whole test: every wait below is on a DOM
	// condition, and this bounds them all.
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	dir := os.Getenv("KYCGATE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	b := &browser{t: t, ctx: ctx, base: base, dir: dir}
	if err := b.watch(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return b
}

// watch records the URL of every request the tab makes; it also opens the
// tab (and starts the browser for the first).
func (b *browser) watch(ctx context.Context) error {
	return chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	})
}

// tab opens another tab in the same browser (the mailbox, the simulator).
func (b *browser) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := b.watch(ctx); err != nil {
		b.t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// do runs actions in the tab and fails the test on the first error.
func (b *browser) do(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that reads a value.
func get[T any](b *browser, ctx context.Context, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// open navigates and fails unless the page answered 200.
func (b *browser) open(ctx context.Context, path string) {
	b.t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.base+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	if resp == nil || resp.Status != http.StatusOK {
		b.t.Fatalf("open %s: response %+v, want 200", path, resp)
	}
}

// screenshot saves the whole page as NAME.png in $KYCGATE_SCREENSHOTS, or
// in the test's temporary directory.
func (b *browser) screenshot(ctx context.Context, name string) {
	b.t.Helper()
	b.save(name, get(b, ctx, "screenshot "+name, chromedp.FullScreenshot(100)))
}

// viewShot saves only what the window shows, for long pages.
func (b *browser) viewShot(ctx context.Context, name string) {
	b.t.Helper()
	b.save(name, get(b, ctx, "screenshot "+name, chromedp.CaptureScreenshot()))
}

func (b *browser) save(name string, png []byte) {
	b.t.Helper()
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// offline fails if any page asked for something outside the server.
func (b *browser) offline() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.urls) == 0 {
		b.t.Fatal("no requests seen: the network listener is not working")
	}
	for _, u := range b.urls {
		if !strings.HasPrefix(u, b.base+"/") && !strings.HasPrefix(u, "data:") && u != "about:blank" {
			b.t.Errorf("a page loaded %s, outside the server", u)
		}
	}
}

// startDev starts kycgate in development mode with its own mailbox and
// simulator, as `go run ./cmd/kycgate` does.
func startDev(t *testing.T) *instance {
	env := newEnv(t, "")
	delete(env, "KYCGATE_SMTP_URL")
	env["KYCGATE_LOG_LEVEL"] = "info"
	return start(t, env)
}

func TestBrowserLanding(t *testing.T) {
	t.Parallel()
	needChromium(t)
	in := startDev(t)
	b := newBrowser(t, in.URL)
	b.open(b.ctx, "/")
	b.do(b.ctx, "wait for the landing page", chromedp.WaitVisible(chromedp.ID("facts")))
	db := get(b, b.ctx, "database", chromedp.Text(chromedp.ID("database")))
	mailInfo := get(b, b.ctx, "mail", chromedp.Text(chromedp.ID("mail")))
	didit := get(b, b.ctx, "didit", chromedp.Text(chromedp.ID("didit")))
	if !strings.Contains(db, "SQLite") && !strings.Contains(db, "PostgreSQL") {
		t.Errorf("database %q names no engine", db)
	}
	if !strings.Contains(mailInfo, "mailbox") || !strings.Contains(didit, "simulator") {
		t.Errorf("mail %q, didit %q: want the dev mailbox and the simulator", mailInfo, didit)
	}
	if cmd := get(b, b.ctx, "tenant command", chromedp.Text(chromedp.ID("tenant-cmd"))); cmd != "go run ./cmd/kycgate tenant create --name Acme" {
		t.Errorf("tenant command %q", cmd)
	}
	links := get(b, b.ctx, "links", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("a[href]"), a => a.href)`))
	b.screenshot(b.ctx, "landing")
	want := map[string]bool{"/_dev/api/": false, "/_dev/demo/": false, "/_dev/mail/": false, "/_didit/": false}
	for _, l := range links {
		path, ok := strings.CutPrefix(l, in.URL)
		if !ok {
			t.Errorf("link %s leaves the server", l)
			continue
		}
		_, page := want[path]
		if page {
			want[path] = true
		}
		b.open(b.ctx, path) // every link answers 200
		if page {
			b.checkNav(b.ctx, path)
		}
	}
	for path, seen := range want {
		if !seen {
			t.Errorf("the landing page does not link %s", path)
		}
	}
	b.open(b.ctx, "/")
	b.checkNav(b.ctx, "/")
	b.offline()
}

// navLinks is the navigation bar every development page carries, in order.
var navLinks = []string{"/", "/_dev/api/", "/_dev/demo/", "/_dev/mail/", "/_didit/"}

// checkNav fails unless the page in ctx shows the navigation bar, with
// every link of it, visibly.
func (b *browser) checkNav(ctx context.Context, page string) {
	b.t.Helper()
	b.do(ctx, page+": the navigation bar", chromedp.WaitVisible(chromedp.CSS("header.top nav")))
	links := get(b, ctx, page+": navigation links", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("header.top nav a"), a => a.getAttribute("href"))`))
	if !slices.Equal(links, navLinks) {
		b.t.Errorf("%s: navigation links %q, want %q", page, links, navLinks)
	}
}

func TestBrowserAPIReference(t *testing.T) {
	t.Parallel()
	needChromium(t)
	in := startDev(t)
	b := newBrowser(t, in.URL)
	b.open(b.ctx, "/_dev/api/")
	b.do(b.ctx, "wait for the reference", chromedp.WaitVisible(chromedp.CSS(`article[data-operation="kycCreate"]`)))
	ops := get(b, b.ctx, "operations", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("article.op"), a => a.dataset.operation)`))
	have := map[string]bool{}
	for _, op := range ops {
		have[op] = true
	}
	for _, op := range []string{"kycPrepare", "sendEmailOtp", "verifyEmailOtp", "walletChallenge",
		"kycPrepareWallet", "kycCreate", "kycStatus", "configProducts", "diditWebhook", "healthz"} {
		if !have[op] {
			t.Errorf("operation %s is not rendered (have %v)", op, ops)
		}
	}
	// The /api twins are shown as aliases, not as operations of their own.
	if have["apiKycPrepare"] {
		t.Error("/api/kyc/prepare is rendered as its own operation")
	}
	cases := get(b, b.ctx, "prepare-wallet's error cases",
		chromedp.Text(chromedp.CSS(`article[data-operation="kycPrepareWallet"] table.responses`)))
	for _, s := range []string{"challenge_not_found", "invalid_signature", "email_wallet_conflict"} {
		if !strings.Contains(cases, s) {
			t.Errorf("prepare-wallet's responses lack %s:\n%s", s, cases)
		}
	}
	b.viewShot(b.ctx, "api-reference")
	b.open(b.ctx, "/_dev/api/openapi.yaml")
	b.offline()
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func TestBrowserDemoEmail(t *testing.T) {
	t.Parallel()
	needChromium(t)
	in := startDev(t)
	b := newBrowser(t, in.URL)
	demo := b.ctx
	b.open(demo, "/_dev/demo/")
	b.do(demo, "start the email path",
		chromedp.WaitVisible(chromedp.CSS(`#tenant[data-ready="true"]`)),
		chromedp.SetValue(chromedp.ID("email"), "newcomer@example.com"),
		chromedp.Click(chromedp.ID("email-start")),
		chromedp.WaitVisible(chromedp.ID("mailbox-link")))

	// Read the code where a person would: in the mailbox, in another tab.
	// The demo links the mailbox filtered to the address; the page has
	// the navigation of every development page.
	box := get(b, demo, "mailbox link", chromedp.AttributeValue(chromedp.ID("mailbox-link"), "href"))
	if want := "/_dev/mail/?to=newcomer%40example.com"; box.Value != want {
		t.Errorf("the demo's mailbox link is %q, want %q", box.Value, want)
	}
	mailTab := b.tab()
	b.open(mailTab, "/_dev/mail/?to=newcomer@example.com")
	b.checkNav(mailTab, "/_dev/mail/")
	text := get(b, mailTab, "read the mail", chromedp.Text(chromedp.CSS("article pre")))
	code := sixDigits.FindString(text)
	if code == "" {
		t.Fatalf("no code in the mail:\n%s", text)
	}
	b.screenshot(mailTab, "mailbox")

	b.do(demo, "verify the code and create the session",
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("email-verify")),
		chromedp.WaitVisible(chromedp.ID("email-session-link")),
		chromedp.WaitVisible(chromedp.CSS(`#email-status[data-status="pending"]`)))
	href := get(b, demo, "session link", chromedp.AttributeValue(chromedp.ID("email-session-link"), "href"))
	approveInBrowser(t, b, href.Value, "simulator-session")
	b.do(demo, "the demo sees the approval",
		chromedp.WaitVisible(chromedp.CSS(`#email-status[data-status="approved"]`)))
	b.screenshot(demo, "demo-email-approved")

	// Back another day: the email is verified, so no code is sent and the
	// demo shows the approval at once.
	b.open(demo, "/_dev/demo/")
	b.do(demo, "run the email path again",
		chromedp.WaitVisible(chromedp.CSS(`#tenant[data-ready="true"]`)),
		chromedp.SetValue(chromedp.ID("email"), "newcomer@example.com"),
		chromedp.Click(chromedp.ID("email-start")),
		chromedp.WaitVisible(chromedp.CSS(`#email-status[data-status="approved"]`)))
	b.offline()
}

func TestBrowserDemoWallet(t *testing.T) {
	t.Parallel()
	needChromium(t)
	in := startDev(t)
	b := newBrowser(t, in.URL)
	demo := b.ctx
	b.open(demo, "/_dev/demo/")
	b.do(demo, "sign in with the built-in test wallet",
		chromedp.WaitVisible(chromedp.CSS(`#tenant[data-ready="true"]`)),
		chromedp.Click(chromedp.ID("wallet-start")),
		chromedp.WaitVisible(chromedp.ID("wallet-session-link")),
		chromedp.WaitVisible(chromedp.CSS(`#wallet-status[data-status="pending"]`)))
	address := get(b, demo, "wallet address", chromedp.Text(chromedp.ID("wallet-address")))
	if !regexp.MustCompile(`^Address: [1-9A-HJ-NP-Za-km-z]{32,44}$`).MatchString(address) {
		t.Errorf("wallet address %q is not a Solana address", address)
	}

	// Approve through the simulator's index, as someone who closed the
	// demo's link would.
	sim := b.tab()
	b.open(sim, "/_didit/")
	b.do(sim, "find the session in the simulator's index", chromedp.WaitVisible(chromedp.CSS("#sessions a.session-link")))
	href := get(b, sim, "session link", chromedp.AttributeValue(chromedp.CSS("#sessions a.session-link"), "href"))
	b.screenshot(sim, "simulator-index")
	approveInBrowser(t, b, href.Value, "")
	b.do(demo, "the demo sees the approval",
		chromedp.WaitVisible(chromedp.CSS(`#wallet-status[data-status="approved"]`)))
	if log := get(b, demo, "the demo's log", chromedp.Text(chromedp.ID("log"))); strings.Contains(log, "error:") {
		t.Errorf("the demo logged an error:\n%s", log)
	}
	b.screenshot(demo, "demo-wallet-approved")
	b.offline()
}

// approveInBrowser opens a simulator session page in a new tab and picks
// Approved, as the user would at Didit.
func approveInBrowser(t *testing.T, b *browser, sessionURL, shot string) {
	t.Helper()
	path, ok := strings.CutPrefix(sessionURL, b.base)
	if !ok {
		t.Fatalf("session URL %q is not on the server %s", sessionURL, b.base)
	}
	tab := b.tab()
	b.open(tab, path)
	b.do(tab, "wait for the hosted page", chromedp.WaitVisible(chromedp.CSS(`button[value="approved"]`)))
	if shot != "" {
		b.screenshot(tab, shot)
	}
	b.do(tab, "approve",
		chromedp.Click(chromedp.CSS(`button[value="approved"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.badge.s-approved`)))
}
