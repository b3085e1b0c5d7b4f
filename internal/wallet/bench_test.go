package wallet

import "testing"

func benchVerify(b *testing.B, name string) {
	v := mustVector(b, name)
	addr, err := ParseAddress(v.Address)
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(v.Message)
	if err := VerifySignature(addr, msg, v.Signature); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifySignature(addr, msg, v.Signature); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEVMRecover is one full prepare-wallet EVM check: address
// re-parse, EIP-191 hash, secp256k1 public-key recovery, address compare.
func BenchmarkEVMRecover(b *testing.B) { benchVerify(b, "evm/key0/challenge") }

// BenchmarkEd25519Verify is the Solana equivalent: base58 decode, point
// decompression and small-order check, ed25519 verification.
func BenchmarkEd25519Verify(b *testing.B) { benchVerify(b, "solana/key0/challenge") }
