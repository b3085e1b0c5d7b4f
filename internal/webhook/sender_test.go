package webhook_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/webhook"
)

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true, "8.8.8.8": true,
		"10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "127.0.0.1": false, "127.9.9.9": false,
		"::1": false, "169.254.169.254": false, "fe80::1": false, "0.0.0.0": false, "::": false,
		"224.0.0.1": false, "ff02::1": false, "100.64.0.1": false, "100.127.255.254": false, "fd00::1": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "255.255.255.255": false,
	} {
		if got := webhook.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://hooks.example.com/kyc", false, true},
		{"https://93.184.216.34:8443/x", false, true},
		{"http://hooks.example.com/kyc", false, false},
		{"http://127.0.0.1:9000/kyc", true, true},
		{"https://10.0.0.5/kyc", false, false},
		{"https://[::1]/kyc", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://100.64.1.1/", false, false},
		{"https://localhost/", false, false},
		{"https://a.localhost./", false, false},
		{"https://user:pw@hooks.example.com/", false, false},
		{"ftp://hooks.example.com/", true, false},
		{"https:///nohost", false, false},
		{"not a url", false, false},
	} {
		err := webhook.CheckURL(c.url, c.allowPrivate)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, webhook.ErrRefused)) {
			t.Errorf("CheckURL(%q, allowPrivate=%v) = %v, want ok=%v", c.url, c.allowPrivate, err, c.ok)
		}
	}
}

// receiver counts the requests it gets.
func receiver(t *testing.T, tls bool, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	f := func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(http.HandlerFunc(f))
	} else {
		srv = httptest.NewServer(http.HandlerFunc(f))
	}
	t.Cleanup(srv.Close)
	return srv, &n
}

func send(s *webhook.Sender, url string) (int, error) {
	return s.Send(context.Background(), kyc.WebhookRequest{URL: url, Body: []byte(`{}`),
		Header: map[string]string{"content-type": "application/json"}})
}

// A private address is refused before anything is sent.
func TestSendRefusesPrivateIP(t *testing.T) {
	srv, hits := receiver(t, true, func(w http.ResponseWriter, _ *http.Request) {})
	_, err := send(webhook.NewSender(webhook.Options{}), srv.URL) // https://127.0.0.1:port
	if !errors.Is(err, webhook.ErrRefused) {
		t.Fatalf("send to %s = %v, want refused", srv.URL, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the receiver was reached")
	}
}

// A public-looking name that resolves to 127.0.0.1 (a rebinding name) is
// refused at connect time, after DNS.
func TestSendRefusesNameResolvingToLoopback(t *testing.T) {
	srv, hits := receiver(t, true, func(w http.ResponseWriter, _ *http.Request) {})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	res := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	url := "https://hooks.rebind.example:" + port + "/kyc"
	if err := webhook.CheckURL(url, false); err != nil {
		t.Fatalf("CheckURL(%s) = %v: the name itself is fine", url, err)
	}
	_, err := send(webhook.NewSender(webhook.Options{Resolver: res}), url)
	if !errors.Is(err, webhook.ErrRefused) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("send = %v, want refused at 127.0.0.1", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the receiver was reached")
	}
	// The same name with the setting reaches the receiver (TLS then fails
	// on the test certificate, but the connection was made).
	if _, err := send(webhook.NewSender(webhook.Options{Resolver: res, AllowPrivate: true}), url); errors.Is(err, webhook.ErrRefused) {
		t.Fatalf("with AllowPrivate: %v", err)
	}
}

// A redirect is the answer, never followed: the redirect's target gets
// nothing.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	inner, innerHits := receiver(t, false, func(w http.ResponseWriter, _ *http.Request) {})
	outer, outerHits := receiver(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/admin", http.StatusTemporaryRedirect)
	})
	status, err := send(webhook.NewSender(webhook.Options{AllowPrivate: true}), outer.URL)
	if err != nil || status != http.StatusTemporaryRedirect {
		t.Fatalf("send = %d, %v; want the 307 itself", status, err)
	}
	if outerHits.Load() != 1 || innerHits.Load() != 0 {
		t.Fatalf("outer hit %d times, inner %d times; want 1 and 0", outerHits.Load(), innerHits.Load())
	}
}

// A large response is read only up to the limit.
func TestSendReadsLittleOfTheResponse(t *testing.T) {
	srv, _ := receiver(t, false, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 1<<20)
		for range 64 { // 64 MiB unless the client stops reading
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	status, err := send(webhook.NewSender(webhook.Options{AllowPrivate: true}), srv.URL)
	if err != nil || status != 200 {
		t.Fatalf("send = %d, %v", status, err)
	}
}

// fakeDNS is a resolver whose every A query answers ip (and AAAA none),
// served by a real UDP DNS responder on loopback.
func fakeDNS(t *testing.T, ip netip.Addr) *net.Resolver {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], ip); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// dnsAnswer answers one query: the question echoed, and an A record for
// an A question.
func dnsAnswer(q []byte, ip netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	end := i + 5 // the name's terminator, type, class
	qtype := binary.BigEndian.Uint16(q[i+1:])
	resp := append([]byte{}, q[:end]...)
	binary.BigEndian.PutUint16(resp[2:], 0x8180) // response, recursion desired and available
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	if qtype != 1 {
		binary.BigEndian.PutUint16(resp[6:], 0)
		return resp
	}
	binary.BigEndian.PutUint16(resp[6:], 1)
	a := ip.As4()
	resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
	return append(resp, a[:]...)
}
