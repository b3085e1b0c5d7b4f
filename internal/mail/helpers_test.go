package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/mail/mailtest"
)

const testFrom = "kycgate <no-reply@kycgate.test>"

// logBuffer collects log output and can react to records, which lets tests
// act at a precise point (say, while SendCode waits to retry) without sleeps.
type logBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	h        slog.Handler
	onRecord func(slog.Record)
}

func newLogBuffer() *logBuffer {
	lb := &logBuffer{}
	lb.h = slog.NewTextHandler(lockedWriter{lb}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return lb
}

// lockedWriter is only written from Handle, which holds lb.mu.
type lockedWriter struct{ lb *logBuffer }

func (w lockedWriter) Write(p []byte) (int, error) { return w.lb.buf.Write(p) }

func (lb *logBuffer) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.buf.String()
}

func (lb *logBuffer) Enabled(context.Context, slog.Level) bool { return true }

func (lb *logBuffer) Handle(ctx context.Context, r slog.Record) error {
	lb.mu.Lock()
	err := lb.h.Handle(ctx, r)
	hook := lb.onRecord
	lb.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	return err
}

func (lb *logBuffer) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logView{lb: lb, h: lb.h.WithAttrs(attrs)}
}

func (lb *logBuffer) WithGroup(name string) slog.Handler {
	return &logView{lb: lb, h: lb.h.WithGroup(name)}
}

// logView shares the buffer and hook of its logBuffer.
type logView struct {
	lb *logBuffer
	h  slog.Handler
}

func (v *logView) Enabled(context.Context, slog.Level) bool { return true }
func (v *logView) Handle(ctx context.Context, r slog.Record) error {
	v.lb.mu.Lock()
	err := v.h.Handle(ctx, r)
	hook := v.lb.onRecord
	v.lb.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	return err
}
func (v *logView) WithAttrs(a []slog.Attr) slog.Handler {
	return &logView{lb: v.lb, h: v.h.WithAttrs(a)}
}
func (v *logView) WithGroup(n string) slog.Handler { return &logView{lb: v.lb, h: v.h.WithGroup(n)} }

// fastBackoff keeps retry tests quick; the real schedule is checked apart.
var fastBackoff = []time.Duration{time.Millisecond, 2 * time.Millisecond}

// newTestSMTP builds a sender for srv. url, when non-empty, replaces
// srv.URL() (to add credentials or starttls=required).
func newTestSMTP(t testing.TB, srv *mailtest.Server, url string, mut ...func(*Config)) (*SMTP, *logBuffer) {
	t.Helper()
	if url == "" {
		url = srv.URL()
	}
	logs := newLogBuffer()
	cfg := Config{URL: url, From: testFrom, Logger: slog.New(logs), Timeout: time.Minute}
	if pool := srv.RootCAs(); pool != nil {
		cfg.TLSConfig = &tls.Config{RootCAs: pool}
	}
	for _, f := range mut {
		f(&cfg)
	}
	s, err := NewSMTP(cfg)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	s.backoff = fastBackoff
	t.Cleanup(func() { _ = s.Close() })
	return s, logs
}

// silentServer accepts TCP connections and never says a word, so a client
// blocks reading the greeting. Each accepted connection is announced.
func silentServer(t testing.TB) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			ch <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String(), ch
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
