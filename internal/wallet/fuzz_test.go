package wallet

import (
	"errors"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
)

// Seeds beyond testdata/fuzz/: the vectors give the fuzzer valid inputs to
// mutate from, which random bytes would almost never reach.
func addVectorSeeds(f *testing.F, add func(v vector)) {
	for _, v := range loadVectors(f).Vectors {
		if strings.HasPrefix(v.Name, "evm/key0/") || strings.HasPrefix(v.Name, "solana/key0/") {
			add(v)
		}
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range eip55Examples {
		f.Add(s)
	}
	f.Add(systemProgram)
	f.Add(offCurve)
	addVectorSeeds(f, func(v vector) { f.Add(v.Address) })

	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) || a != (Address{}) {
				t.Fatalf("ParseAddress(%q) = %+v, %v; failures must be a zero Address and ErrInvalidAddress", s, a, err)
			}
			return
		}
		again, err := ParseAddress(a.String)
		if err != nil || again != a {
			t.Fatalf("ParseAddress(%q) = %+v, but it re-parses to %+v, %v", s, a, again, err)
		}
		switch a.Chain {
		case EVM:
			if len(a.String) != 42 || !strings.EqualFold(a.String, s) {
				t.Fatalf("ParseAddress(%q) = %q: normalising may only change case", s, a.String)
			}
		case Solana:
			// One key, one string: the accepted base58 must be canonical.
			raw, err := base58.Decode(s)
			if a.String != s || err != nil || base58.Encode(raw) != s {
				t.Fatalf("ParseAddress(%q) = %q: Solana addresses are kept as given and must be canonical base58", s, a.String)
			}
		default:
			t.Fatalf("ParseAddress(%q) returned chain %q", s, a.Chain)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	addVectorSeeds(f, func(v vector) { f.Add(v.Address, []byte(v.Message), v.Signature) })
	f.Add("", []byte(nil), "")
	f.Add(systemProgram, []byte("x"), strings.Repeat("1", 64))

	f.Fuzz(func(t *testing.T, addr string, message []byte, signature string) {
		a, parseErr := ParseAddress(addr)
		if parseErr != nil {
			// Exercise the defensive path: a hand-built Address that never
			// went through ParseAddress.
			a = Address{Chain: Solana, String: addr}
			if strings.HasPrefix(addr, "0") {
				a.Chain = EVM
			}
		}
		err := VerifySignature(a, message, signature)
		switch {
		case parseErr != nil && !errors.Is(err, ErrInvalidAddress):
			t.Fatalf("VerifySignature(invalid %q) = %v, want ErrInvalidAddress", addr, err)
		case err == nil, errors.Is(err, ErrMalformedSignature), errors.Is(err, ErrSignatureMismatch), errors.Is(err, ErrInvalidAddress):
		default:
			t.Fatalf("VerifySignature returned a non-sentinel error: %v", err)
		}
	})
}
