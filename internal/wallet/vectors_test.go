package wallet

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// vectorFile mirrors testdata/vectors.json, written by
// scripts/wallet/gen-vectors.mjs with ethers, @solana/web3.js, tweetnacl
// and bs58, so these tests check us against code we share nothing with.
type vectorFile struct {
	Libraries    map[string]string `json:"libraries"`
	Vectors      []vector          `json:"vectors"`
	SolanaPoints []struct {
		Label   string `json:"label"`
		Address string `json:"address"`
		OnCurve bool   `json:"on_curve"`
	} `json:"solana_points"`
}

type vector struct {
	Name      string `json:"name"`
	Chain     Chain  `json:"chain"`
	SeedHex   string `json:"seed_hex"`
	Address   string `json:"address"`
	Message   string `json:"message"`
	Signature string `json:"signature"`
	Want      string `json:"want"` // ok | malformed | mismatch
}

func loadVectors(tb testing.TB) vectorFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatalf("read vectors (regenerate with scripts/wallet/gen-vectors.mjs): %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(b, &vf); err != nil {
		tb.Fatalf("decode vectors: %v", err)
	}
	return vf
}

func mustVector(tb testing.TB, name string) vector {
	tb.Helper()
	for _, v := range loadVectors(tb).Vectors {
		if v.Name == name {
			return v
		}
	}
	tb.Fatalf("no vector %q in testdata/vectors.json", name)
	return vector{}
}

func wantErr(want string) error {
	switch want {
	case "ok":
		return nil
	case "malformed":
		return ErrMalformedSignature
	case "mismatch":
		return ErrSignatureMismatch
	}
	panic("unknown want " + want)
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		t.Run(v.Name, func(t *testing.T) {
			addr, err := ParseAddress(v.Address)
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", v.Address, err)
			}
			if addr.Chain != v.Chain || addr.String != v.Address {
				t.Fatalf("ParseAddress(%q) = %+v, want chain %s and the library's form unchanged", v.Address, addr, v.Chain)
			}
			err = VerifySignature(addr, []byte(v.Message), v.Signature)
			if want := wantErr(v.Want); want == nil && err != nil {
				t.Fatalf("VerifySignature: %v, want success", err)
			} else if want != nil && !errors.Is(err, want) {
				t.Fatalf("VerifySignature: %v, want %v", err, want)
			}
			if v.Chain == EVM && v.Want == "ok" {
				// The checksum is presentation only: lowercase input must
				// normalise to ethers' form and verify the same.
				lower := "0x" + strings.ToLower(v.Address[2:])
				if got, err := ParseAddress(lower); err != nil || got != addr {
					t.Fatalf("ParseAddress(%q) = %+v, %v; want %+v", lower, got, err, addr)
				}
				if err := VerifySignature(Address{Chain: EVM, String: lower}, []byte(v.Message), v.Signature); err != nil {
					t.Fatalf("VerifySignature with lowercase address: %v", err)
				}
			}
		})
	}
}

// The file must keep covering what the brief asked for; a regenerated file
// that silently lost a case would otherwise still pass.
func TestVectorsCoverage(t *testing.T) {
	vf := loadVectors(t)
	for _, lib := range []string{"ethers", "@solana/web3.js", "tweetnacl", "bs58"} {
		if vf.Libraries[lib] == "" {
			t.Errorf("vectors.json does not record the %s version", lib)
		}
	}
	seen := map[string]int{}
	for _, v := range vf.Vectors {
		parts := strings.SplitN(v.Name, "/", 4)
		kind := "base"
		if len(parts) == 4 {
			kind = parts[3]
		}
		seen[string(v.Chain)+"/"+parts[2]+"/"+kind]++
		seen[string(v.Chain)+"/want/"+v.Want]++
		if parts[2] == "long1000" && kind == "base" && utf8.RuneCountInString(v.Message) != 1000 {
			t.Errorf("%s: message has %d characters, want 1000", v.Name, utf8.RuneCountInString(v.Message))
		}
	}
	for _, chain := range []string{"evm", "solana"} {
		for _, label := range []string{"ascii", "challenge", "empty", "utf8", "long1000"} {
			for _, kind := range []string{"base", "altered-message", "other-key"} {
				if seen[chain+"/"+label+"/"+kind] == 0 {
					t.Errorf("no %s %s %s vector", chain, label, kind)
				}
			}
		}
		for _, want := range []string{"ok", "malformed", "mismatch"} {
			if seen[chain+"/want/"+want] == 0 {
				t.Errorf("no %s vector with want=%s", chain, want)
			}
		}
	}
	for _, kind := range []string{"v01", "high-s", "high-s-v01", "flipped-v"} {
		if seen["evm/ascii/"+kind] == 0 {
			t.Errorf("no evm %s vector", kind)
		}
	}
}

// The high-S twins are rejected by policy, not because they are wrong: the
// plain secp256k1 recovery (which has no low-S rule) still yields the
// signer. Without this check a broken twin would pass the negative test.
func TestHighSTwinsRecoverTheSigner(t *testing.T) {
	n := 0
	for _, v := range loadVectors(t).Vectors {
		if !strings.HasSuffix(v.Name, "/high-s") && !strings.HasSuffix(v.Name, "/high-s-v01") {
			continue
		}
		n++
		sig, err := hex.DecodeString(strings.TrimPrefix(v.Signature, "0x"))
		if err != nil || len(sig) != 65 {
			t.Fatalf("%s: bad signature hex", v.Name)
		}
		compact := append([]byte{27 + sig[64]%27}, sig[:64]...)
		pub, _, err := ecdsa.RecoverCompact(compact, personalHash([]byte(v.Message)))
		if err != nil {
			t.Fatalf("%s: recover: %v", v.Name, err)
		}
		var raw [evmAddressBytes]byte
		copy(raw[:], keccak256(pub.SerializeUncompressed()[1:])[12:])
		if got := eip55(raw); got != v.Address {
			t.Errorf("%s: twin recovers %s, want %s", v.Name, got, v.Address)
		}
	}
	if n == 0 {
		t.Fatal("no high-S vectors")
	}
}

// On-curve decisions must agree with @solana/web3.js PublicKey.isOnCurve,
// which is what wallets and dapps use to tell keys from program addresses.
func TestSolanaPointsAgreeWithWeb3(t *testing.T) {
	points := loadVectors(t).SolanaPoints
	if len(points) == 0 {
		t.Fatal("no solana_points in vectors.json")
	}
	for _, p := range points {
		_, err := ParseAddress(p.Address)
		if p.OnCurve && err != nil {
			t.Errorf("%s (%s): web3.js says on curve, ParseAddress: %v", p.Label, p.Address, err)
		}
		if !p.OnCurve && !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("%s (%s): web3.js says off curve, ParseAddress err = %v", p.Label, p.Address, err)
		}
	}
}
