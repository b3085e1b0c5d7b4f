package main

// The wallet path (docs/api.md §5–§8, §10) through a running server. Wallets are
// played by the real libraries: scripts/wallet/sign.mjs signs each challenge
// the server issues with ethers (EVM) or @solana/web3.js + tweetnacl
// (Solana). The keys are the fixed ones in internal/wallet/testdata/
// vectors.json; only their seeds and addresses are taken from there.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/testenv"

	"github.com/mr-tron/base58"
)

// ---------------------------------------------------------------- wallets

// walletKey is one test wallet: a fixed seed and the address the libraries
// derive from it.
type walletKey struct {
	Chain   string `json:"chain"`
	SeedHex string `json:"seed_hex"`
	Address string `json:"address"`
}

var (
	walletKeysOnce sync.Once
	walletKeysList []walletKey
	walletKeysErr  error
)

// testWallet returns the i-th fixed key of chain ("evm" or "solana") from the
// committed vectors (three of each).
func testWallet(t testing.TB, chain string, i int) walletKey {
	t.Helper()
	walletKeysOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join("..", "..", "internal", "wallet", "testdata", "vectors.json"))
		if err != nil {
			walletKeysErr = err
			return
		}
		var vf struct{ Vectors []walletKey }
		if walletKeysErr = json.Unmarshal(b, &vf); walletKeysErr != nil {
			return
		}
		seen := map[string]bool{}
		for _, v := range vf.Vectors {
			if !seen[v.Chain+v.SeedHex] {
				seen[v.Chain+v.SeedHex] = true
				walletKeysList = append(walletKeysList, v)
			}
		}
	})
	if walletKeysErr != nil {
		t.Fatalf("read wallet vectors: %v", walletKeysErr)
	}
	n := 0
	for _, k := range walletKeysList {
		if k.Chain == chain {
			if n == i {
				return k
			}
			n++
		}
	}
	t.Fatalf("no %s key %d in the vectors", chain, i)
	return walletKey{}
}

// needSigner fails (under CI, which installs node and the npm packages) or
// skips (elsewhere) when sign.mjs cannot run.
func needSigner(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Missing(t, "node (for live wallet signing)", "apt-get install nodejs npm")
	} else if _, err := os.Stat(filepath.Join("..", "..", "scripts", "wallet", "node_modules")); err != nil {
		testenv.Missing(t, "scripts/wallet/node_modules (for live wallet signing)", "npm ci in scripts/wallet")
	}
}

// signJob is one message for one key to sign.
type signJob struct {
	key walletKey
	msg string
}

// signAll has the wallet libraries sign each job, running node for all of
// them at once, and checks each reports the key's known address.
func signAll(t testing.TB, jobs ...signJob) []string {
	t.Helper()
	needSigner(t)
	out := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = runSign(j)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sign1(t testing.TB, key walletKey, msg string) string {
	t.Helper()
	return signAll(t, signJob{key, msg})[0]
}

func runSign(j signJob) (string, error) {
	in, err := json.Marshal(map[string]string{"chain": j.key.Chain, "seed_hex": j.key.SeedHex, "message": j.msg})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("..", "..", "scripts", "wallet", "sign.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("sign.mjs: %v: %s", err, stderr.String())
	}
	var got struct{ Address, Signature string }
	if err := json.Unmarshal(raw, &got); err != nil {
		return "", fmt.Errorf("sign.mjs printed %q: %v", raw, err)
	}
	if got.Address != j.key.Address || got.Signature == "" {
		return "", fmt.Errorf("sign.mjs signed as %q (want %q), signature %q", got.Address, j.key.Address, got.Signature)
	}
	return got.Signature, nil
}

// secp256k1's group order, for making the high-S twin of a signature.
var secpN, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)

// evmSigBytes decodes an ethers signature (0x + 65 bytes, v = 27/28).
func evmSigBytes(t testing.TB, sig string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(sig, "0x"))
	if err != nil || len(b) != 65 || (b[64] != 27 && b[64] != 28) {
		t.Fatalf("not an ethers signature: %q", sig)
	}
	return b
}

// withV returns the signature with its last byte set to v, as 0x-hex.
func withV(b []byte, v byte) string {
	c := bytes.Clone(b)
	c[64] = v
	return "0x" + hex.EncodeToString(c)
}

// highS returns (r, n−s) with the recovery bit flipped: the same signature's
// malleable twin, which verifies mathematically and must still be refused.
func highS(b []byte, v byte) string {
	s := new(big.Int).SetBytes(b[32:64])
	s.Sub(secpN, s)
	c := bytes.Clone(b)
	s.FillBytes(c[32:64])
	c[64] = v
	return "0x" + hex.EncodeToString(c)
}

// ---------------------------------------------------------------- calls

// wcall is in.try that fails t (a subtest's own t) on transport errors.
func wcall(t testing.TB, in *instance, method, path, key string, body any) reply {
	t.Helper()
	r, err := in.try(method, path, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// challengeFor issues a challenge for wallet and returns data.message.
func challengeFor(t testing.TB, in *instance, key, wallet string) string {
	t.Helper()
	r := wcall(t, in, "POST", "/security/wallet/challenge", key, map[string]string{"wallet": wallet})
	expect(t, r, 201, "challenge_created", "Sign this message with your wallet")
	var d struct{ Message string }
	r.data(t, &d)
	return d.Message
}

func prepareWallet(t testing.TB, in *instance, key string, body map[string]string) reply {
	t.Helper()
	return wcall(t, in, "POST", "/kyc/prepare-wallet", key, body)
}

// expectWalletState checks prepare-wallet's data exactly; link is
// data.email_link, "" for absent.
func expectWalletState(t testing.TB, r reply, emailVerified, kycApproved bool, kycStatus string, link ...string) {
	t.Helper()
	var got map[string]any
	r.data(t, &got)
	want := map[string]any{"email_verified": emailVerified, "wallet_verified": true,
		"kyc_approved": kycApproved, "kyc_status": kycStatus}
	if len(link) > 0 && link[0] != "" {
		want["email_link"] = link[0]
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("data = %s, want %v", r.Env.Data, want)
	}
}

func statusQuery(email, wallet string) string {
	q := url.Values{}
	if email != "" {
		q.Set("email", email)
	}
	if wallet != "" {
		q.Set("wallet", wallet)
	}
	return "/kyc/status?" + q.Encode()
}

type kycStatusData struct {
	Status        string `json:"status"`
	Approved      bool   `json:"approved"`
	SessionID     string `json:"session_id"`
	SessionStatus string `json:"session_status"`
}

// kycStatus expects 200 and returns the data.
func kycStatus(t testing.TB, in *instance, key, email, wallet string) kycStatusData {
	t.Helper()
	r := wcall(t, in, "GET", statusQuery(email, wallet), key, nil)
	expect(t, r, 200, "kyc_status_retrieved", "KYC status retrieved")
	var d kycStatusData
	r.data(t, &d)
	return d
}

type createResult struct {
	Message  string `json:"message"`
	Approved bool   `json:"approved"`
	Session  struct {
		ID  string `json:"session_id"`
		URL string `json:"session_url"`
	} `json:"session"`
}

// createKYC expects 201 with data.message kind and returns the data.
func createKYC(t testing.TB, in *instance, key string, id map[string]string, kind string) createResult {
	t.Helper()
	r := wcall(t, in, "POST", "/kyc/create/verify_public_kyc", key, id)
	expect(t, r, 201, "kyc_session_created", "KYC session created")
	var d createResult
	r.data(t, &d)
	if d.Message != kind || d.Session.ID == "" {
		t.Fatalf("create %v: data %s, want message %q", id, r.Env.Data, kind)
	}
	return d
}

// simDo sends one request to a simulator control URL and expects 200.
func simDo(t testing.TB, u, method string, body []byte, out any) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("simulator %s %s: %d %s", method, u, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("simulator %s %s: %v: %s", method, u, err, raw)
		}
	}
}

// approveSession completes a session of the embedded simulator as approved
// and waits until kycgate has the outcome (approveAt).
func approveSession(t testing.TB, in *instance, sessionID string) {
	t.Helper()
	approveAt(t, in.URL+"/_didit/_sim", sessionID)
}

// ---------------------------------------------------------------- §5

var nonceLine = regexp.MustCompile(`^Nonce: [0-9A-Za-z]{22,}$`)

// checkChallengeMessage checks the §5 seven-line message for wallet, issued
// between before and after (whole seconds).
func checkChallengeMessage(t testing.TB, msg, wallet, chain string, before, after time.Time) {
	t.Helper()
	lines := strings.Split(msg, "\n")
	if len(lines) != 7 {
		t.Fatalf("message has %d lines, want 7: %q", len(lines), msg)
	}
	want := []string{"StarkFi KYC verification", "Wallet: " + wallet, "Chain: " + chain, "Purpose: kyc"}
	for i, w := range want {
		if lines[i] != w {
			t.Fatalf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
	if !nonceLine.MatchString(lines[4]) {
		t.Fatalf("line 5 = %q, want Nonce: + at least 22 alphanumerics (128 bits)", lines[4])
	}
	issuedS, ok1 := strings.CutPrefix(lines[5], "Issued At: ")
	expS, ok2 := strings.CutPrefix(lines[6], "Expiration Time: ")
	issued, err1 := time.Parse(time.RFC3339, issuedS)
	exp, err2 := time.Parse(time.RFC3339, expS)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || !strings.HasSuffix(issuedS, "Z") || !strings.HasSuffix(expS, "Z") {
		t.Fatalf("time lines %q, %q: want RFC 3339 UTC", lines[5], lines[6])
	}
	if issued.Before(before.Truncate(time.Second)) || issued.After(after) {
		t.Fatalf("Issued At %s is not between %s and %s", issued, before, after)
	}
	if exp.Sub(issued) != 10*time.Minute {
		t.Fatalf("Expiration Time %s is not Issued At %s + 10 minutes", exp, issued)
	}
}

// TestWalletChallenge: POST /security/wallet/challenge (docs/api.md §5).
func TestWalletChallenge(t *testing.T) {
	t.Parallel()
	in := start(t, newEnv(t, newMailbox(t).srv.URL()))
	_, key := in.tenant("Chal", "--rate-limit-per-minute", "0")
	evm := testWallet(t, "evm", 0).Address
	sol := testWallet(t, "solana", 0).Address
	if strings.ToLower(evm) == evm || strings.ToUpper(evm[2:]) == evm[2:] {
		t.Fatalf("test key %s has no mixed-case checksum", evm)
	}

	t.Run("created", func(t *testing.T) {
		for _, tc := range []struct {
			name, input, want, chain string
			purpose                  any // nil: omitted
		}{
			{"evm checksummed", evm, evm, "evm", nil},
			{"evm lowercase", strings.ToLower(evm), evm, "evm", "kyc"},
			{"evm uppercase digits", "0x" + strings.ToUpper(evm[2:]), evm, "evm", ""},
			{"solana", sol, sol, "solana", "kyc"},
			{"solana api path", sol, sol, "solana", nil},
		} {
			body := map[string]any{"wallet": tc.input}
			if tc.purpose != nil {
				body["purpose"] = tc.purpose
			}
			path := "/security/wallet/challenge"
			if strings.HasSuffix(tc.name, "api path") {
				path = "/api" + path
			}
			before := time.Now()
			r := wcall(t, in, "POST", path, key, body)
			after := time.Now()
			expect(t, r, 201, "challenge_created", "Sign this message with your wallet")
			var d map[string]string
			r.data(t, &d)
			if len(d) != 3 || d["wallet"] != tc.want || d["wallet_chain"] != tc.chain {
				t.Fatalf("%s: data %s, want wallet %s, chain %s", tc.name, r.Env.Data, tc.want, tc.chain)
			}
			checkChallengeMessage(t, d["message"], tc.want, tc.chain, before, after)
		}
		// Every challenge has its own nonce.
		a, b := challengeFor(t, in, key, evm), challengeFor(t, in, key, evm)
		if strings.Split(a, "\n")[4] == strings.Split(b, "\n")[4] {
			t.Fatalf("two challenges share a nonce: %q", a)
		}
	})

	t.Run("purpose", func(t *testing.T) {
		for _, p := range []string{"KYC", "login", " kyc", "kyc ", "kyc\n"} {
			expect(t, wcall(t, in, "POST", "/security/wallet/challenge", key, map[string]string{"wallet": evm, "purpose": p}),
				400, "invalid_purpose", "purpose must be kyc")
		}
	})

	t.Run("missing", func(t *testing.T) {
		for _, body := range []any{map[string]any{}, map[string]any{"wallet": ""}, map[string]any{"wallet": nil},
			map[string]any{"purpose": "kyc"}} {
			expect(t, wcall(t, in, "POST", "/security/wallet/challenge", key, body), 400, "missing_params", "wallet is required")
		}
	})

	t.Run("invalid", func(t *testing.T) {
		// One letter's case swapped: still mixed case, so a checksum claim, and wrong.
		i := strings.IndexFunc(evm[2:], func(r rune) bool { return r >= 'A' && r <= 'F' }) + 2
		badSum := evm[:i] + strings.ToLower(evm[i:i+1]) + evm[i+1:]
		for _, w := range []string{
			"garbage", "0x", "0x123", "0X" + evm[2:], "0x" + strings.Repeat("g", 40), evm + "00", evm[:41],
			badSum,
			"8opHzTAnfzRpPEx21XtnrVTX28YQuCpAjcn1PczScKh",  // 32 bytes, y=2: not on the curve
			"H242rsh5hzpvDdct56PG5YPQbKUT37EmySQLoQqrYUJr", // y = p: non-canonical
			"0" + sol[1:], sol[:10] + "l" + sol[11:], // '0' and 'l' are not base58
			base58.Encode(make([]byte, 31)), base58.Encode(bytes.Repeat([]byte{7}, 33)),
		} {
			expect(t, wcall(t, in, "POST", "/security/wallet/challenge", key, map[string]string{"wallet": w}),
				400, "invalid_wallet", "Wallet challenge failed")
		}
		r := wcall(t, in, "POST", "/security/wallet/challenge", key, `{"wallet": 12}`)
		expect(t, r, 400, "invalid_body")
		if !strings.Contains(r.Env.Message, "wallet") {
			t.Fatalf("wrong-type message %q does not name the field", r.Env.Message)
		}
	})

	t.Run("product gate", func(t *testing.T) {
		tid, k := in.tenant("NoKYC")
		if _, err := in.cli("tenant", "set-products", "--tenant", tid, "--kyc", "off"); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/security/wallet/challenge", "/api/kyc/prepare-wallet"} {
			expect(t, wcall(t, in, "POST", path, k, map[string]string{"wallet": evm, "message": "m", "signed_bytes": "s"}),
				403, "product_not_enabled", "The kyc product is not enabled for this API key")
		}
	})

	t.Run("configured title", func(t *testing.T) {
		env := newEnv(t, newMailbox(t).srv.URL())
		env["KYCGATE_CHALLENGE_TITLE"] = "Acme Bank: prove you own this wallet"
		in2 := start(t, env)
		_, k := in2.tenant("Titled")
		msg := challengeFor(t, in2, k, sol)
		if first, _, _ := strings.Cut(msg, "\n"); first != env["KYCGATE_CHALLENGE_TITLE"] {
			t.Fatalf("first line %q, want the configured title", first)
		}
	})
}

// ---------------------------------------------------------------- §6 without live signatures

// TestWalletPrepareErrors: prepare-wallet's refusals that need no valid
// signature, in the documented order (docs/api.md §6).
func TestWalletPrepareErrors(t *testing.T) {
	t.Parallel()
	in := start(t, newEnv(t, newMailbox(t).srv.URL()))
	_, key := in.tenant("Errs", "--rate-limit-per-minute", "0")
	_, other := in.tenant("Other", "--rate-limit-per-minute", "0")
	evm, evm2 := testWallet(t, "evm", 0).Address, testWallet(t, "evm", 1).Address
	sol := testWallet(t, "solana", 0).Address
	msg := challengeFor(t, in, key, evm)
	solMsg := challengeFor(t, in, key, sol)
	// A well-formed signature by nobody: valid hex, v = 27.
	junk := "0x" + strings.Repeat("11", 64) + "1b"

	const missing = "wallet, message and signed_bytes are required"
	for _, body := range []map[string]any{
		{},
		{"message": msg, "signed_bytes": junk},
		{"wallet": evm, "signed_bytes": junk},
		{"wallet": evm, "message": msg},
		{"wallet": "", "message": msg, "signed_bytes": junk},
		{"wallet": evm, "message": "", "signed_bytes": junk},
		{"wallet": evm, "message": msg, "signed_bytes": ""},
		{"wallet": evm, "message": msg, "signed_bytes": nil},
		{"wallet": "garbage", "message": msg, "email": "bad"}, // missing comes first
	} {
		expect(t, wcall(t, in, "POST", "/kyc/prepare-wallet", key, body), 400, "missing_params", missing)
	}

	expect(t, wcall(t, in, "POST", "/api/kyc/prepare-wallet", key, map[string]any{"wallet": evm}), 400, "missing_params", missing)
	for _, f := range []string{"wallet", "message", "signed_bytes", "email"} {
		body := map[string]any{"wallet": evm, "message": msg, "signed_bytes": junk}
		body[f] = 7
		r := wcall(t, in, "POST", "/kyc/prepare-wallet", key, body)
		expect(t, r, 400, "invalid_body")
		if !strings.Contains(r.Env.Message, f) {
			t.Fatalf("wrong-type message %q does not name %s", r.Env.Message, f)
		}
	}

	const badWallet = "Wallet is not a valid EVM or Solana address"
	i := strings.IndexFunc(evm[2:], func(r rune) bool { return r >= 'A' && r <= 'F' }) + 2
	for _, w := range []string{"garbage", "0x1234", evm[:i] + strings.ToLower(evm[i:i+1]) + evm[i+1:],
		"8opHzTAnfzRpPEx21XtnrVTX28YQuCpAjcn1PczScKh", "0" + sol[1:]} {
		expect(t, prepareWallet(t, in, key, map[string]string{"wallet": w, "message": msg, "signed_bytes": junk, "email": "bad"}),
			400, "invalid_wallet", badWallet)
	}

	for _, e := range []string{"bad", "a@b", "Name <a@b.co>", " "} {
		expect(t, prepareWallet(t, in, key, map[string]string{"wallet": evm, "message": msg, "signed_bytes": junk, "email": e}),
			400, "invalid_email", "email is not a valid address")
	}

	const noChallenge = "No matching challenge; request a new one"
	notFound := func(name string, tenantKey string, body map[string]string) {
		t.Helper()
		r := prepareWallet(t, in, tenantKey, body)
		if r.Env.Status != "challenge_not_found" {
			t.Fatalf("%s: got %d %s, want challenge_not_found", name, r.Code, r.Raw)
		}
		expect(t, r, 400, "challenge_not_found", noChallenge)
	}
	lines := strings.Split(msg, "\n")
	nonce := strings.TrimPrefix(lines[4], "Nonce: ")
	for name, m := range map[string]string{
		"never issued":       strings.Replace(msg, nonce, strings.Repeat("A", len(nonce)), 1),
		"no nonce line":      "hello",
		"nonce line only":    lines[4],
		"nonce changed":      strings.Replace(msg, nonce, nonce[:len(nonce)-1]+flipCase(nonce[len(nonce)-1:]), 1),
		"title changed":      strings.Replace(msg, "StarkFi", "StarkFI", 1),
		"time changed":       strings.Replace(msg, "Expiration Time: ", "Expiration Time:  ", 1),
		"trailing newline":   msg + "\n",
		"crlf":               strings.ReplaceAll(msg, "\n", "\r\n"),
		"extra line":         msg + "\nWallet: " + evm2,
		"lowercase wallet":   strings.Replace(msg, evm, strings.ToLower(evm), 1),
		"leading whitespace": " " + msg,
	} {
		if m == msg {
			t.Fatalf("%s: not altered", name)
		}
		notFound(name, key, map[string]string{"wallet": evm, "message": m, "signed_bytes": junk})
	}
	// Issued for another wallet, or to another tenant.
	notFound("other wallet", key, map[string]string{"wallet": evm2, "message": msg, "signed_bytes": junk})
	notFound("solana challenge, evm wallet", key, map[string]string{"wallet": evm, "message": solMsg, "signed_bytes": junk})
	notFound("other tenant", other, map[string]string{"wallet": evm, "message": msg, "signed_bytes": junk})

	// The challenge is found; the signature is not right for it.
	const badSig = "Signature does not match the wallet"
	sigs := []string{
		junk, strings.TrimPrefix(junk, "0x"),
		"0x", "zz", "0x" + strings.Repeat("1", 129), // odd length
		"0x" + strings.Repeat("11", 64), "0x" + strings.Repeat("11", 66), "0x" + strings.Repeat("11", 64) + "1bzz",
		"0x" + strings.Repeat("00", 64) + "1b", // r = s = 0
		"0x" + strings.Repeat("ff", 64) + "1b", // r, s ≥ n
		base58.Encode(bytes.Repeat([]byte{1}, 64)),
	}
	for _, s := range sigs {
		expect(t, prepareWallet(t, in, key, map[string]string{"wallet": evm, "message": msg, "signed_bytes": s}),
			400, "invalid_signature", badSig)
	}
	for _, s := range []string{
		base58.Encode(bytes.Repeat([]byte{1}, 64)), // well-formed, by nobody
		base58.Encode(bytes.Repeat([]byte{1}, 63)), base58.Encode(bytes.Repeat([]byte{1}, 65)),
		"0OIl" + base58.Encode(bytes.Repeat([]byte{1}, 60)), // not base58
		junk,
	} {
		expect(t, prepareWallet(t, in, key, map[string]string{"wallet": sol, "message": solMsg, "signed_bytes": s}),
			400, "invalid_signature", badSig)
	}
	// None of that burnt or registered anything.
	expect(t, wcall(t, in, "GET", statusQuery("", evm), key, nil), 404, "user_not_found", "User not found")
	expect(t, wcall(t, in, "GET", statusQuery("", sol), key, nil), 404, "user_not_found", "User not found")
}

func flipCase(s string) string {
	if strings.ToUpper(s) != s {
		return strings.ToUpper(s)
	}
	if strings.ToLower(s) != s {
		return strings.ToLower(s)
	}
	return "Z" // a digit: any other alphanumeric
}

// ---------------------------------------------------------------- live signatures

// TestWalletLiveSigning: for each chain, a challenge the running server
// issued, signed by the wallet library, registers the wallet; a session
// created by wallet is approved and status by wallet says so.
func TestWalletLiveSigning(t *testing.T) {
	t.Parallel()
	needSigner(t)
	in := start(t, newEnv(t, newMailbox(t).srv.URL()))
	_, key := in.tenant("Live", "--rate-limit-per-minute", "0")
	for _, chain := range []string{"evm", "solana"} {
		t.Run(chain, func(t *testing.T) {
			w := testWallet(t, chain, 0)
			input := w.Address
			if chain == "evm" {
				input = strings.ToLower(input) // the server normalises; the wallet signs what it is given
			}
			msg := challengeFor(t, in, key, input)
			sig := sign1(t, w, msg)
			body := map[string]string{"wallet": input, "message": msg, "signed_bytes": sig}
			r := prepareWallet(t, in, key, body)
			expect(t, r, 201, "user_prepared", "User prepared for KYC via wallet")
			expectWalletState(t, r, false, false, "pending")

			// Used once: the same request again finds no challenge.
			expect(t, prepareWallet(t, in, key, body), 400, "challenge_not_found", "No matching challenge; request a new one")

			expect(t, wcall(t, in, "GET", statusQuery("", w.Address), key, nil), 404, "kyc_not_found", "No KYC session found for this user")
			c := createKYC(t, in, key, map[string]string{"wallet": input}, "didit_create_kyc_session")
			st := kycStatus(t, in, key, "", w.Address)
			if st.SessionID != c.Session.ID || st.Status != "pending" || st.Approved || st.SessionStatus != "Not Started" {
				t.Fatalf("status before the decision = %+v", st)
			}
			approveSession(t, in, c.Session.ID)
			st = kycStatus(t, in, key, "", input)
			if st.SessionID != c.Session.ID || st.Status != "approved" || !st.Approved || st.SessionStatus != "Approved" {
				t.Fatalf("status after approval = %+v", st)
			}
		})
	}
}

// TestWalletSignatureChecks: refusals that need a real signature to be
// meaningful (the only thing wrong is the one thing changed), and that a
// refused signature leaves the challenge usable.
func TestWalletSignatureChecks(t *testing.T) {
	t.Parallel()
	needSigner(t)
	in := start(t, newEnv(t, newMailbox(t).srv.URL()))
	_, key := in.tenant("Sigs", "--rate-limit-per-minute", "0")
	_, keyB := in.tenant("SigsB", "--rate-limit-per-minute", "0")
	w, other := testWallet(t, "evm", 0), testWallet(t, "evm", 1)
	sw := testWallet(t, "solana", 0)

	msg := challengeFor(t, in, key, w.Address)
	msg2 := challengeFor(t, in, key, w.Address)
	solMsg := challengeFor(t, in, key, sw.Address)
	// A one-byte change that keeps the Nonce line: a later expiry.
	lines := strings.Split(msg, "\n")
	exp, _ := time.Parse(time.RFC3339, strings.TrimPrefix(lines[6], "Expiration Time: "))
	lines[6] = "Expiration Time: " + exp.Add(time.Hour).Format(time.RFC3339)
	extended := strings.Join(lines, "\n")
	if len(extended) != len(msg) || strings.Split(extended, "\n")[4] != strings.Split(msg, "\n")[4] {
		t.Fatalf("extended message %q", extended)
	}
	sigs := signAll(t, signJob{w, msg}, signJob{other, msg}, signJob{w, extended}, signJob{w, msg2}, signJob{sw, solMsg})
	sig, otherSig, extSig, sig2, solSig := sigs[0], sigs[1], sigs[2], sigs[3], sigs[4]

	try := func(k, m, s string) reply {
		t.Helper()
		return prepareWallet(t, in, k, map[string]string{"wallet": w.Address, "message": m, "signed_bytes": s})
	}
	const badSig = "Signature does not match the wallet"
	const noChallenge = "No matching challenge; request a new one"

	// The wallet's own valid signature over a message we did not issue.
	expect(t, try(key, extended, extSig), 400, "challenge_not_found", noChallenge)
	// Another tenant's challenge, correctly signed.
	expect(t, try(keyB, msg, sig), 400, "challenge_not_found", noChallenge)
	// Another key.
	expect(t, try(key, msg, otherSig), 400, "invalid_signature", badSig)

	b := evmSigBytes(t, sig)
	v := b[64]          // 27 or 28, as ethers gives it
	flip := 27 + 28 - v // the other recovery id
	for name, s := range map[string]string{
		"high-S":            highS(b, flip),
		"high-S, v 0/1":     highS(b, flip-27),
		"high-S, same v":    highS(b, v),
		"flipped v":         withV(b, flip),
		"flipped v, 0/1":    withV(b, flip-27),
		"v 2":               withV(b, v-27+2),
		"v 3":               withV(b, 3),
		"v 26":              withV(b, 26),
		"v 29":              withV(b, 29),
		"v 29+recid":        withV(b, v+2),
		"v 255":             withV(b, 255),
		"v 35/36 (EIP-155)": withV(b, 35+v-27),
		"64 bytes":          "0x" + hex.EncodeToString(b[:64]),
		"66 bytes":          "0x" + hex.EncodeToString(append(bytes.Clone(b), 0)),
		"shifted one byte":  "0x" + hex.EncodeToString(append(bytes.Clone(b[1:]), v)),
		"base58":            base58.Encode(b),
		"one bit of r":      withV(append([]byte{b[0] ^ 1}, b[1:]...), v),
	} {
		if r := try(key, msg, s); r.Env.Status != "invalid_signature" {
			t.Fatalf("%s (%s): got %d %s, want invalid_signature", name, s, r.Code, r.Raw)
		} else {
			expect(t, r, 400, "invalid_signature", badSig)
		}
	}

	// After all that the challenge still works: here in the raw recovery-id
	// form (v = 0/1), without 0x, in upper case.
	r := try(key, msg, strings.ToUpper(strings.TrimPrefix(withV(b, v-27), "0x")))
	expect(t, r, 201, "user_prepared", "User prepared for KYC via wallet")
	expectWalletState(t, r, false, false, "pending")
	// Used: every form of the right signature now finds nothing.
	for _, s := range []string{sig, withV(b, v-27), strings.TrimPrefix(sig, "0x")} {
		expect(t, try(key, msg, s), 400, "challenge_not_found", noChallenge)
	}
	// A second challenge: ethers' own form (v = 27/28) is accepted too.
	r = try(key, msg2, sig2)
	expect(t, r, 200, "user_already_prepared", "User already prepared for KYC")
	expectWalletState(t, r, false, false, "pending")

	// Solana: malformed and mismatched signatures, then the right one.
	sb, err := base58.Decode(solSig)
	if err != nil || len(sb) != 64 {
		t.Fatalf("solana signature %q", solSig)
	}
	flipped := bytes.Clone(sb)
	flipped[0] ^= 1
	sFlip := bytes.Clone(sb)
	sFlip[63] ^= 0x80 // S + 2^255: not canonical
	for name, s := range map[string]string{
		"one bit of R":   base58.Encode(flipped),
		"S not reduced":  base58.Encode(sFlip),
		"63 bytes":       base58.Encode(sb[:63]),
		"65 bytes":       base58.Encode(append(bytes.Clone(sb), 0)),
		"bad base58":     "0" + solSig[1:],
		"hex":            "0x" + hex.EncodeToString(sb),
		"evm signature":  sig,
		"with 0x prefix": "0x" + solSig,
	} {
		r := prepareWallet(t, in, key, map[string]string{"wallet": sw.Address, "message": solMsg, "signed_bytes": s})
		if r.Env.Status != "invalid_signature" {
			t.Fatalf("solana %s: got %d %s, want invalid_signature", name, r.Code, r.Raw)
		}
		expect(t, r, 400, "invalid_signature", badSig)
	}
	r = prepareWallet(t, in, key, map[string]string{"wallet": sw.Address, "message": solMsg, "signed_bytes": solSig})
	expect(t, r, 201, "user_prepared", "User prepared for KYC via wallet")
}

// ---------------------------------------------------------------- §6 linking, §7, §8

// ---------------------------------------------------------------- concurrency

// race sends every body to prepare-wallet at once and counts the outcomes
// as "code status".
func race(t testing.TB, in *instance, key string, bodies []map[string]string) map[string]int {
	t.Helper()
	got := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r, err := in.try("POST", "/kyc/prepare-wallet", key, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				got["error: "+err.Error()]++
				return
			}
			got[fmt.Sprintf("%d %s", r.Code, r.Env.Status)]++
		}()
	}
	close(gate)
	wg.Wait()
	return got
}

// TestWalletConcurrentPrepare: one challenge sent by 20 requests at once is
// accepted exactly once; one new wallet proven with two challenges at once
// becomes one person; two new wallets naming one new email at once both
// hold it pending.
func TestWalletConcurrentPrepare(t *testing.T) {
	t.Parallel()
	needSigner(t)
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Race", "--rate-limit-per-minute", "0")
	const fresh = "fresh@example.com"

	keys := []walletKey{testWallet(t, "solana", 2), testWallet(t, "solana", 1), testWallet(t, "solana", 1),
		testWallet(t, "evm", 0), testWallet(t, "evm", 1)}
	jobs := make([]signJob, len(keys))
	for i, k := range keys {
		jobs[i] = signJob{k, challengeFor(t, in, key, k.Address)}
	}
	sigs := signAll(t, jobs...)
	bodies := make([]map[string]string, len(jobs))
	for i, j := range jobs {
		bodies[i] = map[string]string{"wallet": j.key.Address, "message": j.msg, "signed_bytes": sigs[i]}
	}

	t.Run("one challenge, 20 requests", func(t *testing.T) {
		same := make([]map[string]string, 20)
		for i := range same {
			same[i] = bodies[0]
		}
		got := race(t, in, key, same)
		if got["201 user_prepared"] != 1 || got["400 challenge_not_found"] != 19 || len(got) != 2 {
			t.Fatalf("outcomes %v, want one 201 user_prepared and 19 challenge_not_found", got)
		}
		expect(t, wcall(t, in, "GET", statusQuery("", keys[0].Address), key, nil), 404, "kyc_not_found")
	})

	t.Run("one wallet, two challenges", func(t *testing.T) {
		got := race(t, in, key, bodies[1:3])
		if got["201 user_prepared"] != 1 || got["200 user_already_prepared"] != 1 || len(got) != 2 {
			t.Fatalf("outcomes %v, want one 201 and one 200", got)
		}
		expect(t, wcall(t, in, "GET", statusQuery("", keys[1].Address), key, nil), 404, "kyc_not_found")
	})

	t.Run("two wallets, one new email", func(t *testing.T) {
		// Naming an address is harmless: both wallets hold it pending, and
		// neither is found by it until one of them proves it (docs/api.md §6.1).
		for _, b := range bodies[3:5] {
			b["email"] = fresh
		}
		got := race(t, in, key, bodies[3:5])
		if got["201 user_prepared"] != 2 || len(got) != 1 {
			t.Fatalf("outcomes %v, want two 201 user_prepared", got)
		}
		expect(t, wcall(t, in, "GET", statusQuery(fresh, ""), key, nil), 404, "user_not_found")
		for _, b := range bodies[3:5] {
			expect(t, wcall(t, in, "GET", statusQuery("", b["wallet"]), key, nil), 404, "kyc_not_found")
		}
	})
}
