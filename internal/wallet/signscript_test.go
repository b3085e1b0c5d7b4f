package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/testenv"
)

// TestSignScript checks the CLI that end-to-end tests use to play a wallet
// (scripts/wallet/sign.mjs) against this verifier. It needs node and an
// installed scripts/wallet/node_modules, so it skips where they are absent.
func TestSignScript(t *testing.T) {
	dir := filepath.Join("..", "..", "scripts", "wallet")
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node", "apt-get install nodejs npm")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		testenv.Missing(t, "scripts/wallet/node_modules", "npm ci in scripts/wallet")
	}
	const seed = "0101010101010101010101010101010101010101010101010101010101010101"
	message := "StarkFi KYC verification\nWallet: x\nJosé Müller ✓"
	for _, chain := range []Chain{EVM, Solana} {
		t.Run(string(chain), func(t *testing.T) {
			in, _ := json.Marshal(map[string]string{"chain": string(chain), "seed_hex": seed, "message": message})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "sign.mjs"))
			cmd.Stdin = bytes.NewReader(in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("sign.mjs: %v: %s", err, stderr.String())
			}
			var got struct{ Address, Signature string }
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("sign.mjs output %q: %v", out, err)
			}
			addr, err := ParseAddress(got.Address)
			if err != nil || addr.Chain != chain || addr.String != got.Address {
				t.Fatalf("ParseAddress(%q) = %+v, %v", got.Address, addr, err)
			}
			if err := VerifySignature(addr, []byte(message), got.Signature); err != nil {
				t.Fatalf("VerifySignature: %v", err)
			}
		})
	}
}
