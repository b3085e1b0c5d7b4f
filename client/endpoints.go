package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// State is what kycgate knows of a user at this tenant, as prepare and
// prepare-wallet report it.
type State struct {
	EmailVerified bool `json:"email_verified"`
	// WalletVerified is reported by prepare-wallet only.
	WalletVerified *bool  `json:"wallet_verified,omitempty"`
	KYCApproved    bool   `json:"kyc_approved"`
	KYCStatus      string `json:"kyc_status"`
	// EmailLink says where linking the wallet to an email stands
	// (prepare-wallet only).
	EmailLink string `json:"email_link,omitempty"`
}

// Prepared is the answer to prepare and prepare-wallet.
type Prepared struct {
	// Created is true when this call registered the user (201); false when
	// the user was already prepared (200), and then State says where they
	// stand.
	Created bool
	State   *State
	// Replayed is true when kycgate answered from a stored reply to an
	// earlier request with the same Idempotency-Key.
	Replayed bool
}

// Prepare registers a user by email (POST /kyc/prepare).
func (c *Client) Prepare(ctx context.Context, email string) (Prepared, error) {
	var st State
	r, err := c.do(ctx, http.MethodPost, "/kyc/prepare", map[string]string{"email": email}, &st)
	if err != nil {
		return Prepared{}, err
	}
	return prepared(r, &st), nil
}

func prepared(r reply, st *State) Prepared {
	p := Prepared{Created: r.code == http.StatusCreated, Replayed: r.replayed}
	if r.status == "user_already_prepared" || st.KYCStatus != "" {
		p.State = st
	}
	return p
}

// OTPRequest names the user a code is for. Wallet is set when the email
// is being linked to a wallet-prepared user.
type OTPRequest struct {
	Email  string `json:"email,omitempty"`
	Wallet string `json:"wallet,omitempty"`
}

// SendOTP mails a one-time code (POST /security/email/send-otp).
func (c *Client) SendOTP(ctx context.Context, req OTPRequest) error {
	_, err := c.do(ctx, http.MethodPost, "/security/email/send-otp", req, nil)
	return err
}

// VerifyOTP checks a code (POST /security/email/verify-otp).
func (c *Client) VerifyOTP(ctx context.Context, req OTPRequest, code string) error {
	body := struct {
		OTPRequest
		Code string `json:"code"`
	}{req, code}
	_, err := c.do(ctx, http.MethodPost, "/security/email/verify-otp", body, nil)
	return err
}

// Challenge is a message for the wallet to sign.
type Challenge struct {
	Message string `json:"message"`
	Wallet  string `json:"wallet"`
	Chain   string `json:"wallet_chain"` // "evm" or "solana"
}

// WalletChallenge asks for a message to sign (POST
// /security/wallet/challenge) with purpose "kyc".
func (c *Client) WalletChallenge(ctx context.Context, wallet string) (Challenge, error) {
	var ch Challenge
	_, err := c.do(ctx, http.MethodPost, "/security/wallet/challenge",
		map[string]string{"wallet": wallet, "purpose": "kyc"}, &ch)
	return ch, err
}

// WalletProof is a signed challenge. SignedBytes is the signature: 0x-hex
// for EVM, base58 or base64 for Solana. Email, when set, names the email
// the user wants linked to the wallet.
type WalletProof struct {
	Wallet      string `json:"wallet"`
	Message     string `json:"message"`
	SignedBytes string `json:"signed_bytes"`
	Email       string `json:"email,omitempty"`
}

// PrepareWallet registers a user by a signed challenge (POST
// /kyc/prepare-wallet).
func (c *Client) PrepareWallet(ctx context.Context, p WalletProof) (Prepared, error) {
	var st State
	r, err := c.do(ctx, http.MethodPost, "/kyc/prepare-wallet", p, &st)
	if err != nil {
		return Prepared{}, err
	}
	return prepared(r, &st), nil
}

// User names a user by email or by wallet (one of them).
type User struct {
	Email  string `json:"email,omitempty"`
	Wallet string `json:"wallet,omitempty"`
}

// Session is a hosted identity check.
type Session struct {
	ID  string `json:"session_id"`
	URL string `json:"session_url"`
	// Kind is kycgate's word on it: a new session, an open one resumed, or
	// the user's earlier approval.
	Kind     string
	Approved bool
	Replayed bool
}

// KYCTypePublic is the one kyc_type kycgate serves.
const KYCTypePublic = "verify_public_kyc"

// CreateSession opens (or resumes) the user's identity check (POST
// /kyc/create/{kyc_type}); send the user to Session.URL.
func (c *Client) CreateSession(ctx context.Context, kycType string, u User) (Session, error) {
	var d struct {
		Message  string  `json:"message"`
		Approved bool    `json:"approved"`
		Session  Session `json:"session"`
	}
	r, err := c.do(ctx, http.MethodPost, "/kyc/create/"+url.PathEscape(kycType), u, &d)
	if err != nil {
		return Session{}, err
	}
	s := d.Session
	s.Kind, s.Approved, s.Replayed = d.Message, d.Approved, r.replayed
	return s, nil
}

// Status is a user's KYC outcome as this tenant may see it.
type Status struct {
	Status        string          `json:"status"` // e.g. "approved", "pending", "declined"
	Approved      bool            `json:"approved"`
	SessionID     string          `json:"session_id"`
	SessionStatus string          `json:"session_status"` // Didit's word, e.g. "In Review"
	SessionURL    string          `json:"session_url"`
	IPInfo        json.RawMessage `json:"ip_info"`
	IsBlocklisted bool            `json:"is_blocklisted"`
}

// Status reads the user's KYC outcome (GET /kyc/status).
func (c *Client) Status(ctx context.Context, u User) (Status, error) {
	var st Status
	_, err := c.do(ctx, http.MethodGet, "/kyc/status"+query("email", u.Email, "wallet", u.Wallet), nil, &st)
	return st, err
}

// Products reports whether KYC is enabled for this key's tenant (GET
// /config/products).
func (c *Client) Products(ctx context.Context) (kycEnabled bool, err error) {
	var p struct {
		KYC bool `json:"kyc"`
	}
	_, err = c.do(ctx, http.MethodGet, "/config/products", nil, &p)
	return p.KYC, err
}
