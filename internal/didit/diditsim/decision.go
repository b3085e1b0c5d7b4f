package diditsim

import (
	"encoding/json"
	"time"
)

// Feature names as they appear in a decision's "features" and in warnings.
const (
	featureID       = "ID_VERIFICATION"
	featureLiveness = "LIVENESS"
	featureFace     = "FACE_MATCH"
	featureAML      = "AML"
	featureIP       = "IP_ANALYSIS"
	featurePhone    = "PHONE"
	featureEmail    = "EMAIL"
)

// Node ids of the simulated workflow; every v3 feature item names its node.
const (
	nodeID       = "feature_ocr"
	nodeLiveness = "feature_liveness"
	nodeFace     = "feature_face_match"
	nodeAML      = "feature_aml"
	nodeIP       = "feature_ip_analysis"
	nodePhone    = "feature_phone"
	nodeEmail    = "feature_email"
)

// Feature-level statuses (docs/didit.md §3.2).
const (
	featNotFinished = "Not Finished"
	featApproved    = "Approved"
	featDeclined    = "Declined"
	featInReview    = "In Review"
)

// warning is the object used in every warnings[] array.
type warning struct {
	Feature          string         `json:"feature"`
	Risk             string         `json:"risk"`
	AdditionalData   map[string]any `json:"additional_data"`
	LogType          string         `json:"log_type"`
	ShortDescription string         `json:"short_description"`
	LongDescription  string         `json:"long_description"`
	NodeID           string         `json:"node_id"`
}

// match is a cross-session matches[] entry.
type match struct {
	SessionID            string  `json:"session_id"`
	SessionNumber        int     `json:"session_number"`
	VendorData           *string `json:"vendor_data"`
	Status               string  `json:"status"`
	IsBlocklisted        bool    `json:"is_blocklisted"`
	IsAllowlisted        bool    `json:"is_allowlisted"`
	Source               string  `json:"source"`
	SimilarityPercentage *Float  `json:"similarity_percentage,omitempty"`
	VerificationDate     string  `json:"verification_date"`
}

type idVerification struct {
	NodeID           string            `json:"node_id"`
	Status           string            `json:"status"`
	DocumentType     string            `json:"document_type"`
	DocumentSubtype  *string           `json:"document_subtype"`
	DocumentNumber   string            `json:"document_number"`
	PersonalNumber   string            `json:"personal_number"`
	PortraitImage    string            `json:"portrait_image"`
	FrontImage       string            `json:"front_image"`
	BackImage        string            `json:"back_image"`
	FrontVideo       *string           `json:"front_video"`
	BackVideo        *string           `json:"back_video"`
	FullFrontImage   string            `json:"full_front_image"`
	FullBackImage    string            `json:"full_back_image"`
	DateOfBirth      string            `json:"date_of_birth"`
	Age              int               `json:"age"`
	ExpirationDate   string            `json:"expiration_date"`
	DateOfIssue      string            `json:"date_of_issue"`
	IssuingState     string            `json:"issuing_state"`
	IssuingStateName string            `json:"issuing_state_name"`
	FirstName        string            `json:"first_name"`
	LastName         string            `json:"last_name"`
	FullName         string            `json:"full_name"`
	Gender           string            `json:"gender"`
	Address          string            `json:"address"`
	FormattedAddress string            `json:"formatted_address"`
	ParsedAddress    map[string]string `json:"parsed_address"`
	PlaceOfBirth     string            `json:"place_of_birth"`
	MaritalStatus    string            `json:"marital_status"`
	Nationality      string            `json:"nationality"`
	ExtraFields      map[string]string `json:"extra_fields"`
	Warnings         []warning         `json:"warnings"`
	Matches          []match           `json:"matches"`
}

type livenessCheck struct {
	NodeID         string    `json:"node_id"`
	Status         string    `json:"status"`
	Method         string    `json:"method"`
	Score          Float     `json:"score"`
	ReferenceImage string    `json:"reference_image"`
	VideoURL       string    `json:"video_url"`
	AgeEstimation  Float     `json:"age_estimation"`
	FaceQuality    Float     `json:"face_quality"`
	FaceLuminance  Float     `json:"face_luminance"`
	Warnings       []warning `json:"warnings"`
	Matches        []match   `json:"matches"`
}

type faceMatch struct {
	NodeID               string    `json:"node_id"`
	Status               string    `json:"status"`
	Score                Float     `json:"score"`
	SourceImage          string    `json:"source_image"`
	TargetImage          string    `json:"target_image"`
	SourceImageSessionID *string   `json:"source_image_session_id"`
	Warnings             []warning `json:"warnings"`
}

type amlHit struct {
	ID        string   `json:"id"`
	Caption   string   `json:"caption"`
	Match     bool     `json:"match"`
	Score     Float    `json:"score"`
	Datasets  []string `json:"datasets"`
	Countries []string `json:"countries"`
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
}

type amlScreening struct {
	NodeID                        string            `json:"node_id"`
	Status                        string            `json:"status"`
	TotalHits                     int               `json:"total_hits"`
	EntityType                    string            `json:"entity_type"`
	Hits                          []amlHit          `json:"hits"`
	Score                         Float             `json:"score"`
	ScreenedData                  map[string]string `json:"screened_data"`
	IsOngoingMonitoringEnabled    bool              `json:"is_ongoing_monitoring_enabled"`
	NextOngoingMonitoringBillDate *string           `json:"next_ongoing_monitoring_bill_date"`
	Warnings                      []warning         `json:"warnings"`
}

type geoPoint struct {
	Latitude  Float `json:"latitude"`
	Longitude Float `json:"longitude"`
}

type ipDetails struct {
	Location                *geoPoint `json:"location"`
	DistanceFromIDDocument  any       `json:"distance_from_id_document"`
	DistanceFromPOADocument any       `json:"distance_from_poa_document"`
}

type ipAnalysis struct {
	NodeID            string     `json:"node_id"`
	Status            string     `json:"status"`
	DeviceBrand       string     `json:"device_brand"`
	DeviceModel       string     `json:"device_model"`
	BrowserFamily     string     `json:"browser_family"`
	OSFamily          string     `json:"os_family"`
	Platform          string     `json:"platform"`
	DeviceFingerprint string     `json:"device_fingerprint"`
	IPCountry         string     `json:"ip_country"`
	IPCountryCode     string     `json:"ip_country_code"`
	IPState           string     `json:"ip_state"`
	IPCity            string     `json:"ip_city"`
	Latitude          Float      `json:"latitude"`
	Longitude         Float      `json:"longitude"`
	IPAddress         string     `json:"ip_address"`
	ISP               *string    `json:"isp"`
	Organization      *string    `json:"organization"`
	IsVPNOrTor        bool       `json:"is_vpn_or_tor"`
	IsDataCenter      bool       `json:"is_data_center"`
	TimeZone          string     `json:"time_zone"`
	TimeZoneOffset    string     `json:"time_zone_offset"`
	IP                *ipDetails `json:"ip"`
	IDDocument        any        `json:"id_document"`
	POADocument       any        `json:"poa_document"`
	Warnings          []warning  `json:"warnings"`
	Matches           []match    `json:"matches"`
}

type phoneVerification struct {
	NodeID               string            `json:"node_id"`
	Status               string            `json:"status"`
	PhoneNumberPrefix    string            `json:"phone_number_prefix"`
	PhoneNumber          string            `json:"phone_number"`
	FullNumber           string            `json:"full_number"`
	CountryCode          string            `json:"country_code"`
	CountryName          string            `json:"country_name"`
	Carrier              map[string]string `json:"carrier"`
	IsDisposable         bool              `json:"is_disposable"`
	IsVirtual            bool              `json:"is_virtual"`
	VerificationMethod   string            `json:"verification_method"`
	VerificationAttempts int               `json:"verification_attempts"`
	VerifiedAt           *string           `json:"verified_at"`
	Warnings             []warning         `json:"warnings"`
	Matches              []match           `json:"matches"`
}

type emailVerification struct {
	NodeID               string    `json:"node_id"`
	Status               string    `json:"status"`
	Email                string    `json:"email"`
	IsBreached           bool      `json:"is_breached"`
	Breaches             []string  `json:"breaches"`
	IsDisposable         bool      `json:"is_disposable"`
	IsUndeliverable      bool      `json:"is_undeliverable"`
	VerificationAttempts int       `json:"verification_attempts"`
	VerifiedAt           *string   `json:"verified_at"`
	Warnings             []warning `json:"warnings"`
	Matches              []match   `json:"matches"`
}

// result is what a finished (or abandoned) flow produced. A nil slice is a
// feature that never ran and is written as null.
type result struct {
	preset      string
	features    []string
	ids         []*idVerification
	liveness    []*livenessCheck
	faceMatches []*faceMatch
	aml         []*amlScreening
	ips         []*ipAnalysis
	phones      []*phoneVerification
	emails      []*emailVerification
}

// review is one reviews[] entry.
type review struct {
	User      string `json:"user"`
	NewStatus string `json:"new_status"`
	Comment   string `json:"comment"`
	CreatedAt string `json:"created_at"`
}

// decisionV3 is GET /v3/session/{id}/decision/ (docs/didit.md §3).
type decisionV3 struct {
	SessionID              string               `json:"session_id"`
	SessionKind            string               `json:"session_kind"`
	SessionNumber          int                  `json:"session_number"`
	SessionURL             string               `json:"session_url"`
	Status                 string               `json:"status"`
	Environment            string               `json:"environment"`
	WorkflowID             string               `json:"workflow_id"`
	Features               []string             `json:"features"`
	VendorData             *string              `json:"vendor_data"`
	Metadata               json.RawMessage      `json:"metadata"`
	ExpectedDetails        json.RawMessage      `json:"expected_details"`
	ContactDetails         json.RawMessage      `json:"contact_details"`
	Callback               *string              `json:"callback"`
	CreatedAt              string               `json:"created_at"`
	IDVerifications        []*idVerification    `json:"id_verifications"`
	NFCVerifications       []any                `json:"nfc_verifications"`
	LivenessChecks         []*livenessCheck     `json:"liveness_checks"`
	FaceMatches            []*faceMatch         `json:"face_matches"`
	POAVerifications       []any                `json:"poa_verifications"`
	DocumentAIDocuments    []any                `json:"document_ai_documents"`
	PhoneVerifications     []*phoneVerification `json:"phone_verifications"`
	EmailVerifications     []*emailVerification `json:"email_verifications"`
	AMLScreenings          []*amlScreening      `json:"aml_screenings"`
	IPAnalyses             []*ipAnalysis        `json:"ip_analyses"`
	DatabaseValidations    []any                `json:"database_validations"`
	QuestionnaireResponses []any                `json:"questionnaire_responses"`
	Reviews                []review             `json:"reviews"`
}

// decisionV2 is the v2 shape (docs/didit.md §3.5): one singular object per
// feature, the first instance of each.
type decisionV2 struct {
	SessionID       string             `json:"session_id"`
	SessionNumber   int                `json:"session_number"`
	SessionURL      string             `json:"session_url"`
	Status          string             `json:"status"`
	Environment     string             `json:"environment"`
	WorkflowID      string             `json:"workflow_id"`
	Features        []string           `json:"features"`
	VendorData      *string            `json:"vendor_data"`
	Metadata        json.RawMessage    `json:"metadata"`
	ExpectedDetails json.RawMessage    `json:"expected_details"`
	ContactDetails  json.RawMessage    `json:"contact_details"`
	Callback        *string            `json:"callback"`
	CreatedAt       string             `json:"created_at"`
	IDVerification  *idVerification    `json:"id_verification"`
	NFC             any                `json:"nfc"`
	Liveness        *livenessCheck     `json:"liveness"`
	FaceMatch       *faceMatch         `json:"face_match"`
	POA             any                `json:"poa"`
	Phone           *phoneVerification `json:"phone"`
	Email           *emailVerification `json:"email"`
	AML             *amlScreening      `json:"aml"`
	IPAnalysis      *ipAnalysis        `json:"ip_analysis"`
	Reviews         []review           `json:"reviews"`
}

// baseFeatures is the simulated workflow: ID, liveness, face match, AML and
// device/IP analysis. Phone and email nodes appear only in the presets that
// exercise them.
var baseFeatures = []string{featureID, featureLiveness, featureFace, featureAML, featureIP}

// pyTime formats t like Python's isoformat on a UTC datetime, as DRF
// renders it: microseconds and a Z.
func pyTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func (s *Sim) decisionV3Locked(sess *session) decisionV3 {
	d := decisionV3{
		SessionID:       sess.id,
		SessionKind:     "user",
		SessionNumber:   sess.number,
		SessionURL:      sess.url,
		Status:          sess.status,
		Environment:     sess.env,
		WorkflowID:      sess.workflowID,
		Features:        baseFeatures,
		VendorData:      sess.vendorData,
		Metadata:        sess.metadata,
		ExpectedDetails: sess.expectedDetails,
		ContactDetails:  sess.contactDetails,
		Callback:        sess.callback,
		CreatedAt:       pyTime(sess.createdAt),
		Reviews:         append([]review{}, sess.reviews...),
	}
	if r := sess.result; r != nil {
		d.Features = r.features
		d.IDVerifications = r.ids
		d.LivenessChecks = r.liveness
		d.FaceMatches = r.faceMatches
		d.AMLScreenings = r.aml
		d.IPAnalyses = r.ips
		d.PhoneVerifications = r.phones
		d.EmailVerifications = r.emails
	}
	return d
}

func (s *Sim) decisionV2Locked(sess *session) decisionV2 {
	v3 := s.decisionV3Locked(sess)
	return decisionV2{
		SessionID:       v3.SessionID,
		SessionNumber:   v3.SessionNumber,
		SessionURL:      v3.SessionURL,
		Status:          v3.Status,
		Environment:     v3.Environment,
		WorkflowID:      v3.WorkflowID,
		Features:        v3.Features,
		VendorData:      v3.VendorData,
		Metadata:        v3.Metadata,
		ExpectedDetails: v3.ExpectedDetails,
		ContactDetails:  v3.ContactDetails,
		Callback:        v3.Callback,
		CreatedAt:       v3.CreatedAt,
		IDVerification:  first(v3.IDVerifications),
		Liveness:        first(v3.LivenessChecks),
		FaceMatch:       first(v3.FaceMatches),
		Phone:           first(v3.PhoneVerifications),
		Email:           first(v3.EmailVerifications),
		AML:             first(v3.AMLScreenings),
		IPAnalysis:      first(v3.IPAnalyses),
		Reviews:         v3.Reviews,
	}
}

func first[T any](xs []*T) *T {
	if len(xs) == 0 {
		return nil
	}
	return xs[0]
}

// featureStatuses is the list row's features[] (docs/didit.md §5.3).
func featureStatuses(sess *session) []map[string]string {
	out := []map[string]string{}
	if sess.result == nil {
		for _, f := range baseFeatures {
			out = append(out, map[string]string{"feature": f, "status": featNotFinished})
		}
		return out
	}
	r := sess.result
	status := func(present bool, st string) string {
		if !present {
			return featNotFinished
		}
		return st
	}
	for _, f := range r.features {
		var st string
		switch f {
		case featureID:
			st = status(len(r.ids) > 0, firstStatus(r.ids, func(x *idVerification) string { return x.Status }))
		case featureLiveness:
			st = status(len(r.liveness) > 0, firstStatus(r.liveness, func(x *livenessCheck) string { return x.Status }))
		case featureFace:
			st = status(len(r.faceMatches) > 0, firstStatus(r.faceMatches, func(x *faceMatch) string { return x.Status }))
		case featureAML:
			st = status(len(r.aml) > 0, firstStatus(r.aml, func(x *amlScreening) string { return x.Status }))
		case featureIP:
			st = status(len(r.ips) > 0, firstStatus(r.ips, func(x *ipAnalysis) string { return x.Status }))
		case featurePhone:
			st = status(len(r.phones) > 0, firstStatus(r.phones, func(x *phoneVerification) string { return x.Status }))
		case featureEmail:
			st = status(len(r.emails) > 0, firstStatus(r.emails, func(x *emailVerification) string { return x.Status }))
		}
		out = append(out, map[string]string{"feature": f, "status": st})
	}
	return out
}

func firstStatus[T any](xs []*T, get func(*T) string) string {
	if len(xs) == 0 {
		return ""
	}
	return get(xs[0])
}
