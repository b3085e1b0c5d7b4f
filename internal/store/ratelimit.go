package store

import (
	"context"
	"fmt"
	"time"
)

// HitRate counts one hit in key's minute window and one in its second
// window and returns each window's count so far. Both counters move in one
// statement, one round trip, and each is one upsert, so the counts are
// exact across replicas. Windows only move forward: a replica whose clock
// lags counts its hit in the current window instead of resetting it.
// Every caller names the two rows in the same order, so concurrent hits on
// one key take their row locks in the same order and cannot deadlock.
func (db *DB) HitRate(ctx context.Context, key string, minute, second time.Time) (perMin, perSec int, err error) {
	minBucket, secBucket := key+":m", key+":s"
	rows, err := db.w.QueryContext(ctx, `INSERT INTO rate_counters (bucket, window_start, hits) VALUES ($1, $2, 1), ($3, $4, 1)
		ON CONFLICT (bucket) DO UPDATE SET
			hits = CASE WHEN excluded.window_start > rate_counters.window_start THEN 1 ELSE rate_counters.hits + 1 END,
			window_start = CASE WHEN excluded.window_start > rate_counters.window_start
				THEN excluded.window_start ELSE rate_counters.window_start END
		RETURNING bucket, hits`, minBucket, ms(minute), secBucket, ms(second))
	if err != nil {
		return 0, 0, fmt.Errorf("store: rate counter: %w", err)
	}
	defer rows.Close()
	// RETURNING's row order is not promised; name each row.
	got := 0
	for rows.Next() {
		var bucket string
		var hits int
		if err := rows.Scan(&bucket, &hits); err != nil {
			return 0, 0, fmt.Errorf("store: rate counter: %w", err)
		}
		switch bucket {
		case minBucket:
			perMin, got = hits, got+1
		case secBucket:
			perSec, got = hits, got+1
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("store: rate counter: %w", err)
	}
	if got != 2 {
		return 0, 0, fmt.Errorf("store: rate counter: %d of 2 windows returned", got)
	}
	return perMin, perSec, nil
}
