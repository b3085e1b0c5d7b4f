package kyc

import (
	"context"
	"errors"
	"time"
)

// The identity rules (docs/api.md §6, §6.1, §10), each decided inside one store
// transaction whose reads lock what they return, so two replicas can never
// both act on the same state.
//
//   - A signature proves the wallet, never an email: an email a wallet
//     names is a pending link on the wallet's enrollment until the email's
//     owner passes an OTP bound to that link.
//   - When the proof passes, the email and the wallet become one person:
//     the wallet's person takes the address when nobody has it; if a person
//     without a wallet has it, the two merge, keeping whichever KYC history
//     exists. Two wallets, two emails or two KYC histories on one person are
//     refused (email_wallet_conflict), and then nothing changes but the
//     spent code.
//   - Other tenants' enrollments keep their own identifiers and proofs: a
//     merge changes which person they point to, never what they can look
//     up.
//
// Locks are taken persons first (the wallet's person before the email's),
// then enrollments, in every transaction here, so concurrent ones queue
// instead of deadlocking. Requests that only refer to a person (a new
// registration, a creation claim, a stored session) do not wait for these
// locks; whatever they commit meanwhile makes MergePerson answer ErrRace,
// and the transaction decides again on it.

var (
	// The two email_wallet_conflict answers (docs/api.md §6, §6.1): at
	// prepare-wallet, the wallet's user here has another proven email (the
	// StarkFi contract fixes that message, as it reads); at a link proof,
	// joining would give one person two emails, two wallets or two KYC
	// histories, so the message names each way it can fail.
	errWalletHasEmail  = NewError(CodeEmailWalletConflict, "This email is already linked to another wallet")
	errLinkConflict    = NewError(CodeEmailWalletConflict, "This email and wallet cannot be linked: one already has another wallet or email, or both have KYC sessions")
	errChallengeGone   = NewError(CodeChallengeNotFound, "No matching challenge; request a new one")
	errLinkUserMissing = NewError(CodeUserNotFound, "User not found in whitelist")
)

// walletPrep is what prepare-wallet's transaction decided.
type walletPrep struct {
	enr     Enrollment
	created bool   // the tenant registered the wallet just now
	link    string // State.EmailLink
	refused *Error // the rule's answer when it refused
}

// prepareWalletTx consumes the challenge and registers the wallet at the
// tenant, recording the named email as a pending link (docs/api.md §6.1). The
// challenge is consumed in the same transaction, so a failure that rolls
// back leaves it usable, while a refusal (409) commits with it spent.
func prepareWalletTx(ctx context.Context, tx Tx, tenantID, nonce string, w WalletID, email string, ids NewIDs, now time.Time) (walletPrep, error) {
	used, err := tx.ConsumeChallenge(ctx, nonce, now)
	if err != nil || !used {
		return walletPrep{refused: errChallengeGone}, err
	}
	p, err := tx.PersonByWallet(ctx, w.Wallet)
	if errors.Is(err, ErrNotFound) {
		p = Person{ID: ids.Person, Wallet: w.Wallet, WalletChain: w.Chain}
		err = tx.InsertPerson(ctx, p, now)
	}
	if err != nil {
		return walletPrep{}, err
	}
	r := walletPrep{}
	r.enr, err = tx.EnrollmentByWallet(ctx, tenantID, w.Wallet)
	if errors.Is(err, ErrNotFound) {
		r.enr = Enrollment{ID: ids.Enrollment, TenantID: tenantID, PersonID: p.ID, Wallet: w.Wallet}
		r.created, err = true, nil
	}
	if err != nil {
		return walletPrep{}, err
	}
	e := &r.enr
	switch {
	case email == "":
		if e.PendingEmail != "" {
			r.link = LinkPending
		}
	case e.Email == email && e.EmailVerified:
		r.link = LinkLinked
	case e.Email != "" && e.EmailVerified:
		// Linked here to another address: a person has one email. Only
		// what this tenant proved counts, so a link proven at another
		// tenant changes no answer here (the proof would refuse instead).
		return walletPrep{refused: errWalletHasEmail}, nil
	default:
		e.PendingEmail, r.link = email, LinkPending // replaces an earlier pending one
	}
	if !r.created {
		return r, tx.UpdateEnrollment(ctx, r.enr)
	}
	if err := tx.InsertEnrollment(ctx, r.enr, now); err != nil {
		return r, err
	}
	// Only a wallet new here is news: proving it again changes nothing.
	return r, tx.Emit(ctx, []OutboxEvent{newEvent(r.enr, EventWalletVerified,
		walletVerifiedData{Chain: w.Chain, identifiers: idsOf(r.enr)}, now)})
}

// WalletID is a normalised wallet and its chain.
type WalletID struct {
	Wallet string
	Chain  string
}

// proveLink completes a wallet's pending link to an address whose link
// code matched (docs/api.md §6.1).
func (s *Service) proveLink(ctx context.Context, tenant Tenant, code CodeRef, codeHash string) error {
	var refused *Error
	err := s.store.InTx(ctx, func(tx Tx) (err error) {
		refused, err = linkTx(ctx, tx, code, codeHash, s.now())
		return err
	})
	if err != nil {
		return err
	}
	if refused != nil {
		s.log.InfoContext(ctx, "email link refused", "tenant", tenant.ID, "reason", refused.Code)
		return refused
	}
	s.log.InfoContext(ctx, "email linked to wallet", "tenant", tenant.ID, "to", maskEmail(code.Address))
	return nil
}

// linkTx is the link proof's transaction. refused is the rule's answer when
// it refuses; the code is then spent and nothing else changes.
func linkTx(ctx context.Context, tx Tx, code CodeRef, codeHash string, now time.Time) (refused *Error, err error) {
	email := code.Address
	pw, err := tx.PersonByWallet(ctx, code.Wallet)
	if errors.Is(err, ErrNotFound) {
		return errLinkUserMissing, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := tx.PersonByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		p, err = Person{}, nil
	}
	if err != nil {
		return nil, err
	}
	ew, err := tx.EnrollmentByWallet(ctx, code.TenantID, code.Wallet)
	if errors.Is(err, ErrNotFound) || err == nil && ew.PendingEmail != email && ew.Email != email {
		return errLinkUserMissing, nil // the link was replaced since the code was counted
	}
	if err != nil {
		return nil, err
	}
	if used, err := tx.ConsumeCode(ctx, code, codeHash); err != nil || !used {
		return errOTPInvalid, err // !used: a concurrent request with the same code won
	}
	owner := pw
	linked := ew.Email != email
	if linked { // else linked here already (a concurrent proof won): just the proof
		var refused *Error
		if owner, refused, err = joinEmail(ctx, tx, pw, p, email, now); err != nil || refused != nil {
			return refused, err
		}
		// The tenant's own enrollment of the address, if any, is the same
		// user now: one enrollment carries both identifiers.
		ee, err := tx.EnrollmentByEmail(ctx, code.TenantID, email)
		if err == nil && ee.ID != ew.ID {
			err = tx.DeleteEnrollment(ctx, ee.ID)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	ew.PersonID, ew.Email, ew.EmailVerified = owner.ID, email, true
	if ew.PendingEmail == email {
		ew.PendingEmail = ""
	}
	if err := tx.UpdateEnrollment(ctx, ew); err != nil || !linked {
		return nil, err
	}
	// The proof verified the address at this tenant and joined it to the
	// wallet: both are news to the tenant, in this transaction.
	return nil, tx.Emit(ctx, []OutboxEvent{
		newEvent(ew, EventEmailVerified, idsOf(ew), now),
		newEvent(ew, EventIdentityLinked, idsOf(ew), now),
	})
}

// joinEmail makes email the address of the wallet's person pw, merging
// with p, the person who has it (zero when nobody has), when the rules
// allow; it returns the person that now has both.
func joinEmail(ctx context.Context, tx Tx, pw, p Person, email string, now time.Time) (Person, *Error, error) {
	switch {
	case p.ID == pw.ID:
		return pw, nil, nil // proven elsewhere already: the person has both
	case pw.Email != "":
		return pw, errLinkConflict, nil // a person has one email
	case p.ID == "":
		pw.Email = email
		return pw, nil, tx.UpdatePerson(ctx, pw)
	case p.Wallet != "":
		return pw, errLinkConflict, nil // a person has one wallet
	}
	hp, err := tx.KYCHistory(ctx, p.ID, now)
	if err != nil {
		return pw, nil, err
	}
	hw, err := tx.KYCHistory(ctx, pw.ID, now)
	if err != nil {
		return pw, nil, err
	}
	if hp && hw {
		return pw, errLinkConflict, nil // two KYC histories cannot become one
	}
	// The person with a history (or a creation under way) stays, so its
	// sessions keep their owner, and Didit's vendor_data still names it.
	from, into := pw, p
	if hw {
		from, into = p, pw
	}
	if err := tx.MergePerson(ctx, from.ID, into.ID, now); err != nil {
		return pw, nil, err
	}
	merged := Person{ID: into.ID, Email: email, Wallet: pw.Wallet, WalletChain: pw.WalletChain}
	return merged, nil, tx.UpdatePerson(ctx, merged)
}
