package wallet

import (
	"bytes"
	"crypto/ed25519"

	"filippo.io/edwards25519"
	"github.com/mr-tron/base58"
)

const solanaSignatureBytes = ed25519.SignatureSize

// Base58 length bounds: n zero bytes encode to n '1's; n bytes never need
// more than ceil(n·log 256 / log 58) characters. Checking them first keeps
// the (quadratic) decoder away from huge inputs.
const (
	minAddressChars   = ed25519.PublicKeySize
	maxAddressChars   = 44
	minSignatureChars = solanaSignatureBytes
	maxSignatureChars = 88
)

// parseSolana decodes a base58 address that must be 32 bytes and a valid
// ed25519 point: an off-curve address (a program-derived address) has no
// private key and so can never sign a challenge.
//
// Only canonical encodings are accepted (y < p, no sign bit on x = 0), as
// @solana/web3.js PublicKey.isOnCurve does; crypto/ed25519 alone would also
// take the non-canonical ones, giving one key two address strings.
// Small-order points (including 32 zero bytes, the system program
// 1111…1111, a point of order 4) are valid points and are accepted here;
// verifySolana refuses signatures for them instead, because anyone can
// forge those.
func parseSolana(s string) ([]byte, *edwards25519.Point, error) {
	if len(s) < minAddressChars || len(s) > maxAddressChars {
		return nil, nil, errInvalid("Solana address must be 32–44 base58 characters, got %d", len(s))
	}
	pub, err := base58.Decode(s)
	if err != nil {
		return nil, nil, errInvalid("Solana address is not base58")
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, nil, errInvalid("Solana address decodes to %d bytes, want 32", len(pub))
	}
	point, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, nil, errInvalid("Solana address is not on the ed25519 curve")
	}
	if !bytes.Equal(point.Bytes(), pub) {
		return nil, nil, errInvalid("Solana address is a non-canonical point encoding")
	}
	return pub, point, nil
}

// verifySolana checks a base58 ed25519 signature over the raw message bytes
// (Solana wallets' signMessage signs the UTF-8 bytes with no prefix).
func verifySolana(pub []byte, point *edwards25519.Point, message []byte, signature string) error {
	if len(signature) < minSignatureChars || len(signature) > maxSignatureChars {
		return errMalformed("Solana signature must be 64–88 base58 characters, got %d", len(signature))
	}
	sig, err := base58.Decode(signature)
	if err != nil {
		return errMalformed("Solana signature is not base58")
	}
	if len(sig) != solanaSignatureBytes {
		return errMalformed("Solana signature decodes to %d bytes, want 64", len(sig))
	}
	// S ≥ L is the ed25519 form of high-S malleability; crypto/ed25519
	// rejects it anyway, but it is a malformed signature, not someone else's.
	if _, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:]); err != nil {
		return errMalformed("Solana signature S is not reduced mod L")
	}
	// A small-order key has no private key behind it, and [k]A then takes
	// only a handful of values, so anyone can forge a signature for any
	// message in a few tries (S = 0, R = -[k]A). Passing one proves nothing.
	if isSmallOrder(point) {
		return errMismatch("Solana address is a small-order point; no one holds its key")
	}
	// len(pub) is 32 by construction: Verify panics on any other length.
	if !ed25519.Verify(ed25519.PublicKey(pub), message, sig) {
		return errMismatch("Solana signature was not made by this address over this message")
	}
	return nil
}

func isSmallOrder(p *edwards25519.Point) bool {
	return new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}
