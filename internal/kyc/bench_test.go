package kyc

// Benchmarks of the service's own hot paths (no store, no network): the
// keyed hashes of one-time codes and API keys, code generation and email
// normalisation. They run in CI with -benchtime 1x.

import (
	"strconv"
	"testing"
)

// benchSvc is a Service with only a configuration: the hashes need no
// store or mailer (NewService would insist on both).
func benchSvc(b *testing.B) *Service {
	b.Helper()
	cfg := Config{Secret: []byte("benchmark-secret-0123456789abcdefghijklmnop")}
	cfg.defaults()
	return &Service{cfg: cfg}
}

// BenchmarkOTPHash is HMAC-SHA256 of a code under the server secret, as
// send-otp stores it and verify-otp compares it.
func BenchmarkOTPHash(b *testing.B) {
	s := benchSvc(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		_ = s.otpHash("tn_abcdefghijklmnopqrstuvwxyz", "ps_abcdefghijklmnopqrstuvwxyz", strconv.Itoa(100000+i%900000))
	}
}

// BenchmarkAPIKeyHash is the keyed hash every request's x-api-key goes
// through before the lookup.
func BenchmarkAPIKeyHash(b *testing.B) {
	s := benchSvc(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.apiKeyHash("kg_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmn")
	}
}

// BenchmarkRandomCode is a uniform six-digit code from the CSPRNG.
func BenchmarkRandomCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = randomCode()
	}
}

func BenchmarkNormalizeEmail(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := NormalizeEmail("  Some.Person+tag@Example.COM "); !ok {
			b.Fatal("rejected")
		}
	}
}
