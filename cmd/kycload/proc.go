package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildKycgate compiles ./cmd/kycgate of the module we run in.
func buildKycgate(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (pass -kycgate PATH instead)", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the kycgate module (pass -kycgate PATH)")
	}
	bin := filepath.Join(dir, "kycgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kycgate")
	cmd.Dir = filepath.Dir(mod)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kycgate: %w", err)
	}
	return bin, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// proc is a server we started as a subprocess.
type proc struct {
	name string
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	log  string // its stderr+stdout
	done chan error
}

// startProc runs bin with env (added to ours), output to logPath, and waits
// until GET base+readyPath answers 200.
func startProc(ctx context.Context, name, bin string, args, env []string, port int, logPath, readyPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the harness
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("%s exited during start-up (%v); log: %s\n%s", name, err, logPath, tail(logPath, 20))
		default:
		}
		resp, err := http.Get(p.base + readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("%s not ready after 30 s; log: %s\n%s", name, logPath, tail(logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop asks for a graceful shutdown, then kills after 15 s.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// memory reads VmRSS and VmHWM (peak RSS) in KiB from /proc.
func (p *proc) memory() (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// cpu reads the process's user+system CPU time so far.
func (p *proc) cpu() time.Duration {
	if p == nil {
		return 0
	}
	return procCPU(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
}

func selfCPU() time.Duration { return procCPU("/proc/self/stat") }

func procCPU(path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// countErrors counts log lines at level ERROR in a kycgate log.
func countErrors(path string) (int, string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, first := 0, ""
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"level":"ERROR"`) {
			if n == 0 {
				first = sc.Text()
			}
			n++
		}
	}
	return n, first
}
