package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPodmanImage (opt-in: KYCGATE_TEST_PODMAN=1, needs podman and no
// registry) builds the binary as the Dockerfile's build stage does, then the
// Dockerfile's own runtime stage on scratch instead of distroless (plus the
// host's CA certificates), runs it with podman and checks that it serves
// /healthz as a non-root user, that `kycgate healthcheck` passes inside it,
// and that `kycgate version` says what the binary built here says (the
// commit, when Go stamped one: a clone, not a git worktree).
func TestPodmanImage(t *testing.T) {
	if os.Getenv("KYCGATE_TEST_PODMAN") != "1" {
		t.Skip("set KYCGATE_TEST_PODMAN=1 to build and run the image with podman")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("KYCGATE_TEST_PODMAN=1 but podman is missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "out", "kycgate")
	buildBinary(t, ctx, bin)
	want, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		t.Fatalf("kycgate version: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "out", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeRuntimeContainerfile(t, dir)

	var tag [6]byte
	rand.Read(tag[:])
	image := "localhost/kycgate-test:" + hex.EncodeToString(tag[:])
	podman(t, ctx, "build", "--format", "docker", "-t", image, dir)
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", image).Run() })

	out := podman(t, ctx, "run", "--rm", image, "version")
	if !strings.HasPrefix(out, "kycgate ") || out != string(want) {
		t.Errorf("kycgate version in the image: %q, want %q", out, want)
	}

	// KYCGATE_DEV=1: the image listens on 0.0.0.0, which alone turns the
	// development stand-ins off.
	id := strings.TrimSpace(podman(t, ctx, "run", "-d", "-e", "KYCGATE_DEV=1", "-p", "127.0.0.1::8080",
		"--read-only", "--cap-drop", "ALL", image))
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("podman", "logs", id).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		exec.Command("podman", "rm", "-f", id).Run()
	})
	hostPort := strings.TrimSpace(podman(t, ctx, "port", id, "8080/tcp"))
	if hostPort == "" {
		t.Fatal("the container publishes no port: it exited")
	}
	waitHealthy(t, ctx, "http://"+hostPort+"/healthz")
	if out := podman(t, ctx, "exec", id, "/usr/local/bin/kycgate", "healthcheck"); !strings.Contains(out, "200") {
		t.Errorf("kycgate healthcheck inside the container: %q", out)
	}
	pid := strings.TrimSpace(podman(t, ctx, "inspect", "--format", "{{.State.Pid}}", id))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("read the container process's status: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
			t.Errorf("kycgate runs as root in the container: %s", line)
		}
	}
}

// buildBinary builds kycgate with the Dockerfile's flags, stamping the
// commit when the tree is a git checkout, as the Dockerfile does.
func buildBinary(t *testing.T, ctx context.Context, out string) {
	t.Helper()
	vcs := exec.CommandContext(ctx, "git", "-C", "..", "rev-parse", "--is-inside-work-tree").Run() == nil
	flag := "-buildvcs=false"
	if vcs {
		flag = "-buildvcs=true"
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", flag, "-ldflags=-s -w", "-o", out, "./cmd/kycgate")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// writeRuntimeContainerfile writes the Dockerfile's runtime stage into dir,
// on scratch with the host's CA certificates, its COPY --from=build reading
// dir/out instead.
func writeRuntimeContainerfile(t *testing.T, dir string) {
	t.Helper()
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the host's CA certificates: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-certificates.crt"), certs, 0o644); err != nil {
		t.Fatal(err)
	}
	st := stages(parseDockerfile(t, "../Dockerfile"))
	var b strings.Builder
	b.WriteString("FROM scratch\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n")
	for _, in := range st[len(st)-1][1:] {
		args := in.args
		if in.cmd == "COPY" {
			args = strings.Replace(strings.Replace(args, "--from=build ", "", 1), " /out/", " out/", 1)
		}
		b.WriteString(in.cmd + " " + args + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func podman(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// waitHealthy polls url until it answers 200: the container starts on its
// own, so there is no event to wait for.
func waitHealthy(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = &httpStatus{resp.Status}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never answered 200: %v", url, last)
		case <-tick.C:
		}
	}
}

type httpStatus struct{ status string }

func (e *httpStatus) Error() string { return e.status }
