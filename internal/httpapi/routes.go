package httpapi

import (
	"net/http"

	"github.com/kycgate/kycgate/internal/kyc"
)

// fail500 is an endpoint's documented 500; the public docs name them
// differently per endpoint (docs/api.md §2, §3, §7, §8).
type fail500 struct{ code, message string }

var (
	failPrepare  = fail500{kyc.CodeServerFailed, "Server failed on KYC prepare"}
	failSecurity = fail500{kyc.CodeServerError, "Server failed, try again later"}
	failCreate   = fail500{kyc.CodeServerFailed, "Server failed on KYC"}
	failStatus   = fail500{kyc.CodeServerFailed, "Server failed on KYC status"}
)

// routes is the whole HTTP surface in one place. Every KYC route is served
// at its bare path and under /api (docs/api.md §1).
func (s *Server) routes(mounts map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	kycRoutes := []route{
		{"/kyc/prepare", map[string]http.Handler{"POST": s.kyc(s.prepare, failPrepare)}},
		{"/security/email/send-otp", map[string]http.Handler{"POST": s.kyc(s.sendOTP, failSecurity)}},
		{"/security/email/verify-otp", map[string]http.Handler{"POST": s.kyc(s.verifyOTP, failSecurity)}},
		{"/security/wallet/challenge", map[string]http.Handler{"POST": s.kyc(s.challenge, failSecurity)}},
		{"/kyc/prepare-wallet", map[string]http.Handler{"POST": s.kyc(s.prepareWallet, failPrepare)}},
		{"/kyc/create/{kyc_type}", map[string]http.Handler{"POST": s.kyc(s.createSession, failCreate)}},
		// Status authenticates itself: key and status are one store read.
		{"/kyc/status", map[string]http.Handler{"GET": http.HandlerFunc(s.status)}},
		// Products answer even when kyc is disabled: that is what they report.
		{"/config/products", map[string]http.Handler{"GET": s.authed(s.products, failSecurity)}},
		{"/webhooks/didit", map[string]http.Handler{"POST": http.HandlerFunc(s.diditWebhook)}},
	}
	for _, rt := range kycRoutes {
		h := s.methodRouter(rt)
		mux.Handle(rt.path, h)
		mux.Handle("/api"+rt.path, h)
	}
	mux.Handle("/healthz", s.methodRouter(route{"/healthz", map[string]http.Handler{"GET": http.HandlerFunc(s.healthz)}}))
	mux.Handle("/readyz", s.methodRouter(route{"/readyz", map[string]http.Handler{"GET": http.HandlerFunc(s.readyz)}}))
	for prefix, h := range mounts {
		mux.Handle(prefix, h)
	}
	mux.HandleFunc("/", s.notFound)
	return s.common(mux)
}
