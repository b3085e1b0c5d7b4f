package main

import (
	"context"
	"errors"
	"testing"

	"github.com/kycgate/kycgate/client"
)

// TestClient drives kycgate through the public Go client: the email path,
// the wallet path, a session approved in the simulator, and the errors as
// the client's sentinels. Every answer also passes the OpenAPI check.
func TestClient(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Acme", "--rate-limit-per-minute", "0")
	c := client.New(in.URL, key, client.WithHTTPClient(in.client))
	ctx := context.Background()

	t.Run("email", func(t *testing.T) {
		const email = "client@example.com"
		p, err := c.Prepare(ctx, email)
		if err != nil || !p.Created || p.State != nil {
			t.Fatalf("Prepare = %+v, %v; want created without state", p, err)
		}
		p, err = c.Prepare(ctx, email)
		if err != nil || p.Created || p.State == nil || p.State.EmailVerified || p.State.KYCStatus != "pending" {
			t.Fatalf("Prepare again = %+v, %v; want the state of an unverified user", p, err)
		}
		if _, err := c.CreateSession(ctx, client.KYCTypePublic, client.User{Email: email}); !errors.Is(err, client.ErrIdentityNotVerified) {
			t.Fatalf("CreateSession before verifying = %v, want ErrIdentityNotVerified", err)
		}
		if err := c.SendOTP(ctx, client.OTPRequest{Email: email}); err != nil {
			t.Fatal(err)
		}
		code := mb.code(email)
		err = c.SendOTP(ctx, client.OTPRequest{Email: email})
		var e *client.Error
		if !errors.Is(err, client.ErrOTPSendRateLimited) || !errors.As(err, &e) || e.HTTPStatus != 429 || e.RetryAfter <= 0 {
			t.Fatalf("second SendOTP = %#v, want ErrOTPSendRateLimited with Retry-After", err)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if err := c.VerifyOTP(ctx, client.OTPRequest{Email: email}, wrong); !errors.Is(err, client.ErrOTPInvalid) {
			t.Fatalf("VerifyOTP(wrong) = %v, want ErrOTPInvalid", err)
		}
		if err := c.VerifyOTP(ctx, client.OTPRequest{Email: email}, code); err != nil {
			t.Fatalf("VerifyOTP = %v", err)
		}
		s, err := c.CreateSession(ctx, client.KYCTypePublic, client.User{Email: email})
		if err != nil || s.ID == "" || s.URL == "" || s.Approved {
			t.Fatalf("CreateSession = %+v, %v", s, err)
		}
		st, err := c.Status(ctx, client.User{Email: email})
		if err != nil || st.SessionID != s.ID || st.Approved {
			t.Fatalf("Status = %+v, %v", st, err)
		}
		approveSession(t, in, s.ID)
		st, err = c.Status(ctx, client.User{Email: email})
		if err != nil || st.Status != "approved" || !st.Approved || st.SessionStatus != "Approved" {
			t.Fatalf("Status after approval = %+v, %v", st, err)
		}
		s2, err := c.CreateSession(ctx, client.KYCTypePublic, client.User{Email: email})
		if err != nil || !s2.Approved || s2.ID != s.ID {
			t.Fatalf("CreateSession after approval = %+v, %v; want the approved session", s2, err)
		}
	})

	t.Run("wallet", func(t *testing.T) {
		needSigner(t)
		w := testWallet(t, "evm", 1)
		ch, err := c.WalletChallenge(ctx, w.Address)
		if err != nil || ch.Chain != "evm" || ch.Message == "" {
			t.Fatalf("WalletChallenge = %+v, %v", ch, err)
		}
		proof := client.WalletProof{Wallet: w.Address, Message: ch.Message, SignedBytes: sign1(t, w, ch.Message)}
		p, err := c.PrepareWallet(ctx, proof)
		if err != nil || !p.Created || p.State == nil || p.State.WalletVerified == nil || !*p.State.WalletVerified {
			t.Fatalf("PrepareWallet = %+v, %v", p, err)
		}
		if _, err := c.PrepareWallet(ctx, proof); !errors.Is(err, client.ErrChallengeNotFound) {
			t.Fatalf("PrepareWallet with a used challenge = %v, want ErrChallengeNotFound", err)
		}
		if _, err := c.WalletChallenge(ctx, "0x1234"); !errors.Is(err, client.ErrInvalidWallet) {
			t.Fatalf("WalletChallenge(bad wallet) = %v, want ErrInvalidWallet", err)
		}
	})

	t.Run("key and product", func(t *testing.T) {
		on, err := c.Products(ctx)
		if err != nil || !on {
			t.Fatalf("Products = %v, %v", on, err)
		}
		bad := client.New(in.URL, "sk_wrong", client.WithHTTPClient(in.client))
		if _, err := bad.Status(ctx, client.User{Email: "x@example.com"}); !errors.Is(err, client.ErrInvalidAPIKey) {
			t.Fatalf("Status with a wrong key = %v, want ErrInvalidAPIKey", err)
		}
		if _, err := c.Status(ctx, client.User{Email: "nobody@example.com"}); !errors.Is(err, client.ErrUserNotFound) {
			t.Fatalf("Status of a stranger = %v, want ErrUserNotFound", err)
		}
	})
}
