package diditsim

import (
	"context"
	"fmt"
	"slices"
)

// Deliveries returns every webhook attempt so far, in the order they were
// made.
func (s *Sim) Deliveries() []Delivery {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Delivery, len(h.attempts))
	for i, a := range h.attempts {
		out[i] = a.Delivery.clone()
	}
	return out
}

// WaitDeliveries blocks until at least n attempts have been made, then
// returns them all.
func (s *Sim) WaitDeliveries(ctx context.Context, n int) ([]Delivery, error) {
	return s.WaitFor(ctx, func(ds []Delivery) bool { return len(ds) >= n })
}

// WaitFor blocks until cond holds for the attempts made so far (checked
// after each new attempt), then returns them.
func (s *Sim) WaitFor(ctx context.Context, cond func([]Delivery) bool) ([]Delivery, error) {
	h := s.hooks
	for {
		h.mu.Lock()
		ch := h.changed
		h.mu.Unlock()
		ds := s.Deliveries()
		if cond(ds) {
			return ds, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ds, fmt.Errorf("diditsim: waiting for webhook deliveries (have %d): %w", len(ds), ctx.Err())
		}
	}
}

// Resend sends the event of delivery deliveryID again, once, to the same
// destination, freshly signed (or as tamper says), and returns the attempts
// made. TamperReplay repeats the original bytes and headers exactly.
func (s *Sim) Resend(ctx context.Context, deliveryID, tamper string) ([]Delivery, error) {
	if err := validTamper(tamper, true); err != nil {
		return nil, err
	}
	h := s.hooks
	h.mu.Lock()
	var orig *attempt
	for i := range h.attempts {
		if h.attempts[i].ID == deliveryID {
			a := h.attempts[i]
			orig = &a
			break
		}
	}
	h.mu.Unlock()
	if orig == nil {
		return nil, fmt.Errorf("%w: delivery %s", ErrNotFound, deliveryID)
	}
	if tamper == TamperReplay {
		if orig.Body == nil {
			return nil, fmt.Errorf("%w: delivery %s was never built", ErrInvalidInput, deliveryID)
		}
		p := prepared{body: orig.Body, header: orig.Header, ts: orig.Timestamp}
		status, err := h.post(ctx, orig.dest.URL, p)
		return []Delivery{h.record(orig.dest, orig.ev, 1, true, tamper, p, status, err)}, nil
	}
	return h.sendOnce(ctx, orig.dest, orig.ev, tamper)
}

// Redeliver sends event eventID once more to every destination subscribed to
// its type, e.g. an older status after a newer one to test ordering.
func (s *Sim) Redeliver(ctx context.Context, eventID, tamper string) ([]Delivery, error) {
	if err := validTamper(tamper, false); err != nil {
		return nil, err
	}
	ev := s.eventByID(eventID)
	if ev == nil {
		return nil, fmt.Errorf("%w: event %s", ErrNotFound, eventID)
	}
	h := s.hooks
	h.mu.Lock()
	dests := slices.Clone(h.dests)
	h.mu.Unlock()
	var out []Delivery
	for _, d := range dests {
		if !slices.Contains(d.Events, ev.webhookType) {
			continue
		}
		ds, err := h.sendOnce(ctx, d, ev, tamper)
		out = append(out, ds...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (h *hub) sendOnce(ctx context.Context, d *destination, ev *event, tamper string) ([]Delivery, error) {
	p, err := h.prepare(d, ev, tamper)
	if err != nil {
		return nil, err
	}
	if tamper == TamperDrop {
		return []Delivery{h.record(d, ev, 1, true, tamper, p, 0, errDropped)}, nil
	}
	status, err := h.post(ctx, d.URL, p)
	out := []Delivery{h.record(d, ev, 1, true, tamper, p, status, err)}
	if tamper == TamperDuplicate {
		status, err = h.post(ctx, d.URL, p)
		out = append(out, h.record(d, ev, 2, true, tamper, p, status, err))
	}
	return out, nil
}

func validTamper(t string, allowReplay bool) error {
	switch t {
	case TamperNone, TamperBadSignature, TamperStaleTimestamp, TamperDuplicate, TamperDrop:
		return nil
	case TamperReplay:
		if allowReplay {
			return nil
		}
	}
	return fmt.Errorf("%w: unknown tamper %q", ErrInvalidInput, t)
}

// TamperNext applies tamper to the next count queued deliveries (of session
// sessionID, or of any session when it is ""). TamperReplay is not allowed.
func (s *Sim) TamperNext(tamper string, count int, sessionID string) error {
	if tamper == TamperNone || tamper == TamperReplay {
		return fmt.Errorf("%w: tamper %q cannot be queued", ErrInvalidInput, tamper)
	}
	if err := validTamper(tamper, false); err != nil {
		return err
	}
	if count <= 0 {
		count = 1
	}
	h := s.hooks
	h.mu.Lock()
	h.tampers = append(h.tampers, &tamperRule{kind: tamper, remaining: count, sessionID: sessionID})
	h.mu.Unlock()
	return nil
}

// HoldWebhooks keeps new deliveries of session sessionID (every session when
// "") queued without sending them, until ReleaseWebhooks.
func (s *Sim) HoldWebhooks(sessionID string) {
	h := s.hooks
	h.mu.Lock()
	h.held[sessionID] = true
	h.mu.Unlock()
}

// ReleaseWebhooks ends a hold and queues the held deliveries: oldest first,
// or newest first when reverse is true (out-of-order delivery). It returns
// how many were released.
func (s *Sim) ReleaseWebhooks(sessionID string, reverse bool) int {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	var release, keep []*job
	for _, j := range h.heldJobs {
		if sessionID == "" || j.ev.sessionID == sessionID {
			release = append(release, j)
		} else {
			keep = append(keep, j)
		}
	}
	h.heldJobs = keep
	if sessionID == "" {
		clear(h.held)
	} else {
		delete(h.held, sessionID)
	}
	if reverse {
		slices.Reverse(release)
	}
	for _, j := range release {
		h.pushLocked(j)
	}
	return len(release)
}
