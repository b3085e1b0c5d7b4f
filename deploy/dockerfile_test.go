package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
	line int
}

// parseDockerfile reads the instructions of a Dockerfile. It knows only
// what this repository's Dockerfile uses: comments, parser directives,
// backslash continuations.
func parseDockerfile(t *testing.T, name string) []instruction {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // a comment inside a continuation is dropped too, as Docker does
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends inside a continuation (line %d)", name, start)
	}
	return out
}

// stages splits the instructions at each FROM; stage 0 holds the ARGs
// before the first FROM.
func stages(ins []instruction) [][]instruction {
	st := [][]instruction{nil}
	for _, in := range ins {
		if in.cmd == "FROM" {
			st = append(st, nil)
		}
		st[len(st)-1] = append(st[len(st)-1], in)
	}
	return st
}

func find(st []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range st {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goMinor is go.mod's Go version without the patch: "1.26".
func goMinor(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod names no go version")
	}
	return string(m[1])
}

// TestDockerfile: the image is built with go.mod's Go, statically
// (CGO_ENABLED=0), trimmed and VCS-stamped, and runs kycgate as a
// non-root user listening on all interfaces at 8080, with /data for
// SQLite and a HEALTHCHECK it can run without a shell.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	st := stages(parseDockerfile(t, "../Dockerfile"))
	if len(st) < 3 {
		t.Fatalf("want a multi-stage build (a build stage and a runtime stage), got %d stage(s)", len(st)-1)
	}
	args := map[string]string{}
	for _, a := range find(st[0], "ARG") {
		k, v, _ := strings.Cut(a.args, "=")
		args[k] = v
	}
	base := func(from instruction) string {
		img, _, _ := strings.Cut(from.args, " ")
		if name, ok := strings.CutPrefix(img, "${"); ok {
			return args[strings.TrimSuffix(name, "}")]
		}
		return img
	}
	build, runtime := st[1], st[len(st)-1]
	goImg := base(build[0])
	if !regexp.MustCompile(`^(docker\.io/(library/)?)?golang:` + regexp.QuoteMeta(goMinor(t)) + `(\.\d+)?-`).MatchString(goImg) {
		t.Errorf("build stage FROM %q: want the official golang image pinned to go.mod's Go %s by tag", goImg, goMinor(t))
	}
	if img := base(runtime[0]); !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
		t.Errorf("runtime stage FROM %q: want an image pinned by tag", img)
	}

	var goBuild string
	for _, r := range find(build, "RUN") {
		if strings.Contains(r.args, "go build") {
			goBuild = r.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs", `-ldflags="-s -w"`, "./cmd/kycgate"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("the go build RUN lacks %s: %q", want, goBuild)
		}
	}

	users := find(runtime, "USER")
	if len(users) == 0 {
		t.Error("runtime stage has no USER: kycgate would run as the base image's user")
	} else if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "root" || u == "0" || u == "" {
		t.Errorf("runtime USER %q is root", users[len(users)-1].args)
	}
	has := func(cmd, want string) {
		for _, in := range find(runtime, cmd) {
			if strings.Contains(in.args, want) {
				return
			}
		}
		t.Errorf("runtime stage: no %s with %q", cmd, want)
	}
	has("EXPOSE", "8080")
	has("ENV", "KYCGATE_ADDR=0.0.0.0:8080")
	has("ENV", "KYCGATE_DATABASE_URL=sqlite:/data/")
	has("VOLUME", "/data")
	has("HEALTHCHECK", `"healthcheck"`)

	eps := find(runtime, "ENTRYPOINT")
	if len(eps) != 1 {
		t.Fatalf("runtime stage: want one ENTRYPOINT, got %d", len(eps))
	}
	var ep []string
	if err := json.Unmarshal([]byte(eps[0].args), &ep); err != nil || len(ep) == 0 {
		t.Fatalf("ENTRYPOINT %s: want the exec (JSON) form, so signals reach kycgate (%v)", eps[0].args, err)
	}
	copied := false
	for _, c := range find(runtime, "COPY") {
		copied = copied || strings.HasSuffix(c.args, " "+ep[0])
	}
	if !copied {
		t.Errorf("ENTRYPOINT %s: nothing is copied there", ep[0])
	}
	for _, hc := range find(runtime, "HEALTHCHECK") {
		if !strings.Contains(hc.args, `"`+ep[0]+`"`) {
			t.Errorf("HEALTHCHECK %s does not run the binary %s (the runtime image has no shell)", hc.args, ep[0])
		}
	}
}

// TestDockerignore: the build context keeps .git (the binary names its
// commit) and every tracked file: a tracked file left out would make Go
// stamp the image's binary "with uncommitted changes".
func TestDockerignore(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(b)) {
		if p := strings.TrimSpace(line); p != "" && !strings.HasPrefix(p, "#") {
			if strings.HasPrefix(p, "!") {
				t.Fatalf(".dockerignore: %q: exceptions are not checked by this test; extend it", p)
			}
			patterns = append(patterns, strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/"))
		}
	}
	if ignored(patterns, ".git/HEAD") || ignored(patterns, ".git") {
		t.Error(".dockerignore leaves out .git: kycgate version in the image would name no commit")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: cannot list the tracked files")
	}
	out, err := exec.Command("git", "-C", "..", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): no tracked files to compare", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if ignored(patterns, f) {
			t.Errorf(".dockerignore leaves out the tracked file %s", f)
		}
	}
	if !ignored(patterns, "deploy/kycgate.env") {
		t.Error(".dockerignore lets deploy/kycgate.env (secrets) into the build context")
	}
}

// ignored reports whether a .dockerignore pattern leaves out name or one
// of its folders, with Docker's rules for what this repository uses:
// patterns are rooted at the context, "**/" matches any folders.
func ignored(patterns []string, name string) bool {
	for _, p := range patterns {
		for dir := name; dir != "." && dir != "/"; dir = path.Dir(dir) {
			if matchPattern(p, dir) {
				return true
			}
		}
	}
	return false
}

func matchPattern(p, name string) bool {
	if rest, ok := strings.CutPrefix(p, "**/"); ok {
		parts := strings.Split(name, "/")
		for i := range parts {
			if matchPattern(rest, strings.Join(parts[i:], "/")) {
				return true
			}
		}
		return false
	}
	ok, _ := filepath.Match(p, name)
	return ok
}
