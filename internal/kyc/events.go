package kyc

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"
)

// needsDecision lists the statuses whose decision we keep (docs/api.md §11).
func needsDecision(status DiditStatus) bool {
	switch status {
	case StatusApproved, StatusDeclined, StatusInReview, StatusAbandoned:
		return true
	}
	return false
}

// watch says whether the reconciler should keep polling a session.
func watch(s Session) bool {
	return Open(s.Status) || (needsDecision(s.Status) && s.Decision == nil)
}

// supersedes says whether event ev may replace the stored state: never an
// older event, never a non-final status over a final one, and of two events
// with the same time the later stage wins.
func supersedes(old Session, ev SessionEvent) bool {
	if ev.At.Before(old.EventAt) {
		return false
	}
	if Final(old.Status) && !Final(ev.Status) {
		return false
	}
	if ev.At.Equal(old.EventAt) && statusRank[ev.Status] < statusRank[old.Status] {
		return false
	}
	if ev.Status == old.Status && (ev.Decision == nil || old.Decision != nil && ev.At.Equal(old.EventAt)) {
		return false // nothing new
	}
	return true
}

// decisionFetchTimeout bounds the decision fetch done while answering a
// webhook that came without one.
const decisionFetchTimeout = 5 * time.Second

// HandleEvent applies a verified provider event (webhook or poll).
// Duplicates, stale or out-of-order events and unknown sessions change
// nothing and are not errors: the provider must not retry them.
func (s *Service) HandleEvent(ctx context.Context, ev SessionEvent) error {
	if !ValidStatus(ev.Status) || ev.SessionID == "" {
		return nil
	}
	key := ev.EventID
	if key == "" {
		key = ev.SessionID + "|" + string(ev.Status) + "|" + strconv.FormatInt(ev.At.Unix(), 10)
	}
	fetched := false
	for attempt := 0; attempt < 10; attempt++ {
		cur, err := s.store.SessionByID(ctx, ev.SessionID)
		if errors.Is(err, ErrNotFound) {
			// Didit announces a new session ("Not Started") as it creates
			// it, often before the create's answer lets us store it: that
			// event says nothing the answer does not, so it is no news to
			// an operator. Any later status for a session we do not know
			// is (another deployment's, or one we lost).
			level := slog.LevelInfo
			if ev.Status == StatusNotStarted {
				level = slog.LevelDebug
			}
			s.log.Log(ctx, level, "event for unknown session ignored", "session", ev.SessionID, "status", string(ev.Status))
			return nil
		}
		if err != nil {
			return err
		}
		if !supersedes(cur, ev) {
			return nil
		}
		if ev.Decision == nil && needsDecision(ev.Status) && !fetched && s.provider != nil {
			fetched = true
			// Bounded: a webhook must be answered quickly, and the
			// reconciler fetches the decision later if this fails.
			dctx, cancel := context.WithTimeout(ctx, decisionFetchTimeout)
			d, err := s.provider.GetDecision(dctx, ev.SessionID)
			cancel()
			if err != nil {
				// Apply the status now; the reconciler fetches the decision later.
				s.log.WarnContext(ctx, "fetch decision", "session", ev.SessionID, "err", err)
			} else if d.Status == ev.Status {
				ev.Decision = &d
			}
		}
		next := cur
		next.Status = ev.Status
		next.EventAt = ev.At
		if ev.Decision != nil {
			next.IPInfo = ev.Decision.IPInfo
			next.Blocklisted = ev.Decision.Blocklisted
			next.Decision = ev.Decision.Raw
			if next.Decision == nil {
				next.Decision = []byte("{}")
			}
		}
		next.UpdatedAt = s.now()
		next.Watch = watch(next)
		dup, err := s.store.ApplyEvent(ctx, key, next, s.now(), s.statusFanout(cur, next))
		if errors.Is(err, ErrConflict) {
			continue // changed under us: re-read and decide again
		}
		if err != nil {
			return err
		}
		if !dup && next.Status != cur.Status {
			s.auditObject(ctx, cur.TenantID, AuditSessionStatus, "session", ev.SessionID, string(next.Status))
		}
		if !dup {
			s.log.InfoContext(ctx, "session updated", "session", ev.SessionID, "status", ev.Status)
		}
		return nil
	}
	return errors.New("kyc: session kept changing while applying event")
}

// Reconcile polls the provider for watched sessions not checked within
// every, so a lost webhook never strands a user. It returns how many
// sessions it checked.
func (s *Service) Reconcile(ctx context.Context, every time.Duration, batch int) (int, error) {
	if s.provider == nil {
		return 0, nil
	}
	// What a poll changes, Didit said.
	ctx = WithActor(ctx, Actor{Kind: ActorDidit})
	now := s.now()
	due := now.Add(-every)
	list, err := s.store.WatchedSessions(ctx, due, batch)
	if err != nil {
		return 0, err
	}
	// Oldest first: the first session is the one waiting longest past its
	// poll time; none due is no lag.
	var lag time.Duration
	if len(list) > 0 {
		lag = max(due.Sub(list[0].CheckedAt), 0)
	}
	s.obs.ReconcileLag(lag)
	for _, sess := range list {
		d, err := s.provider.GetDecision(ctx, sess.ID)
		if errors.Is(err, ErrNotFound) {
			// Deleted at Didit: nothing will ever change, so stop polling.
			gone := sess
			gone.Watch = false
			gone.UpdatedAt = s.now()
			if _, err := s.store.ApplyEvent(ctx, "gone:"+sess.ID, gone, s.now(), nil); err != nil && !errors.Is(err, ErrConflict) {
				return 0, err
			}
			s.log.WarnContext(ctx, "reconcile: session deleted at the provider; no longer polled", "session", sess.ID)
		} else if err != nil {
			s.obs.ProviderError(ProviderOpDecision)
			s.log.WarnContext(ctx, "reconcile: fetch decision", "session", sess.ID, "err", err)
		} else if ValidStatus(d.Status) {
			// A poll is Didit's truth now: stamp it with the poll time, so a
			// delayed webhook stamped earlier cannot undo it. Truncated to
			// Didit's whole seconds, so a webhook from the same second still
			// competes by status rank instead of being dropped as older.
			at := s.now().Truncate(time.Second)
			if at.Before(sess.EventAt) {
				at = sess.EventAt
			}
			ev := SessionEvent{SessionID: sess.ID, Status: d.Status, At: at,
				EventID: "poll:" + sess.ID + ":" + strconv.FormatInt(s.now().UnixNano(), 10)}
			if needsDecision(d.Status) {
				ev.Decision = &d
			}
			if err := s.HandleEvent(ctx, ev); err != nil {
				// One bad session must not stall the rest: it is marked
				// checked below and tried again next interval.
				s.log.ErrorContext(ctx, "reconcile: apply", "session", sess.ID, "err", err)
			}
		}
		if err := s.store.MarkSessionChecked(ctx, sess.ID, s.now()); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}
