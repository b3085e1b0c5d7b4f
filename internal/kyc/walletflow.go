package kyc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kycgate/kycgate/internal/wallet"
)

// ChallengeResult is the message a wallet must sign.
type ChallengeResult struct {
	Message string
	Wallet  string
	Chain   string
}

// Challenge issues a single-use message bound to tenant and wallet (docs/api.md §5).
func (s *Service) Challenge(ctx context.Context, tenant Tenant, rawWallet, purpose string) (ChallengeResult, error) {
	if rawWallet == "" {
		return ChallengeResult{}, NewError(CodeMissingParams, "wallet is required")
	}
	addr, err := wallet.ParseAddress(strings.TrimSpace(rawWallet))
	if err != nil {
		return ChallengeResult{}, NewError(CodeInvalidWallet, "Wallet challenge failed") // §5 keeps its documented message
	}
	if purpose != "" && purpose != "kyc" {
		return ChallengeResult{}, NewError(CodeInvalidPurpose, "purpose must be kyc")
	}
	now := s.now().Truncate(time.Second)
	nonce := newNonce()
	exp := now.Add(s.cfg.ChallengeTTL)
	msg := fmt.Sprintf("%s\nWallet: %s\nChain: %s\nPurpose: kyc\nNonce: %s\nIssued At: %s\nExpiration Time: %s",
		s.cfg.ChallengeTitle, addr.String, addr.Chain, nonce,
		now.Format(time.RFC3339), exp.Format(time.RFC3339))
	c := Challenge{Nonce: nonce, TenantID: tenant.ID, Wallet: addr.String, Chain: string(addr.Chain),
		Message: msg, ExpiresAt: exp}
	if err := s.store.SaveChallenge(ctx, c); err != nil {
		return ChallengeResult{}, err
	}
	s.audit(ctx, tenant.ID, AuditWalletChallenge, addr.String, "ok")
	return ChallengeResult{Message: msg, Wallet: addr.String, Chain: string(addr.Chain)}, nil
}

const nonceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newNonce returns 24 uniform alphanumeric characters (~143 bits).
func newNonce() string {
	out := make([]byte, 0, 24)
	var b [32]byte
	for len(out) < 24 {
		rand.Read(b[:])
		for _, c := range b {
			if c < 248 && len(out) < 24 { // 248 = 4*62: reject to stay uniform
				out = append(out, nonceAlphabet[c%62])
			}
		}
	}
	return string(out)
}

// messageNonce pulls the Nonce line out of a submitted message; the stored
// challenge is then compared byte for byte.
func messageNonce(msg string) string {
	for line := range strings.SplitSeq(msg, "\n") {
		if n, ok := strings.CutPrefix(line, "Nonce: "); ok {
			return n
		}
	}
	return ""
}

// PrepareWalletInput is the body of POST /kyc/prepare-wallet.
type PrepareWalletInput struct {
	Wallet, Message, SignedBytes, Email string
}

// PrepareWallet registers a user by a signed challenge (docs/api.md §6), with
// the checks in the documented order, and records a named email as a
// pending link (§6.1).
func (s *Service) PrepareWallet(ctx context.Context, tenant Tenant, in PrepareWalletInput) (PrepareResult, error) {
	if in.Wallet == "" || in.Message == "" || in.SignedBytes == "" {
		return PrepareResult{}, NewError(CodeMissingParams, "wallet, message and signed_bytes are required")
	}
	addr, err := wallet.ParseAddress(strings.TrimSpace(in.Wallet))
	if err != nil {
		return PrepareResult{}, errInvalidWallet
	}
	var email string
	if in.Email != "" {
		var ok bool
		if email, ok = NormalizeEmail(in.Email); !ok {
			return PrepareResult{}, errInvalidEmail
		}
	}
	nonce := messageNonce(in.Message)
	if nonce == "" {
		return PrepareResult{}, errChallengeGone
	}
	ch, err := s.store.FindChallenge(ctx, nonce)
	if errors.Is(err, ErrNotFound) {
		return PrepareResult{}, errChallengeGone
	}
	if err != nil {
		return PrepareResult{}, err
	}
	if ch.TenantID != tenant.ID || ch.Wallet != addr.String || ch.Message != in.Message || ch.UsedAt != nil {
		return PrepareResult{}, errChallengeGone
	}
	now := s.now()
	if !now.Before(ch.ExpiresAt) {
		return PrepareResult{}, NewError(CodeChallengeExpired, "Challenge expired, request a new one")
	}
	// The signature is checked before the challenge is consumed, so a bad
	// signature cannot burn somebody else's challenge.
	if err := wallet.VerifySignature(addr, []byte(in.Message), strings.TrimSpace(in.SignedBytes)); err != nil {
		return PrepareResult{}, NewError(CodeInvalidSignature, "Signature does not match the wallet")
	}
	var r walletPrep
	ids := NewIDs{Person: newID("ps_"), Enrollment: newID("en_")}
	err = s.store.InTx(ctx, func(tx Tx) (err error) {
		r, err = prepareWalletTx(ctx, tx, tenant.ID, nonce, WalletID{Wallet: addr.String, Chain: string(addr.Chain)}, email, ids, now)
		return err
	})
	if err != nil {
		return PrepareResult{}, err
	}
	// The challenge is spent either way.
	if r.refused != nil {
		s.audit(ctx, tenant.ID, AuditWalletVerify, addr.String, r.refused.Code)
		return PrepareResult{}, r.refused
	}
	s.audit(ctx, tenant.ID, AuditWalletVerify, addr.String, "ok")
	st, err := s.state(ctx, r.enr)
	if err != nil {
		return PrepareResult{}, err
	}
	st.EmailLink = r.link
	s.log.InfoContext(ctx, "wallet prepared", "tenant", tenant.ID, "enrollment", r.enr.ID, "chain", addr.Chain, "email_link", r.link)
	return PrepareResult{Created: r.created, State: st}, nil
}
