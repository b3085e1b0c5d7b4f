package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
)

// scenario is one endpoint under load. setup makes a pool of n fixtures
// (rows in the database, signed bodies) tagged tag and returns a generator
// of requests against base; n is ignored by scenarios that need none.
type scenario struct {
	name   string
	write  bool
	expect int
	pooled bool // consumes one fixture per request
	setup  func(ctx context.Context, h *harness, e *engine, tag string, n int) (func(base, key string) Gen, error)
}

func newReq(method, url, key string, body []byte) *http.Request {
	var req *http.Request
	if body != nil {
		req, _ = http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest(method, url, nil)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	return req
}

// pool hands out indexes 0..n-1 once each.
type pool struct {
	next atomic.Int64
	n    int64
}

func (p *pool) take() (int, bool) {
	i := p.next.Add(1) - 1
	return int(i), i < p.n
}

func emailBody(email string) []byte { return []byte(`{"email":"` + email + `"}`) }

const statusUsers = 1000

var scenarios = []scenario{
	{name: "status", expect: 200,
		// A thousand verified people, each with an approved session
		// (created once per engine, see harness.engineSetup).
		setup: func(_ context.Context, h *harness, e *engine, _ string, _ int) (func(base, key string) Gen, error) {
			return statusGen("st", statusUsers), nil
		}},
	{name: "prepare", write: true, expect: 201,
		setup: func(_ context.Context, _ *harness, _ *engine, tag string, _ int) (func(base, key string) Gen, error) {
			return func(base, key string) Gen {
				var seq atomic.Int64
				return func() (*http.Request, bool) {
					i := seq.Add(1)
					return newReq("POST", base+"/kyc/prepare", key, emailBody("pr_"+tag+"_"+strconv.FormatInt(i, 10)+"@load.test")), true
				}
			}, nil
		}},
	{name: "send-otp", write: true, expect: 201, pooled: true,
		setup: func(ctx context.Context, _ *harness, e *engine, tag string, n int) (func(base, key string) Gen, error) {
			if err := e.persons(ctx, tag, n, false); err != nil {
				return nil, err
			}
			return func(base, key string) Gen {
				p := &pool{n: int64(n)}
				return func() (*http.Request, bool) {
					i, ok := p.take()
					return newReq("POST", base+"/security/email/send-otp", key, emailBody(emailOf(tag, i))), ok
				}
			}, nil
		}},
	{name: "verify-otp", write: true, expect: 200, pooled: true,
		setup: func(ctx context.Context, h *harness, e *engine, tag string, n int) (func(base, key string) Gen, error) {
			if err := e.persons(ctx, tag, n, false); err != nil {
				return nil, err
			}
			if err := e.otps(ctx, tag, n, h.secret); err != nil {
				return nil, err
			}
			return func(base, key string) Gen {
				p := &pool{n: int64(n)}
				return func() (*http.Request, bool) {
					i, ok := p.take()
					return newReq("POST", base+"/security/email/verify-otp", key,
						[]byte(`{"email":"`+emailOf(tag, i)+`","code":"`+fixtureCode+`"}`)), ok
				}
			}, nil
		}},
	{name: "challenge", write: true, expect: 201,
		setup: func(_ context.Context, h *harness, _ *engine, _ string, _ int) (func(base, key string) Gen, error) {
			return func(base, key string) Gen {
				var seq atomic.Int64
				return func() (*http.Request, bool) {
					w := h.addrs[int(seq.Add(1))%len(h.addrs)]
					return newReq("POST", base+"/security/wallet/challenge", key, []byte(`{"wallet":"`+w+`"}`)), true
				}
			}, nil
		}},
	{name: "prepare-wallet", write: true, expect: 201, pooled: true,
		setup: func(ctx context.Context, h *harness, e *engine, tag string, n int) (func(base, key string) Gen, error) {
			ws := signWallets(n)
			if err := e.challenges(ctx, ws); err != nil {
				return nil, err
			}
			bodies := make([][]byte, n)
			for i, w := range ws {
				bodies[i], _ = json.Marshal(map[string]string{"wallet": w.wallet, "message": w.message, "signed_bytes": w.signature})
			}
			return func(base, key string) Gen {
				p := &pool{n: int64(n)}
				return func() (*http.Request, bool) {
					i, ok := p.take()
					if !ok {
						return nil, false
					}
					return newReq("POST", base+"/kyc/prepare-wallet", key, bodies[i]), true
				}
			}, nil
		}},
	{name: "create-session", write: true, expect: 201, pooled: true,
		setup: func(ctx context.Context, _ *harness, e *engine, tag string, n int) (func(base, key string) Gen, error) {
			if err := e.persons(ctx, tag, n, true); err != nil {
				return nil, err
			}
			return func(base, key string) Gen {
				p := &pool{n: int64(n)}
				return func() (*http.Request, bool) {
					i, ok := p.take()
					return newReq("POST", base+"/kyc/create/verify_public_kyc", key, emailBody(emailOf(tag, i))), ok
				}
			}, nil
		}},
	{name: "webhook", write: true, expect: 200, pooled: true,
		setup: func(ctx context.Context, h *harness, e *engine, tag string, n int) (func(base, key string) Gen, error) {
			if err := e.persons(ctx, tag, n, true); err != nil {
				return nil, err
			}
			if err := e.sessions(ctx, tag, n, "Not Started"); err != nil {
				return nil, err
			}
			type signed struct {
				body []byte
				sig  didit.Signatures
			}
			hooks := make([]signed, n)
			ts := time.Now().Unix()
			for i := range n {
				body := fmt.Appendf(nil, `{"event_id":"%s","webhook_type":"status.updated","session_id":"%s","status":"In Progress","vendor_data":"%s","environment":"live","timestamp":%d,"created_at":%d}`,
					fmt.Sprintf("ev-%s-%d", tag, i), sessionOf(tag, i), personOf(tag, i), ts, ts)
				sig, err := didit.Sign(h.hookSecret, body, ts)
				if err != nil {
					return nil, err
				}
				hooks[i] = signed{body, sig}
			}
			return func(base, _ string) Gen {
				p := &pool{n: int64(n)}
				return func() (*http.Request, bool) {
					i, ok := p.take()
					if !ok {
						return nil, false
					}
					req := newReq("POST", base+"/webhooks/didit", "", hooks[i].body)
					hooks[i].sig.SetHeaders(req.Header)
					return req, true
				}
			}, nil
		}},
}

// statusGen asks for the status of random people among tag_0..tag_{n-1}.
func statusGen(tag string, n int) func(base, key string) Gen {
	return func(base, key string) Gen {
		return func() (*http.Request, bool) {
			return newReq("GET", base+"/kyc/status?email="+tag+"_"+strconv.Itoa(rand.IntN(n))+"%40load.test", key, nil), true
		}
	}
}
