package wallet

import (
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"
)

const (
	evmAddressBytes   = 20
	evmSignatureBytes = 65 // r(32) ‖ s(32) ‖ v(1)
)

// parseEVM validates "0x" + 40 hex digits and returns the address bytes.
// All-lowercase and all-uppercase digits carry no checksum and are accepted;
// mixed case is a checksum claim (EIP-55) and must be right, since a typo in
// a checksummed address is exactly what EIP-55 exists to catch.
func parseEVM(s string) ([evmAddressBytes]byte, error) {
	var raw [evmAddressBytes]byte
	if len(s) != 2+2*evmAddressBytes || s[:2] != "0x" {
		return raw, errInvalid("EVM address must be 0x followed by 40 hex digits")
	}
	digits := s[2:]
	if _, err := hex.Decode(raw[:], []byte(digits)); err != nil {
		return raw, errInvalid("EVM address is not hex")
	}
	if digits != strings.ToLower(digits) && digits != strings.ToUpper(digits) {
		if digits != eip55(raw)[2:] {
			return raw, errInvalid("EVM address has a wrong EIP-55 checksum")
		}
	}
	return raw, nil
}

// eip55 renders the address in checksum case: a hex letter is uppercase when
// the matching nibble of keccak256(lowercase hex) is 8 or more.
func eip55(raw [evmAddressBytes]byte) string {
	lower := hex.EncodeToString(raw[:])
	hash := keccak256([]byte(lower))
	out := []byte(lower)
	for i, c := range out {
		if c < 'a' {
			continue // digits have no case
		}
		nibble := hash[i/2] >> 4
		if i%2 == 1 {
			nibble = hash[i/2] & 0x0f
		}
		if nibble >= 8 {
			out[i] = c - ('a' - 'A')
		}
	}
	return "0x" + string(out)
}

// verifyEVM checks an EIP-191 personal_sign signature, the form ethers'
// Wallet.signMessage and every browser wallet's personal_sign return.
func verifyEVM(want [evmAddressBytes]byte, message []byte, signature string) error {
	h := strings.TrimPrefix(signature, "0x")
	if len(h) != 2*evmSignatureBytes {
		return errMalformed("EVM signature must be 65 bytes of hex, got %d hex digits", len(h))
	}
	var sig [evmSignatureBytes]byte
	if _, err := hex.Decode(sig[:], []byte(h)); err != nil {
		return errMalformed("EVM signature is not hex")
	}

	// Wallets disagree on v: raw recovery id (0/1) or Ethereum's 27/28.
	// Recovery ids 2 and 3 (r overflowed n) are not expressible in personal_sign.
	var recID byte
	switch v := sig[64]; v {
	case 0, 1:
		recID = v
	case 27, 28:
		recID = v - 27
	default:
		return errMalformed("EVM signature v must be 0, 1, 27 or 28, got %d", v)
	}

	var r, s secp256k1.ModNScalar
	if overflow := r.SetByteSlice(sig[:32]); overflow || r.IsZero() {
		return errMalformed("EVM signature r is not in [1, n-1]")
	}
	if overflow := s.SetByteSlice(sig[32:64]); overflow || s.IsZero() {
		return errMalformed("EVM signature s is not in [1, n-1]")
	}
	// (r, n-s) verifies too; accepting only low S (EIP-2) keeps each
	// signature unique, as ethers and go-ethereum do.
	if s.IsOverHalfOrder() {
		return errMalformed("EVM signature has high S")
	}

	// decred's compact form puts the recovery byte first: 27 + recid, plus 4
	// for a compressed key. The flag only affects the returned bool; we
	// derive the address from the uncompressed key either way.
	var compact [evmSignatureBytes]byte
	compact[0] = 27 + recID
	copy(compact[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(compact[:], personalHash(message))
	if err != nil {
		return errMismatch("no public key recovers from this signature: %v", err)
	}
	got := keccak256(pub.SerializeUncompressed()[1:])[32-evmAddressBytes:]
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return errMismatch("EVM signature was made by another address")
	}
	return nil
}

// personalHash is EIP-191 version 0x45: the prefix stops a signed login
// message from doubling as a signed transaction.
func personalHash(message []byte) []byte {
	k := sha3.NewLegacyKeccak256()
	k.Write([]byte("\x19Ethereum Signed Message:\n"))
	k.Write([]byte(strconv.Itoa(len(message))))
	k.Write(message)
	return k.Sum(nil)
}

// keccak256 is Ethereum's pre-standard Keccak, not FIPS 202 SHA3-256.
func keccak256(b []byte) []byte {
	k := sha3.NewLegacyKeccak256()
	k.Write(b)
	return k.Sum(nil)
}
