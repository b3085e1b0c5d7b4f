package didit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kycgate/kycgate/internal/kyc"
)

// ErrMalformedDecision is wrapped when a decision is not a JSON object.
var ErrMalformedDecision = errors.New("didit: malformed decision")

// callerEchoKeys hold data we (or the end user) supplied at create time and
// Didit merely echoes back; a "warnings" key in there must not count.
var callerEchoKeys = map[string]bool{"metadata": true, "expected_details": true, "contact_details": true}

// SummarizeDecision reduces a Didit decision (GET /v3/session/{id}/decision/
// or a webhook's `decision`) to what kycgate keeps. It is deliberately
// lenient: Didit's feature blocks may be null, empty, hold several nodes, or
// come in the v2 singular shape, and unknown or mistyped fields are ignored
// rather than failing the whole decision. Only a non-object is an error.
//
//   - Status is the top-level `status`.
//   - IPInfo has one entry per distinct ip_address across all ip_analyses[]
//     items, first occurrence winning, in order; items without an address are
//     skipped. Without ip_analyses it falls back to the v2 `ip_analysis`
//     object, then the v1 `location` object. Never nil, so it encodes as [].
//   - Blocklisted is true when any warning in any feature block (v3 arrays or
//     v2/v1 objects) has a risk containing BLOCKLIST, any matches[] entry has
//     is_blocklisted true, or the include=events `blocklisted` field is truthy.
//   - Raw is a copy of raw.
func SummarizeDecision(raw json.RawMessage) (kyc.Decision, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		if err == nil {
			err = errors.New("null")
		}
		return kyc.Decision{}, fmt.Errorf("%w: %v", ErrMalformedDecision, err)
	}
	d := kyc.Decision{
		Status: kyc.DiditStatus(rawString(top["status"])),
		IPInfo: summarizeIPs(top),
		Raw:    bytes.Clone(raw),
	}
	d.Blocklisted = truthy(top["blocklisted"]) || hasBlocklistHit(top)
	if !d.Blocklisted {
		for key, v := range top {
			if callerEchoKeys[key] {
				continue
			}
			for _, node := range featureNodes(v) {
				if hasBlocklistHit(node) {
					d.Blocklisted = true
					break
				}
			}
		}
	}
	return d, nil
}

// featureNodes returns the objects in a feature block: the items of an
// array (v3) or the object itself (v2/v1). Anything else yields nothing.
func featureNodes(v json.RawMessage) []map[string]json.RawMessage {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil
	}
	switch v[0] {
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) == nil {
			return []map[string]json.RawMessage{m}
		}
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(v, &items) != nil {
			return nil
		}
		var out []map[string]json.RawMessage
		for _, it := range items {
			var m map[string]json.RawMessage
			if json.Unmarshal(it, &m) == nil && m != nil {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// hasBlocklistHit looks at one node's warnings[] and matches[].
func hasBlocklistHit(node map[string]json.RawMessage) bool {
	var warnings []struct {
		Risk any `json:"risk"`
	}
	if json.Unmarshal(node["warnings"], &warnings) == nil {
		for _, w := range warnings {
			if s, ok := w.Risk.(string); ok && strings.Contains(strings.ToUpper(s), "BLOCKLIST") {
				return true
			}
		}
	}
	var matches []struct {
		IsBlocklisted json.RawMessage `json:"is_blocklisted"`
	}
	if json.Unmarshal(node["matches"], &matches) == nil {
		for _, m := range matches {
			if rawBool(m.IsBlocklisted) {
				return true
			}
		}
	}
	return false
}

// truthy is Python-ish truthiness of the include=events `blocklisted` field,
// whose shape is undocumented: true, a non-empty list/object/string, or a
// non-zero number.
func truthy(raw json.RawMessage) bool {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		s := strings.TrimSpace(strings.ToLower(x))
		return s != "" && s != "false" && s != "0"
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return false
}

func summarizeIPs(top map[string]json.RawMessage) []kyc.IPInfo {
	var nodes []map[string]json.RawMessage
	for _, key := range []string{"ip_analyses", "ip_analysis", "location"} {
		if v, ok := top[key]; ok && !isNull(v) {
			nodes = featureNodes(v)
			break
		}
	}
	out := []kyc.IPInfo{}
	for _, n := range nodes {
		str := func(key string) string { return rawString(n[key]) }
		ip := strings.TrimSpace(str("ip_address"))
		if ip == "" || slices.ContainsFunc(out, func(i kyc.IPInfo) bool { return i.IPAddress == ip }) {
			continue
		}
		out = append(out, kyc.IPInfo{
			IPAddress:    ip,
			IPCountry:    str("ip_country"),
			IPState:      str("ip_state"),
			IPCity:       str("ip_city"),
			Platform:     str("platform"),
			DeviceBrand:  str("device_brand"),
			DeviceModel:  str("device_model"),
			IsVPNOrTor:   rawBool(n["is_vpn_or_tor"]),
			IsDataCenter: rawBool(n["is_data_center"]),
		})
	}
	return out
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// rawBool is true only for JSON true (or, defensively, the string "true").
func rawBool(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "true" || strings.EqualFold(rawString(raw), "true")
}
