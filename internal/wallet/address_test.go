package wallet

import (
	"errors"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
)

// The eight examples published in EIP-55 itself. The "all caps" and "all
// lower" ones are addresses whose checksum form happens to have one case.
var eip55Examples = []string{
	"0x52908400098527886E0F7030069857D2E4169EE7",
	"0x8617E340B3D01FA5F11F306F4090FD50E238070D",
	"0xde709f2102306220921060314715629080e2fb77",
	"0x27b1fdb04752bbc536007a920d24acb045561c26",
	"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
	"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
	"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
}

func TestParseAddressEIP55Examples(t *testing.T) {
	for _, want := range eip55Examples {
		digits := want[2:]
		for _, in := range []string{want, "0x" + strings.ToLower(digits), "0x" + strings.ToUpper(digits)} {
			got, err := ParseAddress(in)
			if err != nil {
				t.Errorf("ParseAddress(%q): %v", in, err)
				continue
			}
			if got != (Address{Chain: EVM, String: want}) {
				t.Errorf("ParseAddress(%q) = %+v, want %s", in, got, want)
			}
		}
	}
}

func TestParseAddressEVMInvalid(t *testing.T) {
	good := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	cases := map[string]string{
		"bad checksum (one letter's case flipped)": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
		"bad checksum (all but one upper)":         "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAEd",
		"39 digits":                                good[:41],
		"41 digits":                                good + "0",
		"42 digits":                                good + "00",
		"0x only":                                  "0x",
		"uppercase 0X prefix":                      "0X" + good[2:],
		"no prefix":                                good[2:],
		"non-hex digit":                            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",
		"space inside":                             "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1 eAed",
		"leading space (caller trims)":             " " + good,
		"trailing newline (caller trims)":          good + "\n",
		"non-ASCII digit":                          "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAé",
		"empty":                                    "",
		"0x0x prefix":                              "0x0x" + good[4:],
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := ParseAddress(in); !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("ParseAddress(%q) = %+v, %v; want ErrInvalidAddress", in, got, err)
			}
		})
	}
}

const (
	// systemProgram is 32 zero bytes. Zero is a valid encoding: y = 0 gives
	// x² = -1, which has a root mod p, so it is a point (of order 4). We
	// accept it as an address, as web3.js isOnCurve does, but no signature
	// for it is ever accepted (see TestSmallOrderForgeryRejected).
	systemProgram = "11111111111111111111111111111111"
	// offCurve is 0x02 followed by 31 zero bytes (y = 2): (y²-1)/(dy²+1) has
	// no square root mod p. Found by trying first bytes 0, 1, 2, … against
	// edwards25519 decompression; web3.js agrees (see solana_points).
	offCurve = "8opHzTAnfzRpPEx21XtnrVTX28YQuCpAjcn1PczScKh"
)

func TestParseAddressSolana(t *testing.T) {
	valid := []string{systemProgram}
	for _, v := range loadVectors(t).Vectors {
		if v.Chain == Solana {
			valid = append(valid, v.Address)
		}
	}
	for _, in := range valid {
		got, err := ParseAddress(in)
		if err != nil || got != (Address{Chain: Solana, String: in}) {
			t.Errorf("ParseAddress(%q) = %+v, %v; want it unchanged as a Solana address", in, got, err)
		}
	}
}

func TestParseAddressSolanaInvalid(t *testing.T) {
	key := mustVector(t, "solana/key0/ascii").Address
	raw, err := base58.Decode(key)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"off curve":                    offCurve,
		"31 bytes":                     base58.Encode(raw[:31]),
		"33 bytes":                     base58.Encode(append(append([]byte{}, raw...), 7)),
		"31 zero bytes":                strings.Repeat("1", 31),
		"33 zero bytes":                strings.Repeat("1", 33),
		"non-canonical y = p":          "H242rsh5hzpvDdct56PG5YPQbKUT37EmySQLoQqrYUJr",
		"x = 0 with sign bit":          "4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziohZ",
		"base58 has no 0":              "0" + key[1:],
		"base58 has no O":              "O" + key[1:],
		"base58 has no I":              "I" + key[1:],
		"base58 has no l":              "l" + key[1:],
		"leading space (caller trims)": " " + key,
		"non-ASCII":                    "é" + key[2:],
		"far too long":                 strings.Repeat("z", 10_000),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := ParseAddress(in); !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("ParseAddress(%q) = %+v, %v; want ErrInvalidAddress", in, got, err)
			}
		})
	}
}
