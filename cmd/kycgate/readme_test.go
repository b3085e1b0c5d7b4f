package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// quickstart returns the shell block the README marks <!-- quickstart:name -->.
func quickstart(t *testing.T, readme, name string) string {
	t.Helper()
	re := regexp.MustCompile("(?s)<!-- quickstart:" + name + " -->\n```sh\n(.*?)```")
	m := re.FindStringSubmatch(readme)
	if m == nil {
		t.Fatalf("README has no ```sh block marked quickstart:%s", name)
	}
	return m[1]
}

// TestReadmeQuickstarts runs the README's quickstarts as a reader pastes
// them, in one shell, against a running kycgate with its development
// mailbox and simulator: the email path, the approval by curl, then the
// wallet path with a fresh test key. Only the address (the test server's
// port) and `go run ./cmd/kycgate` (a built binary) are substituted.
func TestReadmeQuickstarts(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "sed", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the README's quickstarts need it", tool)
		}
	}
	needSigner(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	env := newEnv(t, "") // the development mailbox, as a reader's first run has
	in := start(t, env)
	bin := rpBinary(t)

	script := quickstart(t, readme, "email") + "\necho '=== approve'\n" + quickstart(t, readme, "approve") +
		"\necho '=== wallet'\n" + quickstart(t, readme, "wallet") + "\necho \"=== key $KEY\"\n"
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", in.URL)
	script = strings.ReplaceAll(script, "go run ./cmd/kycgate", bin)
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("quickstarts: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	email, rest, _ := strings.Cut(out.String(), "=== approve\n")
	approve, rest, _ := strings.Cut(rest, "=== wallet\n")
	wallet, key, _ := strings.Cut(rest, "=== key ")
	key = strings.TrimSpace(key)
	for _, c := range []struct{ part, text, want string }{
		{"email", email, `"status":"user_prepared"`},
		{"email", email, `"status":"otp_sent"`},
		{"email", email, `"status":"email_verified"`},
		{"email", email, `"status":"kyc_session_created"`},
		{"approve", approve, `"status":"kyc_status_retrieved"`},
		{"wallet", wallet, `"status":"user_prepared"`},
		{"wallet", wallet, `"wallet_verified":true`},
		{"wallet", wallet, `"status":"kyc_session_created"`},
		{"wallet", wallet, `"status":"kyc_status_retrieved"`},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("the %s quickstart printed no %s:\n%s\nstderr:\n%s", c.part, c.want, c.text, errb.String())
		}
	}
	// The approval arrives by the simulator's webhook, a moment after the
	// click: the README says so, and the status turns approved.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var st struct{ Status string }
		r := in.call("GET", "/kyc/status?email=user@example.com", key, nil)
		r.data(t, &st)
		if st.Status == "approved" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after the approve quickstart stayed %q", st.Status)
		}
		<-tick.C
	}
}
