package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
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

	// Another user's code arrives between the send and the read, as on a
	// server others use too: the read must still get this user's code.
	email := quickstart(t, readme, "email")
	before, after, ok := strings.Cut(email, "\n# 3.")
	if !ok {
		t.Fatal("the email quickstart has no step 3 (reading the code)")
	}
	other := `curl -s -o /dev/null -X POST http://127.0.0.1:8080/kyc/prepare -H "x-api-key: $KEY" -H 'Content-Type: application/json' -d '{"email":"someone-else@example.com"}'
curl -s -o /dev/null -X POST http://127.0.0.1:8080/security/email/send-otp -H "x-api-key: $KEY" -H 'Content-Type: application/json' -d '{"email":"someone-else@example.com"}'`
	email = before + "\n" + other + "\n# 3." + after
	script := email + "\necho '=== approve'\n" + quickstart(t, readme, "approve") +
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

// mdLink is a Markdown link or image: [text](target) or ![alt](target).
var mdLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)

// TestDocLinks holds every relative link in the repository's Markdown to a
// file in the repository (a newcomer's clone has nothing beside it), and
// every #anchor to a heading of the file it names.
func TestDocLinks(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, m := range mdLink.FindAllStringSubmatch(stripCode(string(text)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			name, anchor, _ := strings.Cut(target, "#")
			path := file
			if name != "" {
				path = filepath.Join(filepath.Dir(file), filepath.FromSlash(name))
				if r, err := filepath.Rel(root, path); err != nil || strings.HasPrefix(r, "..") {
					t.Errorf("%s: link %s leaves the repository", rel, target)
					continue
				}
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %s: no such file in the repository", rel, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(path, ".md") {
				body, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(anchors(string(body)), anchor) {
					t.Errorf("%s: link %s: no heading makes the anchor #%s", rel, target, anchor)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d relative links checked in %d files: is the pattern wrong?", checked, len(files))
	}
}

// fence is a fenced code block, whose brackets are code, not links.
var fence = regexp.MustCompile("(?ms)^```.*?^```")

func stripCode(s string) string { return fence.ReplaceAllString(s, "") }

// anchors lists the anchors GitHub makes for a Markdown file's headings:
// lower case, punctuation dropped, spaces to hyphens.
func anchors(md string) []string {
	var out []string
	for _, line := range strings.Split(stripCode(md), "\n") {
		h := strings.TrimLeft(line, "#")
		if h == line || !strings.HasPrefix(h, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(h)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}
