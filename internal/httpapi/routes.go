package httpapi

import "net/http"

// routes is the whole HTTP surface in one place. Every KYC route is served
// at its bare path and under /api (api.md §1).
func (s *Server) routes(mounts map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	kycRoutes := []route{
		{"/kyc/prepare", map[string]http.Handler{"POST": s.kyc(s.prepare)}},
		{"/security/email/send-otp", map[string]http.Handler{"POST": s.kyc(s.sendOTP)}},
		{"/security/email/verify-otp", map[string]http.Handler{"POST": s.kyc(s.verifyOTP)}},
		{"/security/wallet/challenge", map[string]http.Handler{"POST": s.kyc(s.challenge)}},
		{"/kyc/prepare-wallet", map[string]http.Handler{"POST": s.kyc(s.prepareWallet)}},
		{"/kyc/create/{kyc_type}", map[string]http.Handler{"POST": s.kyc(s.createSession)}},
		{"/kyc/status", map[string]http.Handler{"GET": s.kyc(s.status)}},
		// Products answer even when kyc is disabled: that is what they report.
		{"/config/products", map[string]http.Handler{"GET": s.authed(s.products)}},
		{"/webhooks/didit", map[string]http.Handler{"POST": http.HandlerFunc(s.diditWebhook)}},
	}
	for _, rt := range kycRoutes {
		h := s.methodRouter(rt)
		mux.Handle(rt.path, h)
		mux.Handle("/api"+rt.path, h)
	}
	mux.Handle("/healthz", s.methodRouter(route{"/healthz", map[string]http.Handler{"GET": http.HandlerFunc(s.healthz)}}))
	mux.Handle("/readyz", s.methodRouter(route{"/readyz", map[string]http.Handler{"GET": http.HandlerFunc(s.readyz)}}))
	mux.Handle("/metrics", s.methodRouter(route{"/metrics", map[string]http.Handler{"GET": s.metrics}}))
	for prefix, h := range mounts {
		mux.Handle(prefix, h)
	}
	mux.HandleFunc("/", s.notFound)
	return s.common(mux)
}
