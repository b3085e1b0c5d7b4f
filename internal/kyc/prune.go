package kyc

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// EventRetention is how long webhook event keys are kept for
// de-duplication. Didit retries for minutes, not days; a week leaves ample
// room for manual resends.
const EventRetention = 7 * 24 * time.Hour

// OutboxRetention is how long outbound webhook events and their finished
// deliveries are kept: the delivery log shows them, and redeliver can send
// them again, for this long.
const OutboxRetention = 30 * 24 * time.Hour

// Prune removes expired challenges, lapsed claims, old event keys, old
// rate-limit windows, expired idempotency keys, old outbound webhook
// events, codes an hour past their
// expiry, send histories whose every send left the hourly window, and,
// with Config.DecisionRetention, the decisions and IP/device facts of
// sessions decided longer ago (their status stays), and with
// Config.AuditRetention the audit entries older than that (each chain's
// sealed prefix; its head stays).
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now := s.now()
	p := PruneBefore{
		Challenges:   now.Add(-time.Hour), // an hour past expiry: late callers still get challenge_expired
		Claims:       now.Add(-claimSweepMargin),
		Events:       now.Add(-EventRetention),
		RateCounters: now.Add(-10 * time.Minute),
		Idempotency:  now,
		Outbox:       now.Add(-OutboxRetention),
		// As challenges: late callers still get otp_expired for an hour.
		OTPCodes: now.Add(-time.Hour),
		// A history with no send in the window, no gap running and no
		// delivery under way limits nothing: the row is as good as none.
		OTPSends: now.Add(-max(s.cfg.OTPWindow, s.cfg.OTPMinGap)),
	}
	if s.cfg.DecisionRetention > 0 {
		p.Decisions = now.Add(-s.cfg.DecisionRetention)
		p.FinalStatuses = finalStatuses
	}
	if s.cfg.AuditRetention > 0 {
		p.Audit = now.Add(-s.cfg.AuditRetention)
	}
	n, err := s.store.Prune(ctx, p)
	if err != nil {
		return n, fmt.Errorf("prune: %w", err)
	}
	return n, nil
}

// finalStatuses are the statuses after which a session is decided for good.
var finalStatuses = func() []DiditStatus {
	var out []DiditStatus
	for st := range statusRank {
		if Final(st) {
			out = append(out, st)
		}
	}
	slices.Sort(out)
	return out
}()

// claimSweepMargin is how long past its lapse a claim is left alone
// before the sweep takes it: a live holder renews long before its lease
// ends, and the margin absorbs clock skew between replicas. A person who
// comes back meanwhile takes the claim over at once anyway.
const claimSweepMargin = 5 * time.Second

// SweepClaims gives back the quota units of creation claims whose holder
// died (SIGKILL, power loss) and deletes the claims; it returns how many.
// It runs often (with reconciliation), so that after a crash quota used
// matches sessions created within seconds, not at the next prune.
func (s *Service) SweepClaims(ctx context.Context) (int64, error) {
	return s.store.SweepLapsedClaims(ctx, s.now().Add(-claimSweepMargin))
}
