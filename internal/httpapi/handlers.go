package httpapi

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

type stateData struct {
	EmailVerified  bool   `json:"email_verified"`
	WalletVerified *bool  `json:"wallet_verified,omitempty"`
	KYCApproved    bool   `json:"kyc_approved"`
	KYCStatus      string `json:"kyc_status"`
	EmailLink      string `json:"email_link,omitempty"`
}

func (s *Server) prepare(w http.ResponseWriter, r *http.Request) error {
	f, err := fields(w, r, "email")
	if err != nil {
		return err
	}
	res, err := s.svc.Prepare(r.Context(), tenantOf(r.Context()), f[0])
	if err != nil {
		return err
	}
	if res.Created {
		respond(w, http.StatusCreated, "user_prepared", "User prepared for KYC, please verify your email", nil)
		return nil
	}
	respond(w, http.StatusOK, "user_already_prepared", "User already prepared for KYC", stateData{
		EmailVerified: res.State.EmailVerified, KYCApproved: res.State.KYCApproved, KYCStatus: res.State.KYCStatus})
	return nil
}

func (s *Server) sendOTP(w http.ResponseWriter, r *http.Request) error {
	f, err := fields(w, r, "email", "wallet")
	if err != nil {
		return err
	}
	if err := s.svc.SendOTP(r.Context(), tenantOf(r.Context()), kyc.OTPInput{Email: f[0], Wallet: f[1]}); err != nil {
		return err
	}
	respond(w, http.StatusCreated, "otp_sent", "Verification code sent to your email", nil)
	return nil
}

func (s *Server) verifyOTP(w http.ResponseWriter, r *http.Request) error {
	f, err := fields(w, r, "email", "code", "wallet")
	if err != nil {
		return err
	}
	if err := s.svc.VerifyOTP(r.Context(), tenantOf(r.Context()), kyc.OTPInput{Email: f[0], Code: f[1], Wallet: f[2]}); err != nil {
		return err
	}
	respond(w, http.StatusOK, "email_verified", "Email verified successfully", nil)
	return nil
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) error {
	f, err := fields(w, r, "wallet", "purpose")
	if err != nil {
		return err
	}
	res, err := s.svc.Challenge(r.Context(), tenantOf(r.Context()), f[0], f[1])
	if err != nil {
		return err
	}
	respond(w, http.StatusCreated, "challenge_created", "Sign this message with your wallet", map[string]string{
		"message": res.Message, "wallet": res.Wallet, "wallet_chain": res.Chain})
	return nil
}

func (s *Server) prepareWallet(w http.ResponseWriter, r *http.Request) error {
	f, err := fields(w, r, "wallet", "message", "signed_bytes", "email")
	if err != nil {
		return err
	}
	res, err := s.svc.PrepareWallet(r.Context(), tenantOf(r.Context()),
		kyc.PrepareWalletInput{Wallet: f[0], Message: f[1], SignedBytes: f[2], Email: f[3]})
	if err != nil {
		return err
	}
	wv := res.State.WalletVerified
	data := stateData{EmailVerified: res.State.EmailVerified, WalletVerified: &wv,
		KYCApproved: res.State.KYCApproved, KYCStatus: res.State.KYCStatus, EmailLink: res.State.EmailLink}
	if res.Created {
		respond(w, http.StatusCreated, "user_prepared", "User prepared for KYC via wallet", data)
		return nil
	}
	respond(w, http.StatusOK, "user_already_prepared", "User already prepared for KYC", data)
	return nil
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

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	kycType := r.PathValue("kyc_type")
	var id kyc.Identity
	// The kyc_type check comes first (docs/api.md §7 step 1), even before the body.
	if kycType == kyc.KYCTypePublic {
		f, err := fields(w, r, "email", "wallet")
		if err != nil {
			return err
		}
		id = kyc.Identity{Email: f[0], Wallet: f[1]}
	} else {
		io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
	}
	res, err := s.svc.CreateSession(r.Context(), tenantOf(r.Context()), kycType, id)
	if err != nil {
		return err
	}
	respond(w, http.StatusCreated, "kyc_session_created", "KYC session created", createData{
		Success: true, Message: res.Kind, Approved: res.Approved,
		Session: sessionRef{SessionID: res.Session.ID, SessionURL: res.Session.URL}})
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := kyc.Identity{Email: q.Get("email"), Wallet: q.Get("wallet")}
	t, keyHash, read, res, err := s.svc.AuthenticatedStatus(r.Context(), r.Header.Get("x-api-key"), id)
	if t.ID == "" {
		s.refuse(w, r, err, failStatus)
		return
	}
	if !s.admit(w, r, t, keyHash, true) {
		return
	}
	if !read {
		res, err = s.svc.Status(r.Context(), t, id)
	}
	if err != nil {
		s.fail(w, r, err, failStatus.code, failStatus.message)
		return
	}
	// One type for this answer and the kyc.status.updated webhook's data,
	// so partners get the same object from both.
	respond(w, http.StatusOK, "kyc_status_retrieved", "KYC status retrieved", kyc.StatusDataOf(res))
}

func (s *Server) products(w http.ResponseWriter, r *http.Request) error {
	respond(w, http.StatusOK, "products_retrieved", "Products retrieved",
		map[string]bool{"kyc": tenantOf(r.Context()).KYCEnabled})
	return nil
}

// maxWebhookBody bounds a Didit webhook's body. Didit's deliveries are a
// few KB: the envelope (~400 bytes) plus, for a final status, the whole
// decision with every section (ID, liveness, face match, AML, IP, phone,
// email, warnings, matches, reviews), images as URLs, never inline. The
// largest the simulator sends (internal/didit/diditsim: several IP
// analyses, AML hits, blocklist matches) is 6.2 KB, the largest real one
// in internal/didit/testdata 3.5 KB; a decision with dozens of AML hits
// and long metadata stays in the tens of KB. 256 KiB is forty times the
// largest seen and several times that worst case, and a quarter of the
// 1 MiB it was, so a forged body costs a quarter of the work too (reading
// it, and canonicalising it: see didit.VerifyWebhook).
const maxWebhookBody = 256 << 10

// Verifying a webhook is the one piece of work anyone can make kycgate do
// without a key: a forged X-Signature-V2 makes it read the body (up to
// maxWebhookBody), then parse and re-serialise it, before the signature
// can be refused. Two bounds keep a flood of them from taking the server:
//
//   - memory: at most webhookHolders requests hold a body at once (reading
//     it, waiting for its check, checking it): 128, so 32 MiB of bodies at
//     most, where they would otherwise grow with the connections a flood
//     opens; thousands of Didit's few-KB deliveries a second pass through.
//   - CPU: at most webhookVerifiers checks run at once, half the CPUs the
//     Go runtime uses and at least one, leaving the other half to
//     everything else (the API's keyed requests above all). A genuine
//     delivery takes tens of microseconds to check, so even one slot
//     passes thousands a second.
//
// A request that finds either taken waits for its turn, first come first
// served, for at most webhookWait in all (and never past its own
// deadline); waiting for the first it holds no body, only its connection.
// Then it gets 503 server_busy with Retry-After: Didit retries 5xx
// answers, so a genuine delivery refused during a flood arrives again
// later (and the reconciler asks Didit about sessions left without news).
const (
	webhookHolders = 128
	webhookWait    = 2 * time.Second
)

func webhookVerifiers() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// diditWebhook checks the cheap things first: the declared size, then the
// headers (timestamp, a well-formed signature: see didit.CheckWebhookHeaders),
// then, holding one of the webhookHolders slots, the body's actual size,
// and only then, in one of the webhookVerifiers slots, the signatures over
// the body.
func (s *Server) diditWebhook(w http.ResponseWriter, r *http.Request) {
	s.metrics.Webhook(s.webhook(w, r))
}

// webhook answers a Didit delivery and returns its result for the metrics
// (one of the metrics.Webhook* names).
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) string {
	if r.ContentLength > maxWebhookBody {
		// Refused unread; the server closes the connection rather than
		// read what is left.
		respond(w, http.StatusRequestEntityTooLarge, codePayloadTooLarge, "Request body is too large", nil)
		return "too_large"
	}
	if s.webhooks == nil {
		respond(w, http.StatusUnauthorized, codeWebhookSignature, "Invalid webhook signature", nil)
		return "bad_signature"
	}
	if err := s.webhooks.CheckHeaders(r.Header, s.now()); err != nil {
		s.log.WarnContext(r.Context(), "webhook rejected", "request_id", requestID(r.Context()), "reason", err.Error())
		respond(w, http.StatusUnauthorized, codeWebhookSignature, "Invalid webhook signature", nil)
		return "bad_signature"
	}
	wait := time.NewTimer(webhookWait)
	defer wait.Stop()
	if !take(r, s.holders, wait) {
		s.webhookBusy(w, r, "webhook bodies at their bound")
		return "busy"
	}
	holding := true
	release := func() {
		if holding {
			holding = false
			<-s.holders
		}
	}
	defer release()
	raw, err := readBody(http.MaxBytesReader(w, r.Body, maxWebhookBody), r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			respond(w, http.StatusRequestEntityTooLarge, codePayloadTooLarge, "Request body is too large", nil)
			return "too_large"
		}
		respond(w, http.StatusBadRequest, kyc.CodeInvalidBody, "Request body must be a JSON object", nil)
		return "invalid"
	}
	if !take(r, s.verifiers, wait) {
		s.webhookBusy(w, r, "webhook checks at their bound")
		return "busy"
	}
	err = s.verify(r, raw)
	if err != nil {
		s.log.WarnContext(r.Context(), "webhook rejected", "request_id", requestID(r.Context()), "reason", err.Error())
		respond(w, http.StatusUnauthorized, codeWebhookSignature, "Invalid webhook signature", nil)
		return "bad_signature"
	}
	ev, err := s.webhooks.Parse(raw)
	release() // done with the body
	if errors.Is(err, ErrIgnoredEvent) {
		respond(w, http.StatusOK, "webhook_received", "Webhook received", nil)
		return "ignored"
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "webhook unreadable", "request_id", requestID(r.Context()), "err", err)
		respond(w, http.StatusBadRequest, kyc.CodeInvalidBody, "Request body must be a JSON object", nil)
		return "invalid"
	}
	if ev.At.IsZero() {
		// Verify refuses a body without its own time, so this is a verifier
		// that does not: never order decisions by an unsigned header.
		s.log.WarnContext(r.Context(), "webhook rejected", "request_id", requestID(r.Context()), "reason", "no event time in the signed body")
		respond(w, http.StatusUnauthorized, codeWebhookSignature, "Invalid webhook signature", nil)
		return "bad_signature"
	}
	ctx := kyc.WithActorRequest(r.Context(), kyc.Actor{Kind: kyc.ActorDidit}, requestID(r.Context()))
	if err := s.svc.HandleEvent(ctx, ev); err != nil {
		// A 5xx makes Didit retry, which is what we want for our own failures.
		s.fail(w, r, err, failSecurity.code, failSecurity.message)
		return "failed"
	}
	respond(w, http.StatusOK, "webhook_received", "Webhook received", nil)
	return "accepted"
}

// webhookBusy answers 503 server_busy: Didit will retry.
func (s *Server) webhookBusy(w http.ResponseWriter, r *http.Request, why string) {
	s.log.WarnContext(r.Context(), "webhook refused", "request_id", requestID(r.Context()), "reason", why)
	w.Header().Set("Retry-After", "1")
	respond(w, http.StatusServiceUnavailable, codeServerBusy, "Server busy, try again later", nil)
}

// take takes a slot of sem, waiting until wait fires or the request's
// deadline passes; it reports whether it got one.
func take(r *http.Request, sem chan struct{}, wait *time.Timer) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-wait.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

// verify runs Verify in the webhookVerifiers slot the caller took, and
// gives it back.
func (s *Server) verify(r *http.Request, body []byte) error {
	defer func() { <-s.verifiers }()
	return s.webhooks.Verify(r.Header, body, s.now())
}

// readBody reads all of r, a body of declared length n (-1 if unknown).
// When the length is known the body is read into one buffer of that size,
// where io.ReadAll would grow one step by step, allocating about twice the
// body in all.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, n+1) // +1: room for the read that sees the end
	for len(b) < cap(b) {
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	// More than declared (net/http never gives that): read on.
	rest, err := io.ReadAll(r)
	return append(b, rest...), err
}
