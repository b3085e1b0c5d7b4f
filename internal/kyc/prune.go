package kyc

import (
	"context"
	"time"
)

// EventRetention is how long webhook event keys are kept for
// de-duplication. Didit retries for minutes, not days; a week leaves ample
// room for manual resends.
const EventRetention = 7 * 24 * time.Hour

// Prune removes expired challenges, lapsed claims, old event keys and old
// rate-limit windows. Codes are not pruned: one row per (tenant, person)
// holds the send history the hourly limit needs.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now := s.now()
	return s.store.Prune(ctx, PruneBefore{
		Challenges:   now.Add(-time.Hour), // an hour past expiry: late callers still get challenge_expired
		Claims:       now,
		Events:       now.Add(-EventRetention),
		RateCounters: now.Add(-10 * time.Minute),
	})
}
