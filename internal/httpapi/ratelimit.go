package httpapi

import (
	"context"
	"sync"
	"time"
)

// Counter counts hits in fixed windows: each hit counts once in key's
// minute window and once in its second window, and HitRate returns both
// counts so far. The store's implementation is exact across replicas (one
// statement per hit); Memory is exact within one process, which is all an
// embedded SQLite deployment has.
type Counter interface {
	HitRate(ctx context.Context, key string, minute, second time.Time) (perMin, perSec int, err error)
}

// Memory is an in-process Counter.
type Memory struct {
	mu      sync.Mutex
	buckets map[string]*window
	sweep   time.Time
}

type window struct {
	start time.Time
	hits  int
}

// NewMemory returns an empty in-process counter.
func NewMemory() *Memory { return &Memory{buckets: map[string]*window{}} }

func (m *Memory) HitRate(_ context.Context, key string, minute, second time.Time) (perMin, perSec int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hit(key+":m", minute), m.hit(key+":s", second), nil
}

func (m *Memory) hit(bucket string, start time.Time) int {
	// Forget windows that ended long ago, at most once a minute, so memory
	// stays bounded by the keys active in the last minutes.
	if start.Sub(m.sweep) > time.Minute {
		for k, w := range m.buckets {
			if start.Sub(w.start) > 2*time.Minute {
				delete(m.buckets, k)
			}
		}
		m.sweep = start
	}
	w := m.buckets[bucket]
	if w == nil {
		w = &window{start: start}
		m.buckets[bucket] = w
	}
	// Windows only move forward: a request stamped with an older window
	// (it read the clock just before the boundary) counts in the current one.
	if start.After(w.start) {
		w.start, w.hits = start, 0
	}
	w.hits++
	return w.hits
}
