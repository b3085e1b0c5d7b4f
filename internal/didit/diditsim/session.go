package diditsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Environments: which "application" (API key) a session belongs to.
const (
	envLive    = "live"
	envSandbox = "sandbox"
)

// workflowVersion is the version every simulated workflow is on.
const workflowVersion = 1

// Errors returned by the control methods.
var (
	ErrNotFound          = errors.New("diditsim: session not found")
	ErrInvalidTransition = errors.New("diditsim: transition not allowed from the current status")
	ErrInvalidInput      = errors.New("diditsim: invalid input")
)

type session struct {
	id, token       string
	number          int
	url             string
	env             string
	internalID      string
	workflowID      string
	vendorData      *string
	callback        *string
	callbackMethod  string
	language        string
	metadata        json.RawMessage
	contactDetails  json.RawMessage
	expectedDetails json.RawMessage
	status          string
	createdAt       time.Time
	updatedAt       time.Time
	deleted         bool
	armed           string // preselected preset
	notStartedSent  bool
	result          *result
	reviews         []review
}

// unfinished statuses: a create with the same vendor_data reuses the session.
var reusableStatuses = []string{StatusNotStarted, StatusInProgress, StatusResubmitted, StatusAwaitingUser}

// decisionStatuses carry a decision in webhooks (docs/didit.md §6.3).
var decisionStatuses = []string{StatusApproved, StatusDeclined, StatusInReview, StatusAbandoned}

// SessionInfo is a snapshot of one simulated session.
type SessionInfo struct {
	ID          string          `json:"session_id"`
	Number      int             `json:"session_number"`
	Token       string          `json:"session_token"`
	URL         string          `json:"url"`
	Status      string          `json:"status"`
	Environment string          `json:"environment"`
	WorkflowID  string          `json:"workflow_id"`
	VendorData  *string         `json:"vendor_data"`
	Callback    *string         `json:"callback"`
	Metadata    json.RawMessage `json:"metadata"`
	CreatedAt   time.Time       `json:"created_at"`
	Deleted     bool            `json:"deleted"`
	Armed       string          `json:"armed_outcome,omitempty"`
	Outcome     string          `json:"outcome,omitempty"` // preset that produced the current result
}

func (sess *session) info() SessionInfo {
	si := SessionInfo{
		ID: sess.id, Number: sess.number, Token: sess.token, URL: sess.url, Status: sess.status,
		Environment: sess.env, WorkflowID: sess.workflowID, VendorData: sess.vendorData,
		Callback: sess.callback, Metadata: sess.metadata, CreatedAt: sess.createdAt,
		Deleted: sess.deleted, Armed: sess.armed,
	}
	if sess.result != nil {
		si.Outcome = sess.result.preset
	}
	return si
}

// Sessions lists every session ever created (deleted ones flagged), oldest
// first.
func (s *Sim) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.order))
	for _, sess := range s.order {
		out = append(out, sess.info())
	}
	return out
}

// Session returns one session by id (deleted ones included).
func (s *Sim) Session(id string) (SessionInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return SessionInfo{}, ErrNotFound
	}
	return sess.info(), nil
}

// Decision returns the session's v3 decision JSON, as the API would.
func (s *Sim) Decision(id string) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return nil, ErrNotFound
	}
	return marshalCompact(s.decisionV3Locked(sess))
}

// lookup finds a session for a control operation.
func (s *Sim) lookupLocked(id string) (*session, error) {
	sess, ok := s.sessions[id]
	if !ok || sess.deleted {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return sess, nil
}

// setStatusLocked moves sess to status and emits status.updated.
func (s *Sim) setStatusLocked(sess *session, status string) {
	sess.status = status
	sess.updatedAt = s.nowLocked()
	s.emitLocked(sess, EventStatusUpdated, nil)
}

// startLocked is the person opening the link: Not Started → In Progress.
// With NotStartedWebhook "open", the Not Started event fires first.
func (s *Sim) startLocked(sess *session) error {
	if sess.status != StatusNotStarted {
		return fmt.Errorf("%w: start from %q", ErrInvalidTransition, sess.status)
	}
	if !sess.notStartedSent {
		sess.notStartedSent = true
		s.emitLocked(sess, EventStatusUpdated, nil)
	}
	s.setStatusLocked(sess, StatusInProgress)
	return nil
}

// runningLocked starts a session that has not started; one in progress or
// resubmitted is already running; any other cannot take action.
func (s *Sim) runningLocked(sess *session, action string) error {
	switch sess.status {
	case StatusNotStarted:
		return s.startLocked(sess)
	case StatusInProgress, StatusResubmitted:
		return nil
	}
	return fmt.Errorf("%w: %s from %q", ErrInvalidTransition, action, sess.status)
}

// completeLocked finishes the flow with outcome o.
func (s *Sim) completeLocked(sess *session, o Outcome) error {
	if err := o.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	if err := s.runningLocked(sess, "complete"); err != nil {
		return err
	}
	name := o.Preset
	if name == "" {
		name = sess.armed
	}
	if name == "" {
		name = PresetApproved
	}
	p, _ := presetByName(name)
	sess.result = buildResult(sess, o, p, s.baseURL, s.nowLocked())
	s.setStatusLocked(sess, p.Status)
	return nil
}

func (s *Sim) abandonLocked(sess *session, ipf IPFields) error {
	if err := ipf.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	if err := s.runningLocked(sess, "abandon"); err != nil {
		return err
	}
	if sess.result == nil {
		sess.result = abandonedResult(sess, ipf)
	}
	s.setStatusLocked(sess, StatusAbandoned)
	return nil
}

// withSession runs fn on a live session under the lock.
func (s *Sim) withSession(ctx context.Context, id string, fn func(*session) error) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.lookupLocked(id)
	if err != nil {
		return err
	}
	return fn(sess)
}

// Start moves a session from Not Started to In Progress, as opening the
// hosted page does.
func (s *Sim) Start(ctx context.Context, sessionID string) error {
	return s.withSession(ctx, sessionID, s.startLocked)
}

// Complete finishes the flow with outcome (starting it first if needed),
// producing Approved, Declined or In Review with matching feature items.
func (s *Sim) Complete(ctx context.Context, sessionID string, outcome Outcome) error {
	return s.withSession(ctx, sessionID, func(sess *session) error { return s.completeLocked(sess, outcome) })
}

// Abandon ends an open flow as Abandoned.
func (s *Sim) Abandon(ctx context.Context, sessionID string) error {
	return s.withSession(ctx, sessionID, func(sess *session) error { return s.abandonLocked(sess, IPFields{}) })
}

// Expire moves a Not Started session to Expired.
func (s *Sim) Expire(ctx context.Context, sessionID string) error {
	return s.withSession(ctx, sessionID, func(sess *session) error {
		if sess.status != StatusNotStarted {
			return fmt.Errorf("%w: expire from %q", ErrInvalidTransition, sess.status)
		}
		s.setStatusLocked(sess, StatusExpired)
		return nil
	})
}

// KycExpire moves an Approved session to Kyc Expired (its document expired).
func (s *Sim) KycExpire(ctx context.Context, sessionID string) error {
	return s.withSession(ctx, sessionID, func(sess *session) error {
		if sess.status != StatusApproved {
			return fmt.Errorf("%w: kyc_expire from %q", ErrInvalidTransition, sess.status)
		}
		s.setStatusLocked(sess, StatusKycExpired)
		return nil
	})
}

// updateStatusAllowedFrom is the API's rule for PATCH update-status
// (docs/didit.md §5.1).
var updateStatusAllowedFrom = []string{StatusApproved, StatusDeclined, StatusInReview, StatusKycExpired, StatusAbandoned, StatusResubmitted}

// Resubmit moves a decided session to Resubmitted, as a reviewer asking the
// person to redo steps would; the hosted page then accepts a new outcome.
func (s *Sim) Resubmit(ctx context.Context, sessionID string) error {
	return s.withSession(ctx, sessionID, func(sess *session) error {
		if !slices.Contains(updateStatusAllowedFrom, sess.status) {
			return fmt.Errorf("%w: resubmit from %q", ErrInvalidTransition, sess.status)
		}
		s.addReviewLocked(sess, "Simulator", StatusResubmitted, "")
		s.setStatusLocked(sess, StatusResubmitted)
		return nil
	})
}

// SetStatus forces any of the ten statuses, bypassing the transition rules,
// and emits status.updated. The feature items are left as they are.
func (s *Sim) SetStatus(ctx context.Context, sessionID, status string) error {
	if !slices.Contains(AllStatuses, status) {
		return fmt.Errorf("%w: unknown status %q", ErrInvalidInput, status)
	}
	return s.withSession(ctx, sessionID, func(sess *session) error {
		s.setStatusLocked(sess, status)
		return nil
	})
}

// DataEdit is a reviewer-style edit of a session's extracted data; it emits
// data.updated. Keys of ID are id_verifications[0] string fields
// (first_name, last_name, full_name, date_of_birth, document_number, ...).
type DataEdit struct {
	ID map[string]string `json:"id_verification,omitempty"`
	IP *IPFields         `json:"ip,omitempty"`
}

// UpdateData applies edit and emits data.updated.
func (s *Sim) UpdateData(ctx context.Context, sessionID string, edit DataEdit) error {
	return s.withSession(ctx, sessionID, func(sess *session) error {
		if sess.result == nil {
			return fmt.Errorf("%w: session has no data yet", ErrInvalidTransition)
		}
		if len(edit.ID) > 0 {
			if len(sess.result.ids) == 0 {
				return fmt.Errorf("%w: session has no ID verification", ErrInvalidTransition)
			}
			for k, v := range edit.ID {
				if err := setIDField(sess.result.ids[0], k, v); err != nil {
					return err
				}
			}
		}
		if edit.IP != nil {
			if err := edit.IP.validate(); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidInput, err)
			}
			if len(sess.result.ips) == 0 {
				return fmt.Errorf("%w: session has no IP analysis", ErrInvalidTransition)
			}
			edit.IP.apply(sess.result.ips[0])
		}
		sess.updatedAt = s.nowLocked()
		s.emitLocked(sess, EventDataUpdated, nil)
		return nil
	})
}

func setIDField(id *idVerification, key, v string) error {
	fields := map[string]*string{
		"document_type": &id.DocumentType, "document_number": &id.DocumentNumber,
		"personal_number": &id.PersonalNumber, "date_of_birth": &id.DateOfBirth,
		"expiration_date": &id.ExpirationDate, "date_of_issue": &id.DateOfIssue,
		"issuing_state": &id.IssuingState, "issuing_state_name": &id.IssuingStateName,
		"first_name": &id.FirstName, "last_name": &id.LastName, "full_name": &id.FullName,
		"gender": &id.Gender, "address": &id.Address, "formatted_address": &id.FormattedAddress,
		"place_of_birth": &id.PlaceOfBirth, "marital_status": &id.MaritalStatus, "nationality": &id.Nationality,
	}
	p, ok := fields[key]
	if !ok {
		return fmt.Errorf("%w: id_verification field %q cannot be edited", ErrInvalidInput, key)
	}
	*p = v
	return nil
}

func (s *Sim) addReviewLocked(sess *session, user, newStatus, comment string) {
	sess.reviews = append(sess.reviews, review{
		User: user, NewStatus: newStatus, Comment: comment, CreatedAt: pyTime(s.nowLocked()),
	})
}
