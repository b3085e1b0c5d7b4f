package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"

	"github.com/kycgate/kycgate/internal/wallet"
)

// signedWallet is a fresh EVM wallet with a challenge issued to it and the
// EIP-191 personal_sign signature over that challenge's message.
type signedWallet struct {
	wallet, nonce, message, signature string
	expires                           time.Time
}

func keccak(b ...[]byte) []byte {
	k := sha3.NewLegacyKeccak256()
	for _, p := range b {
		k.Write(p)
	}
	return k.Sum(nil)
}

// newEVMWallet returns a key and its EIP-55 address.
func newEVMWallet() (*secp256k1.PrivateKey, string) {
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		panic(err)
	}
	addr := keccak(key.PubKey().SerializeUncompressed()[1:])[12:]
	a, err := wallet.ParseAddress("0x" + hex.EncodeToString(addr))
	if err != nil {
		panic(err)
	}
	return key, a.String
}

// personalSign is what ethers' Wallet.signMessage returns: hex r‖s‖v, v 27/28.
func personalSign(key *secp256k1.PrivateKey, msg string) string {
	h := keccak([]byte("\x19Ethereum Signed Message:\n"+strconv.Itoa(len(msg))), []byte(msg))
	c := ecdsa.SignCompact(key, h, false) // [27+recid] ‖ r ‖ s
	sig := append(append([]byte{}, c[1:]...), c[0])
	return "0x" + hex.EncodeToString(sig)
}

func nonce() string {
	return rand.Text()[:24] // base32: alphanumeric, 120 bits
}

// signWallets makes n signed challenges, in parallel (setup, not measured).
func signWallets(n int) []signedWallet {
	out := make([]signedWallet, n)
	now := time.Now().UTC().Truncate(time.Second)
	exp := now.Add(10 * time.Minute)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				key, addr := newEVMWallet()
				nc := nonce()
				msg := fmt.Sprintf("StarkFi KYC verification\nWallet: %s\nChain: evm\nPurpose: kyc\nNonce: %s\nIssued At: %s\nExpiration Time: %s",
					addr, nc, now.Format(time.RFC3339), exp.Format(time.RFC3339))
				out[i] = signedWallet{wallet: addr, nonce: nc, message: msg, signature: personalSign(key, msg), expires: exp}
			}
		}()
	}
	wg.Wait()
	return out
}
