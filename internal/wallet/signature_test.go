package wallet

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/mr-tron/base58"
)

// secpN is the secp256k1 group order, big-endian.
const secpN = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"

// evmCase returns the parsed address, message and raw 65-byte signature of
// an ethers-made vector, for tests that tamper with it.
func evmCase(t *testing.T) (Address, []byte, []byte) {
	t.Helper()
	v := mustVector(t, "evm/key0/challenge")
	addr, err := ParseAddress(v.Address)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(v.Signature, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return addr, []byte(v.Message), sig
}

func withV(sig []byte, v byte) string {
	out := append([]byte{}, sig...)
	out[64] = v
	return "0x" + hex.EncodeToString(out)
}

func TestVerifyEVMRecoveryByte(t *testing.T) {
	addr, msg, sig := evmCase(t)
	recID := sig[64] - 27 // ethers always returns 27/28
	for _, v := range []byte{recID, recID + 27} {
		if err := VerifySignature(addr, msg, withV(sig, v)); err != nil {
			t.Errorf("v=%d: %v, want success", v, err)
		}
	}
	// The other parity recovers a different key (or none): a mismatch, not malformed.
	for _, v := range []byte{1 - recID, 28 - recID} {
		if err := VerifySignature(addr, msg, withV(sig, v)); !errors.Is(err, ErrSignatureMismatch) {
			t.Errorf("v=%d: %v, want ErrSignatureMismatch", v, err)
		}
	}
	for _, v := range []byte{2, 3, 26, 29, 30, 31, 35, 36, 127, 255} {
		if err := VerifySignature(addr, msg, withV(sig, v)); !errors.Is(err, ErrMalformedSignature) {
			t.Errorf("v=%d: %v, want ErrMalformedSignature", v, err)
		}
	}
}

func TestVerifyEVMScalarRange(t *testing.T) {
	addr, msg, sig := evmCase(t)
	n, _ := hex.DecodeString(secpN)
	zero := make([]byte, 32)
	set := func(off int, val []byte) string {
		out := append([]byte{}, sig...)
		copy(out[off:off+32], val)
		return "0x" + hex.EncodeToString(out)
	}
	high := append([]byte{}, sig...)
	negateMod(high[32:64], n)
	high[64] ^= 1 // 27<->28: the twin's R has the other y parity
	cases := map[string]string{
		"r = 0":  set(0, zero),
		"s = 0":  set(32, zero),
		"r = n":  set(0, n),
		"s = n":  set(32, n),
		"high S": "0x" + hex.EncodeToString(high),
	}
	for name, s := range cases {
		if err := VerifySignature(addr, msg, s); !errors.Is(err, ErrMalformedSignature) {
			t.Errorf("%s: %v, want ErrMalformedSignature", name, err)
		}
	}
}

// negateMod sets s = n - s for 32-byte big-endian values with 0 < s < n.
func negateMod(s, n []byte) {
	var borrow uint16
	for i := 31; i >= 0; i-- {
		d := uint16(n[i]) - uint16(s[i]) - borrow
		s[i] = byte(d)
		borrow = (d >> 8) & 1
	}
}

func TestVerifyEVMEncoding(t *testing.T) {
	addr, msg, sig := evmCase(t)
	h := hex.EncodeToString(sig)
	ok := map[string]string{
		"with 0x":          "0x" + h,
		"without 0x":       h,
		"uppercase hex":    strings.ToUpper(h),
		"uppercase 0x+hex": "0x" + strings.ToUpper(h),
	}
	for name, s := range ok {
		if err := VerifySignature(addr, msg, s); err != nil {
			t.Errorf("%s: %v, want success", name, err)
		}
	}
	bad := map[string]string{
		"64 bytes":          "0x" + h[:128],
		"66 bytes":          "0x" + h + "00",
		"odd hex (129)":     "0x" + h[:129],
		"odd hex (131)":     "0x" + h + "0",
		"0X prefix":         "0X" + h,
		"double 0x":         "0x0x" + h[2:],
		"garbage hex":       "0x" + strings.Repeat("zz", 65),
		"one non-hex digit": "0x" + h[:100] + "g" + h[101:],
		"empty":             "",
		"0x only":           "0x",
		"base58":            mustVector(t, "solana/key0/ascii").Signature,
		"surrounding space": " 0x" + h,
		"huge":              strings.Repeat("ab", 1<<16),
	}
	for name, s := range bad {
		if err := VerifySignature(addr, msg, s); !errors.Is(err, ErrMalformedSignature) {
			t.Errorf("%s: %v, want ErrMalformedSignature", name, err)
		}
	}
}

func TestVerifyAddressChecks(t *testing.T) {
	ev := mustVector(t, "evm/key0/ascii")
	sv := mustVector(t, "solana/key0/ascii")
	cases := map[string]Address{
		"zero Address":              {},
		"unknown chain":             {Chain: "btc", String: ev.Address},
		"EVM chain, Solana address": {Chain: EVM, String: sv.Address},
		"Solana chain, EVM address": {Chain: Solana, String: ev.Address},
		"EVM with bad checksum":     {Chain: EVM, String: flipFirstLetter(ev.Address)},
		"Solana off curve":          {Chain: Solana, String: offCurve},
	}
	for name, addr := range cases {
		if err := VerifySignature(addr, []byte(ev.Message), ev.Signature); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("%s: %v, want ErrInvalidAddress", name, err)
		}
	}
}

// flipFirstLetter swaps the case of the first hex letter after 0x, which
// breaks an EIP-55 checksum while keeping the string mixed-case.
func flipFirstLetter(addr string) string {
	b := []byte(addr)
	for i := 2; i < len(b); i++ {
		switch {
		case b[i] >= 'a' && b[i] <= 'f':
			b[i] -= 'a' - 'A'
			return string(b)
		case b[i] >= 'A' && b[i] <= 'F':
			b[i] += 'a' - 'A'
			return string(b)
		}
	}
	panic("address has no hex letter")
}

func TestVerifySolanaEncoding(t *testing.T) {
	v := mustVector(t, "solana/key0/challenge")
	addr, err := ParseAddress(v.Address)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base58.Decode(v.Signature)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(v.Message)
	if err := VerifySignature(addr, msg, v.Signature); err != nil {
		t.Fatalf("vector does not verify: %v", err)
	}
	bad := map[string]string{
		"63 bytes":       base58.Encode(sig[:63]),
		"65 bytes":       base58.Encode(append(append([]byte{}, sig...), 0)),
		"63 zero bytes":  strings.Repeat("1", 63),
		"base58 0":       "0" + v.Signature[1:],
		"base58 O":       "O" + v.Signature[1:],
		"base58 I":       "I" + v.Signature[1:],
		"base58 l":       "l" + v.Signature[1:],
		"hex instead":    "0x" + hex.EncodeToString(sig),
		"empty":          "",
		"huge":           strings.Repeat("z", 1<<16),
		"trailing space": v.Signature + " ",
	}
	for name, s := range bad {
		if err := VerifySignature(addr, msg, s); !errors.Is(err, ErrMalformedSignature) {
			t.Errorf("%s: %v, want ErrMalformedSignature", name, err)
		}
	}
	// 64 well-formed bytes that are not a signature of this message.
	zeros := strings.Repeat("1", 64)
	if err := VerifySignature(addr, msg, zeros); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("64 zero bytes: %v, want ErrSignatureMismatch", err)
	}
}

// TestSmallOrderForgeryRejected forges a signature for the all-zero address
// (a point A of order 4) that crypto/ed25519 accepts, and checks that
// VerifySignature does not: with S chosen freely, R = [S]B - [j]A passes
// whenever H(R‖A‖M) ≡ j (mod 4), which takes a few tries for any message.
func TestSmallOrderForgeryRejected(t *testing.T) {
	pub := make([]byte, 32)
	addr, err := ParseAddress(systemProgram)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("StarkFi KYC verification\nWallet: " + systemProgram)
	sig := forgeSmallOrder(t, pub, msg)
	if !ed25519.Verify(pub, msg, sig) {
		t.Fatal("forgery does not pass crypto/ed25519; the test premise is wrong")
	}
	if err := VerifySignature(addr, msg, base58.Encode(sig)); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("VerifySignature(forged) = %v, want ErrSignatureMismatch", err)
	}
}

func forgeSmallOrder(t *testing.T, pub, msg []byte) []byte {
	t.Helper()
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		t.Fatal(err)
	}
	negA := new(edwards25519.Point).Negate(a)
	var multiples [4]*edwards25519.Point // [j](-A)
	multiples[0] = edwards25519.NewIdentityPoint()
	for j := 1; j < 4; j++ {
		multiples[j] = new(edwards25519.Point).Add(multiples[j-1], negA)
	}
	for i := uint64(1); i <= 256; i++ {
		var sBytes [32]byte
		binary.LittleEndian.PutUint64(sBytes[:], i)
		s, err := edwards25519.NewScalar().SetCanonicalBytes(sBytes[:])
		if err != nil {
			t.Fatal(err)
		}
		sB := new(edwards25519.Point).ScalarBaseMult(s)
		for j := range multiples {
			r := new(edwards25519.Point).Add(sB, multiples[j]).Bytes()
			h := sha512.New()
			h.Write(r)
			h.Write(pub)
			h.Write(msg)
			k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
			if err != nil {
				t.Fatal(err)
			}
			if new(edwards25519.Point).ScalarMult(k, negA).Equal(multiples[j]) == 1 {
				return append(r, sBytes[:]...)
			}
		}
	}
	t.Fatal("no forgery found in 1024 tries; odds of that are (3/4)^1024")
	return nil
}
