package diditsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Outcome presets, in the spirit of Didit's sandbox scenarios (docs/didit.md §12.2).
const (
	PresetApproved          = "approved"
	PresetDeclinedID        = "declined_id"
	PresetDeclinedLiveness  = "declined_liveness"
	PresetDeclinedFaceMatch = "declined_face_match"
	PresetInReviewAML       = "in_review_aml"
	PresetBlocklistFace     = "declined_blocklist_face"
	PresetBlocklistDocument = "declined_blocklist_document"
	PresetBlocklistPhone    = "declined_blocklist_phone"
	PresetBlocklistEmail    = "declined_blocklist_email"
	PresetVPN               = "vpn"
	PresetDataCenter        = "data_center"
	PresetDuplicateDevice   = "duplicate_device"
	// PresetMultiIP is approved with three ip_analyses entries, two of them
	// from the same IP address on different devices, so consumers'
	// one-entry-per-IP de-duplication gets exercised.
	PresetMultiIP = "multi_ip"
)

// Session statuses: Didit's ten exact strings (docs/didit.md §4).
const (
	StatusNotStarted   = "Not Started"
	StatusInProgress   = "In Progress"
	StatusApproved     = "Approved"
	StatusDeclined     = "Declined"
	StatusInReview     = "In Review"
	StatusAwaitingUser = "Awaiting User"
	StatusResubmitted  = "Resubmitted"
	StatusExpired      = "Expired"
	StatusAbandoned    = "Abandoned"
	StatusKycExpired   = "Kyc Expired"
)

// AllStatuses lists the ten statuses in Didit's documented order.
var AllStatuses = []string{
	StatusNotStarted, StatusInProgress, StatusApproved, StatusDeclined, StatusInReview,
	StatusAwaitingUser, StatusResubmitted, StatusExpired, StatusAbandoned, StatusKycExpired,
}

// PresetInfo describes one outcome preset.
type PresetInfo struct {
	Name   string `json:"name"`
	Label  string `json:"label"`
	Status string `json:"status"` // session status it produces
	Risk   string `json:"risk,omitempty"`
}

var presetList = []PresetInfo{
	{PresetApproved, "Approve", StatusApproved, ""},
	{PresetDeclinedID, "Decline: ID document", StatusDeclined, "DOCUMENT_EXPIRED"},
	{PresetDeclinedLiveness, "Decline: liveness", StatusDeclined, "LIVENESS_FACE_ATTACK"},
	{PresetDeclinedFaceMatch, "Decline: face match", StatusDeclined, "LOW_FACE_MATCH_SIMILARITY"},
	{PresetInReviewAML, "In review: AML hit", StatusInReview, "POSSIBLE_MATCH_FOUND"},
	{PresetVPN, "VPN / Tor", StatusDeclined, "PRIVATE_NETWORK_DETECTED"},
	{PresetDataCenter, "Data-centre IP", StatusInReview, "PRIVATE_NETWORK_DETECTED"},
	{PresetDuplicateDevice, "Duplicate device", StatusDeclined, "DUPLICATED_DEVICE_FINGERPRINT"},
	{PresetBlocklistFace, "Blocklisted face", StatusDeclined, "FACE_IN_BLOCKLIST"},
	{PresetBlocklistDocument, "Blocklisted document", StatusDeclined, "ID_DOCUMENT_IN_BLOCKLIST"},
	{PresetBlocklistPhone, "Blocklisted phone", StatusDeclined, "PHONE_NUMBER_IN_BLOCKLIST"},
	{PresetBlocklistEmail, "Blocklisted email", StatusDeclined, "EMAIL_IN_BLOCKLIST"},
	{PresetMultiIP, "Approve, several IPs", StatusApproved, ""},
}

// Presets lists every outcome preset.
func Presets() []PresetInfo { return append([]PresetInfo(nil), presetList...) }

// presetNames lists the presets' names, for errors that refuse one.
func presetNames() string {
	names := make([]string, len(presetList))
	for i, p := range presetList {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

func presetByName(name string) (PresetInfo, bool) {
	for _, p := range presetList {
		if p.Name == name {
			return p, true
		}
	}
	return PresetInfo{}, false
}

// IPFields overrides fields of an ip_analyses entry. Empty strings and nil
// pointers leave the preset's value. Overrides set fields only: they do not
// add or remove warnings (use the vpn/data_center presets for those).
type IPFields struct {
	IPAddress     string `json:"ip_address,omitempty"`
	IPCountry     string `json:"ip_country,omitempty"`
	IPCountryCode string `json:"ip_country_code,omitempty"`
	IPState       string `json:"ip_state,omitempty"`
	IPCity        string `json:"ip_city,omitempty"`
	Platform      string `json:"platform,omitempty"`
	DeviceBrand   string `json:"device_brand,omitempty"`
	DeviceModel   string `json:"device_model,omitempty"`
	IsVPNOrTor    *bool  `json:"is_vpn_or_tor,omitempty"`
	IsDataCenter  *bool  `json:"is_data_center,omitempty"`
}

func (f IPFields) validate() error {
	if f.IPAddress != "" {
		if _, err := netip.ParseAddr(f.IPAddress); err != nil {
			return fmt.Errorf("ip_address %q is not an IP address", f.IPAddress)
		}
	}
	if f.IPCountryCode != "" && len(f.IPCountryCode) != 2 {
		return fmt.Errorf("ip_country_code %q must be ISO alpha-2", f.IPCountryCode)
	}
	switch f.Platform {
	case "", "mobile", "tablet", "desktop":
	default:
		return fmt.Errorf("platform %q must be mobile, tablet or desktop", f.Platform)
	}
	return nil
}

func (f IPFields) apply(ip *ipAnalysis) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&ip.IPAddress, f.IPAddress)
	set(&ip.IPCountry, f.IPCountry)
	set(&ip.IPCountryCode, strings.ToUpper(f.IPCountryCode))
	set(&ip.IPState, f.IPState)
	set(&ip.IPCity, f.IPCity)
	set(&ip.Platform, f.Platform)
	set(&ip.DeviceBrand, f.DeviceBrand)
	set(&ip.DeviceModel, f.DeviceModel)
	if f.IsVPNOrTor != nil {
		ip.IsVPNOrTor = *f.IsVPNOrTor
	}
	if f.IsDataCenter != nil {
		ip.IsDataCenter = *f.IsDataCenter
	}
}

// Outcome is how a simulated person finishes the flow.
type Outcome struct {
	// Preset names the outcome (Preset* constants). Empty means the session's
	// armed scenario (sandbox_scenario or a vendor_data magic value), else
	// approved.
	Preset string `json:"outcome"`
	// IP overrides fields of the first ip_analyses entry.
	IP IPFields `json:"ip"`
	// ExtraIPs appends further ip_analyses entries: copies of the first one
	// with these overrides and their own device fingerprint.
	ExtraIPs []IPFields `json:"extra_ips,omitempty"`
}

func (o Outcome) validate() error {
	if o.Preset != "" {
		if _, ok := presetByName(o.Preset); !ok {
			return fmt.Errorf("unknown outcome %q; the outcomes are %s, and abandon on the hosted page", o.Preset, presetNames())
		}
	}
	if err := o.IP.validate(); err != nil {
		return err
	}
	for _, f := range o.ExtraIPs {
		if err := f.validate(); err != nil {
			return err
		}
	}
	return nil
}

// armedPreset reads a preselected outcome from vendor_data: either exactly a
// preset name, or anything ending in "+<preset>" (e.g. "user-7+vpn").
func armedPreset(vendorData string) string {
	if _, ok := presetByName(vendorData); ok {
		return vendorData
	}
	if i := strings.LastIndexByte(vendorData, '+'); i >= 0 {
		if _, ok := presetByName(vendorData[i+1:]); ok {
			return vendorData[i+1:]
		}
	}
	return ""
}

// riskText gives the short and long descriptions of each risk code used.
var riskText = map[string][2]string{
	"DOCUMENT_EXPIRED":              {"Document expired", "The identity document's expiration date is in the past."},
	"LIVENESS_FACE_ATTACK":          {"Presentation attack detected", "The liveness check detected a spoofing attempt (screen, mask or printed photo)."},
	"LOW_FACE_MATCH_SIMILARITY":     {"Low face match similarity", "The selfie does not match the portrait on the document closely enough."},
	"POSSIBLE_MATCH_FOUND":          {"Possible AML match found", "The screened person may match an entry on a sanctions, PEP or adverse-media list."},
	"FACE_IN_BLOCKLIST":             {"Face in blocklist", "The face matches a face on the application's blocklist."},
	"ID_DOCUMENT_IN_BLOCKLIST":      {"Document in blocklist", "The identity document is on the application's blocklist."},
	"PHONE_NUMBER_IN_BLOCKLIST":     {"Phone number in blocklist", "The phone number is on the application's blocklist."},
	"EMAIL_IN_BLOCKLIST":            {"Email in blocklist", "The email address is on the application's blocklist."},
	"PRIVATE_NETWORK_DETECTED":      {"VPN, proxy or Tor detected", "The connection comes through a VPN, proxy, Tor exit node or hosting network."},
	"DUPLICATED_DEVICE_FINGERPRINT": {"Duplicated device", "This device fingerprint was already used in another user's session."},
}

func newWarning(feature, risk, logType, node string, extra map[string]any) warning {
	t := riskText[risk]
	return warning{
		Feature:          feature,
		Risk:             risk,
		AdditionalData:   extra,
		LogType:          logType,
		ShortDescription: t[0],
		LongDescription:  t[1],
		NodeID:           node,
	}
}

func strp(s string) *string { return &s }
func floatp(f Float) *Float { return &f }

// fingerprint is a stable device fingerprint per session and device slot.
func fingerprint(sessionID string, slot int) string {
	sum := sha256.Sum256([]byte(sessionID + "/" + strconv.Itoa(slot)))
	return hex.EncodeToString(sum[:16])
}

// mediaURL imitates a short-lived pre-signed media link; the simulator serves
// a placeholder image there.
func mediaURL(base, sessionID, name string, now time.Time) string {
	return fmt.Sprintf("%s/_sim/media/%s/%s.png?expires=%d", base, sessionID, name, now.Add(time.Hour).Unix())
}

// The default person: non-ASCII names and address on purpose, so canonical
// JSON (raw UTF-8) and Python's ASCII escaping both get exercised.
func defaultIDVerification(sess *session, base string, now time.Time) *idVerification {
	return &idVerification{
		NodeID:           nodeID,
		Status:           featApproved,
		DocumentType:     "Passport",
		DocumentNumber:   "PAA123456",
		PersonalNumber:   "12345678Z",
		PortraitImage:    mediaURL(base, sess.id, "portrait", now),
		FrontImage:       mediaURL(base, sess.id, "front", now),
		BackImage:        mediaURL(base, sess.id, "back", now),
		FullFrontImage:   mediaURL(base, sess.id, "full_front", now),
		FullBackImage:    mediaURL(base, sess.id, "full_back", now),
		DateOfBirth:      "1991-04-09",
		Age:              34,
		ExpirationDate:   "2031-04-08",
		DateOfIssue:      "2021-04-09",
		IssuingState:     "ESP",
		IssuingStateName: "Spain",
		FirstName:        "José",
		LastName:         "Müller",
		FullName:         "José Müller",
		Gender:           "M",
		Address:          "Calle de Alcalá 42, 28014 Madrid",
		FormattedAddress: "Calle de Alcalá 42, 28014 Madrid, Spain",
		ParsedAddress: map[string]string{
			"street_1": "Calle de Alcalá 42", "city": "Madrid", "postal_code": "28014", "country": "ES",
		},
		PlaceOfBirth:  "Sevilla",
		MaritalStatus: "UNKNOWN",
		Nationality:   "ESP",
		ExtraFields:   map[string]string{},
		Warnings:      []warning{},
		Matches:       []match{},
	}
}

func defaultLiveness(sess *session, base string, now time.Time) *livenessCheck {
	return &livenessCheck{
		NodeID:         nodeLiveness,
		Status:         featApproved,
		Method:         "PASSIVE",
		Score:          97.1,
		ReferenceImage: mediaURL(base, sess.id, "liveness_reference", now),
		VideoURL:       mediaURL(base, sess.id, "liveness_video", now),
		AgeEstimation:  33.8,
		FaceQuality:    89.0, // integer-valued: the raw body says 89.0
		FaceLuminance:  52.3,
		Warnings:       []warning{},
		Matches:        []match{},
	}
}

func defaultFaceMatch(sess *session, base string, now time.Time) *faceMatch {
	return &faceMatch{
		NodeID:      nodeFace,
		Status:      featApproved,
		Score:       91.4,
		SourceImage: mediaURL(base, sess.id, "face_source", now),
		TargetImage: mediaURL(base, sess.id, "face_target", now),
		Warnings:    []warning{},
	}
}

func defaultAML() *amlScreening {
	return &amlScreening{
		NodeID:     nodeAML,
		Status:     featApproved,
		TotalHits:  0,
		EntityType: "person",
		Hits:       []amlHit{},
		Score:      0.00005, // written 5e-05, as Python does
		ScreenedData: map[string]string{
			"full_name": "José Müller", "nationality": "ESP", "date_of_birth": "1991-04-09", "document_number": "PAA123456",
		},
		Warnings: []warning{},
	}
}

func defaultIP(sess *session, slot int) *ipAnalysis {
	return &ipAnalysis{
		NodeID:            nodeIP,
		Status:            featApproved,
		DeviceBrand:       "Apple",
		DeviceModel:       "iPhone",
		BrowserFamily:     "Mobile Safari",
		OSFamily:          "iOS",
		Platform:          "mobile",
		DeviceFingerprint: fingerprint(sess.id, slot),
		IPCountry:         "Spain",
		IPCountryCode:     "ES",
		IPState:           "Madrid",
		IPCity:            "Madrid",
		Latitude:          40.0, // integer-valued: the raw body says 40.0
		Longitude:         -3.7,
		IPAddress:         "203.0.113.7",
		ISP:               strp("Telefónica de España"),
		TimeZone:          "Europe/Madrid",
		TimeZoneOffset:    "+0100",
		IP:                &ipDetails{Location: &geoPoint{Latitude: 40.0, Longitude: -3.7}},
		Warnings:          []warning{},
		Matches:           []match{},
	}
}

func otherSessionMatch(number int, vendor, status string, blocklisted bool, source string, similarity *Float, now time.Time) match {
	return match{
		SessionID:            newUUID(),
		SessionNumber:        number,
		VendorData:           strp(vendor),
		Status:               status,
		IsBlocklisted:        blocklisted,
		Source:               source,
		SimilarityPercentage: similarity,
		VerificationDate:     pyTime(now.Add(-72 * time.Hour)),
	}
}

// buildResult produces the feature items for preset p (already validated).
func buildResult(sess *session, o Outcome, p PresetInfo, base string, now time.Time) *result {
	r := &result{
		preset:      p.Name,
		features:    append([]string(nil), baseFeatures...),
		ids:         []*idVerification{defaultIDVerification(sess, base, now)},
		liveness:    []*livenessCheck{defaultLiveness(sess, base, now)},
		faceMatches: []*faceMatch{defaultFaceMatch(sess, base, now)},
		aml:         []*amlScreening{defaultAML()},
		ips:         []*ipAnalysis{defaultIP(sess, 0)},
	}
	ip := r.ips[0]
	applyCheckPreset(r, sess, p.Name, now)
	applyNetworkPreset(r, sess, p.Name, now)
	o.IP.apply(ip)
	for i, f := range o.ExtraIPs {
		extra := *ip
		extra.DeviceFingerprint = fingerprint(sess.id, 10+i)
		extra.Warnings = []warning{}
		extra.Matches = []match{}
		if ip.IP != nil {
			d := *ip.IP
			extra.IP = &d
		}
		f.apply(&extra)
		r.ips = append(r.ips, &extra)
	}
	return r
}

// applyCheckPreset turns the document, face, AML and blocklist presets'
// checks from the default pass into what the preset shows.
func applyCheckPreset(r *result, sess *session, preset string, now time.Time) {
	id, live, face, aml := r.ids[0], r.liveness[0], r.faceMatches[0], r.aml[0]
	switch preset {
	case PresetDeclinedID:
		id.Status = featDeclined
		id.ExpirationDate = "2023-01-31"
		id.Warnings = append(id.Warnings, newWarning("ID_VERIFICATION", "DOCUMENT_EXPIRED", "error", nodeID,
			map[string]any{"expiration_date": "2023-01-31"}))
	case PresetDeclinedLiveness:
		live.Status = featDeclined
		live.Score = 12.5
		live.Warnings = append(live.Warnings, newWarning("LIVENESS", "LIVENESS_FACE_ATTACK", "error", nodeLiveness, nil))
	case PresetDeclinedFaceMatch:
		face.Status = featDeclined
		face.Score = 31.2
		face.Warnings = append(face.Warnings, newWarning("FACEMATCH", "LOW_FACE_MATCH_SIMILARITY", "error", nodeFace,
			map[string]any{"threshold": Float(50.0)}))
	case PresetInReviewAML:
		aml.Status = featInReview
		aml.TotalHits = 1
		aml.Score = 86.5
		aml.Hits = []amlHit{{
			ID: "sim-hit-" + sess.id[:8], Caption: "Jose Muller Garcia", Match: false, Score: 0.865,
			Datasets: []string{"PEP"}, Countries: []string{"es"},
			FirstSeen: "2019-05-01T00:00:00Z", LastSeen: pyTime(now.Add(-24 * time.Hour)),
		}}
		aml.Warnings = append(aml.Warnings, newWarning("AML", "POSSIBLE_MATCH_FOUND", "warning", nodeAML,
			map[string]any{"total_hits": 1}))
	case PresetBlocklistFace:
		live.Status = featDeclined
		live.Matches = append(live.Matches, otherSessionMatch(sess.number-17, "blocked-user", StatusDeclined, true, "list_entry", floatp(99.2), now))
		live.Warnings = append(live.Warnings, newWarning("LIVENESS", "FACE_IN_BLOCKLIST", "error", nodeLiveness, nil))
	case PresetBlocklistDocument:
		id.Status = featDeclined
		id.Matches = append(id.Matches, otherSessionMatch(sess.number-23, "blocked-user", StatusDeclined, true, "list_entry", nil, now))
		id.Warnings = append(id.Warnings, newWarning("ID_VERIFICATION", "ID_DOCUMENT_IN_BLOCKLIST", "error", nodeID, nil))
	case PresetBlocklistPhone:
		r.features = append(r.features, featurePhone)
		r.phones = []*phoneVerification{{
			NodeID: nodePhone, Status: featDeclined, PhoneNumberPrefix: "+34", PhoneNumber: "612345678",
			FullNumber: "+34612345678", CountryCode: "ES", CountryName: "Spain",
			Carrier:            map[string]string{"name": "Movistar", "type": "mobile"},
			VerificationMethod: "sms", VerificationAttempts: 1, VerifiedAt: strp(pyTime(now)),
			Warnings: []warning{newWarning("PHONE", "PHONE_NUMBER_IN_BLOCKLIST", "error", nodePhone, nil)},
			Matches:  []match{otherSessionMatch(sess.number-5, "blocked-user", StatusDeclined, true, "list_entry", nil, now)},
		}}
	case PresetBlocklistEmail:
		r.features = append(r.features, featureEmail)
		r.emails = []*emailVerification{{
			NodeID: nodeEmail, Status: featDeclined, Email: "jose.muller@example.com", Breaches: []string{},
			VerificationAttempts: 1, VerifiedAt: strp(pyTime(now)),
			Warnings: []warning{newWarning("EMAIL", "EMAIL_IN_BLOCKLIST", "error", nodeEmail, nil)},
			Matches:  []match{otherSessionMatch(sess.number-9, "blocked-user", StatusDeclined, true, "list_entry", nil, now)},
		}}
	}
}

// applyNetworkPreset does the same for the IP and device presets.
func applyNetworkPreset(r *result, sess *session, preset string, now time.Time) {
	ip := r.ips[0]
	switch preset {
	case PresetVPN:
		ip.Status = featDeclined
		ip.IPAddress, ip.IPCountry, ip.IPCountryCode, ip.IPState, ip.IPCity = "198.51.100.23", "Germany", "DE", "Berlin", "Berlin"
		ip.Latitude, ip.Longitude = 52.52, 13.405
		ip.IP.Location = &geoPoint{Latitude: 52.52, Longitude: 13.405}
		ip.ISP, ip.Organization = strp("Tor exit relay"), strp("Sim Privacy Network")
		ip.TimeZone, ip.TimeZoneOffset = "Europe/Berlin", "+0100"
		ip.IsVPNOrTor = true
		ip.Warnings = append(ip.Warnings, newWarning("LOCATION", "PRIVATE_NETWORK_DETECTED", "error", nodeIP,
			map[string]any{"ip_address": "198.51.100.23"}))
	case PresetDataCenter:
		// Didit's name for a hosting-network tag was not captured (§3.3);
		// PRIVATE_NETWORK_DETECTED at "warning" level is the documented code
		// closest to it, and Didit's IP risk puts data centres In Review.
		ip.Status = featInReview
		ip.IPAddress, ip.IPCountry, ip.IPCountryCode, ip.IPState, ip.IPCity = "192.0.2.44", "United States", "US", "Virginia", "Ashburn"
		ip.Latitude, ip.Longitude = 39.0438, -77.4874
		ip.IP.Location = &geoPoint{Latitude: 39.0438, Longitude: -77.4874}
		ip.ISP, ip.Organization = strp("Amazon.com, Inc."), strp("AWS EC2 (us-east-1)")
		ip.Platform, ip.DeviceBrand, ip.DeviceModel, ip.BrowserFamily, ip.OSFamily = "desktop", "Unknown", "Unknown", "HeadlessChrome", "Linux"
		ip.TimeZone, ip.TimeZoneOffset = "America/New_York", "-0500"
		ip.IsDataCenter = true
		ip.Warnings = append(ip.Warnings, newWarning("LOCATION", "PRIVATE_NETWORK_DETECTED", "warning", nodeIP,
			map[string]any{"ip_address": "192.0.2.44", "is_data_center": true}))
	case PresetDuplicateDevice:
		ip.Status = featDeclined
		ip.Matches = append(ip.Matches, otherSessionMatch(sess.number-3, "other-user", StatusApproved, false, "session", nil, now))
		ip.Warnings = append(ip.Warnings, newWarning("LOCATION", "DUPLICATED_DEVICE_FINGERPRINT", "error", nodeIP,
			map[string]any{"device_fingerprint": ip.DeviceFingerprint}))
	case PresetMultiIP:
		second := defaultIP(sess, 1)
		second.IPAddress, second.IPCountry, second.IPCountryCode, second.IPState, second.IPCity = "198.51.100.77", "Portugal", "PT", "Lisboa", "Lisboa"
		second.Latitude, second.Longitude = 38.7223, -9.1393
		second.IP.Location = &geoPoint{Latitude: 38.7223, Longitude: -9.1393}
		second.Platform, second.DeviceBrand, second.DeviceModel, second.BrowserFamily, second.OSFamily = "desktop", "Apple", "Mac", "Safari", "Mac OS X"
		second.ISP = strp("MEO")
		second.TimeZone, second.TimeZoneOffset = "Europe/Lisbon", "+0000"
		// Same IP as the first entry, another device: a distinct
		// (node_id, ip_address, device_fingerprint) triple, as Didit lists it.
		third := defaultIP(sess, 2)
		third.Platform, third.DeviceBrand, third.DeviceModel, third.BrowserFamily, third.OSFamily = "tablet", "Apple", "iPad", "Mobile Safari", "iOS"
		r.ips = append(r.ips, second, third)
	}
}

// abandonedResult is what an abandoned flow leaves: the device and IP
// analysis ran when the page was opened; nothing else finished.
func abandonedResult(sess *session, ipf IPFields) *result {
	ip := defaultIP(sess, 0)
	ipf.apply(ip)
	return &result{
		preset:   "abandoned",
		features: append([]string(nil), baseFeatures...),
		ips:      []*ipAnalysis{ip},
	}
}
