package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/kycgate/kycgate/internal/kyc"
)

type stateData struct {
	EmailVerified  bool   `json:"email_verified"`
	WalletVerified *bool  `json:"wallet_verified,omitempty"`
	KYCApproved    bool   `json:"kyc_approved"`
	KYCStatus      string `json:"kyc_status"`
	EmailLink      string `json:"email_link,omitempty"`
}

func (s *Server) prepare(w http.ResponseWriter, r *http.Request) {
	const failMsg = "Server failed on KYC prepare"
	b, berr := decodeBody(w, r)
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	email, berr := b.str("email")
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	res, err := s.svc.Prepare(r.Context(), tenantOf(r.Context()), email)
	if err != nil {
		s.fail(w, r, err, kyc.CodeServerFailed, failMsg)
		return
	}
	if res.Created {
		respond(w, http.StatusCreated, "user_prepared", "User prepared for KYC, please verify your email", nil)
		return
	}
	respond(w, http.StatusOK, "user_already_prepared", "User already prepared for KYC", stateData{
		EmailVerified: res.State.EmailVerified, KYCApproved: res.State.KYCApproved, KYCStatus: res.State.KYCStatus})
}

func (s *Server) sendOTP(w http.ResponseWriter, r *http.Request) {
	b, berr := decodeBody(w, r)
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	f, berr := b.strs("email", "wallet")
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	if err := s.svc.SendOTP(r.Context(), tenantOf(r.Context()), kyc.OTPInput{Email: f[0], Wallet: f[1]}); err != nil {
		s.fail(w, r, err, kyc.CodeServerError, "Server failed, try again later")
		return
	}
	respond(w, http.StatusCreated, "otp_sent", "Verification code sent to your email", nil)
}

func (s *Server) verifyOTP(w http.ResponseWriter, r *http.Request) {
	b, berr := decodeBody(w, r)
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	f, berr := b.strs("email", "code", "wallet")
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	if err := s.svc.VerifyOTP(r.Context(), tenantOf(r.Context()), kyc.OTPInput{Email: f[0], Code: f[1], Wallet: f[2]}); err != nil {
		s.fail(w, r, err, kyc.CodeServerError, "Server failed, try again later")
		return
	}
	respond(w, http.StatusOK, "email_verified", "Email verified successfully", nil)
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	b, berr := decodeBody(w, r)
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	f, berr := b.strs("wallet", "purpose")
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	res, err := s.svc.Challenge(r.Context(), tenantOf(r.Context()), f[0], f[1])
	if err != nil {
		s.fail(w, r, err, kyc.CodeServerError, "Server failed, try again later")
		return
	}
	respond(w, http.StatusCreated, "challenge_created", "Sign this message with your wallet", map[string]string{
		"message": res.Message, "wallet": res.Wallet, "wallet_chain": res.Chain})
}

func (s *Server) prepareWallet(w http.ResponseWriter, r *http.Request) {
	b, berr := decodeBody(w, r)
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	f, berr := b.strs("wallet", "message", "signed_bytes", "email")
	if berr != nil {
		s.fail(w, r, berr, "", "")
		return
	}
	res, err := s.svc.PrepareWallet(r.Context(), tenantOf(r.Context()),
		kyc.PrepareWalletInput{Wallet: f[0], Message: f[1], SignedBytes: f[2], Email: f[3]})
	if err != nil {
		s.fail(w, r, err, kyc.CodeServerFailed, "Server failed on KYC prepare")
		return
	}
	wv := res.State.WalletVerified
	data := stateData{EmailVerified: res.State.EmailVerified, WalletVerified: &wv,
		KYCApproved: res.State.KYCApproved, KYCStatus: res.State.KYCStatus, EmailLink: res.State.EmailLink}
	if res.Created {
		respond(w, http.StatusCreated, "user_prepared", "User prepared for KYC via wallet", data)
		return
	}
	respond(w, http.StatusOK, "user_already_prepared", "User already prepared for KYC", data)
}

type sessionRef struct {
	SessionID  string `json:"session_id"`
	SessionURL string `json:"session_url"`
}

type createData struct {
	Success  bool       `json:"success"`
	Message  string     `json:"message"`
	Approved bool       `json:"approved,omitempty"`
	Session  sessionRef `json:"session"`
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	kycType := r.PathValue("kyc_type")
	var id kyc.Identity
	// The kyc_type check comes first (api.md §7 step 1), even before the body.
	if kycType == kyc.KYCTypePublic {
		b, berr := decodeBody(w, r)
		if berr != nil {
			s.fail(w, r, berr, "", "")
			return
		}
		f, berr := b.strs("email", "wallet")
		if berr != nil {
			s.fail(w, r, berr, "", "")
			return
		}
		id = kyc.Identity{Email: f[0], Wallet: f[1]}
	} else {
		io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
	}
	res, err := s.svc.CreateSession(r.Context(), tenantOf(r.Context()), kycType, id)
	if err != nil {
		s.fail(w, r, err, kyc.CodeServerFailed, "Server failed on KYC")
		return
	}
	respond(w, http.StatusCreated, "kyc_session_created", "KYC session created", createData{
		Success: true, Message: res.Kind, Approved: res.Approved,
		Session: sessionRef{SessionID: res.Session.ID, SessionURL: res.Session.URL}})
}

type statusData struct {
	Status        string          `json:"status"`
	Approved      bool            `json:"approved"`
	SessionID     string          `json:"session_id"`
	SessionStatus string          `json:"session_status"`
	SessionURL    string          `json:"session_url"`
	IPInfo        json.RawMessage `json:"ip_info"`
	IsBlocklisted bool            `json:"is_blocklisted"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := kyc.Identity{Email: q.Get("email"), Wallet: q.Get("wallet")}
	t, keyHash, read, res, err := s.svc.AuthenticatedStatus(r.Context(), r.Header.Get("x-api-key"), id)
	if !s.admit(w, r, t, keyHash, err, failStatus, true) {
		return
	}
	if !read {
		res, err = s.svc.Status(r.Context(), t, id)
	}
	if err != nil {
		s.fail(w, r, err, failStatus.code, failStatus.message)
		return
	}
	ip := res.Session.IPInfo
	if len(ip) == 0 {
		ip = json.RawMessage("[]")
	}
	respond(w, http.StatusOK, "kyc_status_retrieved", "KYC status retrieved", statusData{
		Status: res.Status, Approved: res.Approved, SessionID: res.Session.ID, SessionStatus: res.Session.Status,
		SessionURL: res.Session.URL, IPInfo: ip, IsBlocklisted: res.Session.Blocklisted})
}

func (s *Server) products(w http.ResponseWriter, r *http.Request) {
	respond(w, http.StatusOK, "products_retrieved", "Products retrieved",
		map[string]bool{"kyc": tenantOf(r.Context()).KYCEnabled})
}

const maxWebhookBody = 1 << 20

func (s *Server) diditWebhook(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			respond(w, http.StatusRequestEntityTooLarge, codePayloadTooLarge, "Request body is too large", nil)
			return
		}
		respond(w, http.StatusBadRequest, kyc.CodeInvalidBody, "Request body must be a JSON object", nil)
		return
	}
	if s.webhooks == nil {
		respond(w, http.StatusUnauthorized, codeWebhookSignature, "Invalid webhook signature", nil)
		return
	}
	if err := s.webhooks.Verify(r.Header, raw, s.now()); err != nil {
		s.log.WarnContext(r.Context(), "webhook rejected", "request_id", requestID(r.Context()), "reason", err.Error())
		respond(w, http.StatusUnauthorized, codeWebhookSignature, "Invalid webhook signature", nil)
		return
	}
	ev, err := s.webhooks.Parse(raw)
	if errors.Is(err, ErrIgnoredEvent) {
		respond(w, http.StatusOK, "webhook_received", "Webhook received", nil)
		return
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "webhook unreadable", "request_id", requestID(r.Context()), "err", err)
		respond(w, http.StatusBadRequest, kyc.CodeInvalidBody, "Request body must be a JSON object", nil)
		return
	}
	if ev.At.IsZero() {
		// Verify refuses a body without its own time, so this is a verifier
		// that does not: never order decisions by an unsigned header.
		s.log.WarnContext(r.Context(), "webhook rejected", "request_id", requestID(r.Context()), "reason", "no event time in the signed body")
		respond(w, http.StatusUnauthorized, codeWebhookSignature, "Invalid webhook signature", nil)
		return
	}
	if err := s.svc.HandleEvent(r.Context(), ev); err != nil {
		// A 5xx makes Didit retry, which is what we want for our own failures.
		s.fail(w, r, err, kyc.CodeServerError, "Server failed, try again later")
		return
	}
	respond(w, http.StatusOK, "webhook_received", "Webhook received", nil)
}
