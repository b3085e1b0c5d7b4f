// Package wallet parses EVM and Solana wallet addresses and verifies the
// signatures those wallets make over a challenge message (docs/api.md §5, §6).
//
// It is pure: no I/O, no clock, no randomness. Every function accepts
// arbitrary attacker-supplied strings without panicking, and every failure
// matches exactly one of the sentinel errors below under errors.Is.
package wallet

import (
	"errors"
	"strings"
)

// Chain names the signature scheme an address belongs to. The values are
// the wire strings of the API's wallet_chain field.
type Chain string

const (
	EVM    Chain = "evm"
	Solana Chain = "solana"
)

// Address is a parsed wallet address. String is the normalised form (EIP-55
// checksum case for EVM, the input unchanged for Solana) and is what callers
// store and compare.
type Address struct {
	Chain  Chain
	String string
}

var (
	// ErrInvalidAddress: not a valid EVM or Solana address.
	ErrInvalidAddress = errors.New("wallet: not a valid EVM or Solana address")
	// ErrMalformedSignature: the signature cannot be decoded, has the wrong
	// length, a bad recovery byte, or is a non-canonical (malleable) form.
	ErrMalformedSignature = errors.New("wallet: malformed signature")
	// ErrSignatureMismatch: well-formed, but not made by this address over
	// this message.
	ErrSignatureMismatch = errors.New("wallet: signature does not match the wallet")
)

// ParseAddress recognises an EVM address ("0x" + 40 hex digits, normalised
// to EIP-55) or a Solana address (base58 of a 32-byte ed25519 point, kept
// as given). Surrounding whitespace is not trimmed: that is the caller's
// normalisation step, and doing it twice would hide bugs there.
func ParseAddress(s string) (Address, error) {
	switch {
	case strings.HasPrefix(s, "0x"):
		raw, err := parseEVM(s)
		if err != nil {
			return Address{}, err
		}
		return Address{Chain: EVM, String: eip55(raw)}, nil
	case strings.HasPrefix(s, "0X"):
		return Address{}, errInvalid("EVM addresses start with a lowercase 0x")
	}
	if _, _, err := parseSolana(s); err != nil {
		return Address{}, err
	}
	return Address{Chain: Solana, String: s}, nil
}

// VerifySignature checks that signature was made by addr over message.
// EVM signatures are EIP-191 personal_sign (hex r‖s‖v, optional 0x, v in
// {0,1,27,28}, low-S only); Solana signatures are base58 ed25519.
//
// addr is re-validated, so a hand-built or zero Address yields
// ErrInvalidAddress rather than a panic or a false match.
func VerifySignature(addr Address, message []byte, signature string) error {
	switch addr.Chain {
	case EVM:
		raw, err := parseEVM(addr.String)
		if err != nil {
			return err
		}
		return verifyEVM(raw, message, signature)
	case Solana:
		pub, point, err := parseSolana(addr.String)
		if err != nil {
			return err
		}
		return verifySolana(pub, point, message, signature)
	}
	return errInvalid("unknown chain %q", addr.Chain)
}
