package mail

import (
	"context"
	"fmt"
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/mail/mailtest"
)

func BenchmarkRender(b *testing.B) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	r, err := newRenderer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.render(kyc.CodeMail{To: "user@example.com", Code: "123456"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSendCodeLoopback(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		srv := mailtest.NewServer(b)
		s, _ := newTestSMTP(b, srv, "")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := s.SendCode(ctx, kyc.CodeMail{To: fmt.Sprintf("u%d@example.com", i), Code: "123456"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("parallel", func(b *testing.B) {
		srv := mailtest.NewServer(b)
		s, _ := newTestSMTP(b, srv, "")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.SendCode(ctx, kyc.CodeMail{To: "p@example.com", Code: "123456"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
