package diditsim_test

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

func TestPresetDecisions(t *testing.T) {
	h := newHarness(t, nil)
	type check func(t *testing.T, dec map[string]any)
	feature := func(key, status string, wantRisks ...string) check {
		return func(t *testing.T, dec map[string]any) {
			t.Helper()
			item := path(dec, key, 0)
			if item == nil {
				t.Fatalf("%s is empty", key)
			}
			if got := path(item, "status"); got != status {
				t.Errorf("%s status = %v, want %s", key, got, status)
			}
			if path(item, "node_id") == nil {
				t.Errorf("%s has no node_id", key)
			}
			if got := risks(item); !slices.Equal(got, wantRisks) && !(len(got) == 0 && len(wantRisks) == 0) {
				t.Errorf("%s warnings = %v, want %v", key, got, wantRisks)
			}
		}
	}
	blocklistedMatch := func(key string) check {
		return func(t *testing.T, dec map[string]any) {
			t.Helper()
			if path(dec, key, 0, "matches", 0, "is_blocklisted") != true {
				t.Errorf("%s lacks a blocklisted match", key)
			}
		}
	}
	ipFlag := func(field string, want any) check {
		return func(t *testing.T, dec map[string]any) {
			t.Helper()
			if got := path(dec, "ip_analyses", 0, field); got != want {
				t.Errorf("ip_analyses[0].%s = %v, want %v", field, got, want)
			}
		}
	}
	hasFeature := func(name string) check {
		return func(t *testing.T, dec map[string]any) {
			t.Helper()
			if !slices.Contains(path(dec, "features").([]any), any(name)) {
				t.Errorf("features lack %s: %v", name, dec["features"])
			}
		}
	}
	cases := []struct {
		preset, status string
		checks         []check
	}{
		{diditsim.PresetApproved, "Approved", []check{
			feature("id_verifications", "Approved"), feature("liveness_checks", "Approved"),
			feature("face_matches", "Approved"), feature("aml_screenings", "Approved"), feature("ip_analyses", "Approved"),
			ipFlag("is_vpn_or_tor", false), ipFlag("is_data_center", false),
		}},
		{diditsim.PresetDeclinedID, "Declined", []check{feature("id_verifications", "Declined", "DOCUMENT_EXPIRED/error")}},
		{diditsim.PresetDeclinedLiveness, "Declined", []check{feature("liveness_checks", "Declined", "LIVENESS_FACE_ATTACK/error")}},
		{diditsim.PresetDeclinedFaceMatch, "Declined", []check{feature("face_matches", "Declined", "LOW_FACE_MATCH_SIMILARITY/error")}},
		{diditsim.PresetInReviewAML, "In Review", []check{feature("aml_screenings", "In Review", "POSSIBLE_MATCH_FOUND/warning"),
			func(t *testing.T, dec map[string]any) {
				if path(dec, "aml_screenings", 0, "total_hits") != float64(1) || path(dec, "aml_screenings", 0, "hits", 0) == nil {
					t.Errorf("AML hits: %v", path(dec, "aml_screenings", 0))
				}
			}}},
		{diditsim.PresetBlocklistFace, "Declined", []check{feature("liveness_checks", "Declined", "FACE_IN_BLOCKLIST/error"), blocklistedMatch("liveness_checks")}},
		{diditsim.PresetBlocklistDocument, "Declined", []check{feature("id_verifications", "Declined", "ID_DOCUMENT_IN_BLOCKLIST/error"), blocklistedMatch("id_verifications")}},
		{diditsim.PresetBlocklistPhone, "Declined", []check{feature("phone_verifications", "Declined", "PHONE_NUMBER_IN_BLOCKLIST/error"), blocklistedMatch("phone_verifications"), hasFeature("PHONE")}},
		{diditsim.PresetBlocklistEmail, "Declined", []check{feature("email_verifications", "Declined", "EMAIL_IN_BLOCKLIST/error"), blocklistedMatch("email_verifications"), hasFeature("EMAIL")}},
		{diditsim.PresetVPN, "Declined", []check{feature("ip_analyses", "Declined", "PRIVATE_NETWORK_DETECTED/error"), ipFlag("is_vpn_or_tor", true), ipFlag("is_data_center", false)}},
		{diditsim.PresetDataCenter, "In Review", []check{feature("ip_analyses", "In Review", "PRIVATE_NETWORK_DETECTED/warning"), ipFlag("is_data_center", true), ipFlag("is_vpn_or_tor", false)}},
		{diditsim.PresetDuplicateDevice, "Declined", []check{feature("ip_analyses", "Declined", "DUPLICATED_DEVICE_FINGERPRINT/error"),
			func(t *testing.T, dec map[string]any) {
				if path(dec, "ip_analyses", 0, "matches", 0, "session_id") == nil {
					t.Errorf("duplicate device has no cross-session match")
				}
			}}},
		{diditsim.PresetMultiIP, "Approved", []check{func(t *testing.T, dec map[string]any) {
			ips := path(dec, "ip_analyses").([]any)
			if len(ips) != 3 {
				t.Fatalf("ip_analyses has %d entries", len(ips))
			}
			a0, a2 := path(ips, 0, "ip_address"), path(ips, 2, "ip_address")
			if a0 != a2 || a0 == path(ips, 1, "ip_address") {
				t.Errorf("want a repeated IP: %v %v %v", a0, path(ips, 1, "ip_address"), a2)
			}
			if path(ips, 0, "device_fingerprint") == path(ips, 2, "device_fingerprint") {
				t.Errorf("same IP entries must differ by device")
			}
		}}},
	}
	if len(cases) != len(diditsim.Presets()) {
		t.Errorf("%d presets, %d tested", len(diditsim.Presets()), len(cases))
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			id := h.create(map[string]any{"vendor_data": "preset-" + c.preset})["session_id"].(string)
			if err := h.sim.Complete(context.Background(), id, diditsim.Outcome{Preset: c.preset}); err != nil {
				t.Fatal(err)
			}
			dec, _ := h.decision(id)
			if dec["status"] != c.status {
				t.Errorf("status = %v, want %s", dec["status"], c.status)
			}
			for _, chk := range c.checks {
				chk(t, dec)
			}
		})
	}
}

func TestApprovedDecisionRawNumbersAndText(t *testing.T) {
	h := newHarness(t, nil)
	id := h.create(map[string]any{"vendor_data": "raw"})["session_id"].(string)
	if err := h.sim.Complete(context.Background(), id, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	_, raw := h.decision(id)
	for _, want := range []string{`"latitude":40.0`, `"score":97.1`, `"score":5e-05`, `"full_name":"José Müller"`, `"longitude":-3.7`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("decision lacks %s", want)
		}
	}
}

func TestIPOverridesAndExtraEntries(t *testing.T) {
	h := newHarness(t, nil)
	yes := true
	id := h.create(map[string]any{"vendor_data": "ip"})["session_id"].(string)
	err := h.sim.Complete(context.Background(), id, diditsim.Outcome{
		Preset: diditsim.PresetApproved,
		IP: diditsim.IPFields{
			IPAddress: "192.0.2.10", IPCountry: "France", IPCountryCode: "fr", IPState: "Île-de-France",
			IPCity: "Paris", Platform: "desktop", DeviceBrand: "Dell", DeviceModel: "XPS", IsDataCenter: &yes,
		},
		ExtraIPs: []diditsim.IPFields{{IPAddress: "192.0.2.10"}, {IPAddress: "2001:db8::1", IsVPNOrTor: &yes}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := h.decision(id)
	ip := path(dec, "ip_analyses", 0)
	want := map[string]any{
		"ip_address": "192.0.2.10", "ip_country": "France", "ip_country_code": "FR", "ip_state": "Île-de-France",
		"ip_city": "Paris", "platform": "desktop", "device_brand": "Dell", "device_model": "XPS",
		"is_data_center": true, "is_vpn_or_tor": false,
	}
	for k, v := range want {
		if got := path(ip, k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	ips := path(dec, "ip_analyses").([]any)
	if len(ips) != 3 || path(ips, 1, "ip_address") != "192.0.2.10" || path(ips, 1, "ip_city") != "Paris" ||
		path(ips, 2, "ip_address") != "2001:db8::1" || path(ips, 2, "is_vpn_or_tor") != true {
		t.Errorf("extra entries: %v", ips)
	}
	if path(ips, 0, "device_fingerprint") == path(ips, 1, "device_fingerprint") {
		t.Errorf("extra entry shares the device fingerprint")
	}

	bad := h.create(map[string]any{"vendor_data": "bad-ip"})["session_id"].(string)
	for _, o := range []diditsim.Outcome{
		{Preset: "nope"},
		{IP: diditsim.IPFields{IPAddress: "999.1.1.1"}},
		{IP: diditsim.IPFields{Platform: "toaster"}},
	} {
		if err := h.sim.Complete(context.Background(), bad, o); err == nil {
			t.Errorf("Complete(%+v) accepted", o)
		}
	}
}

func TestAbandonedDecision(t *testing.T) {
	h := newHarness(t, nil)
	id := h.create(map[string]any{"vendor_data": "ab"})["session_id"].(string)
	if err := h.sim.Abandon(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	dec, _ := h.decision(id)
	if dec["status"] != "Abandoned" || dec["id_verifications"] != nil || path(dec, "ip_analyses", 0, "ip_address") == nil {
		t.Errorf("abandoned decision: status %v id %v ip %v", dec["status"], dec["id_verifications"], dec["ip_analyses"])
	}
	ds := h.wait(3)
	if ds[2].Status != "Abandoned" || !strings.Contains(string(ds[2].Body), `"decision": {`) {
		t.Errorf("Abandoned webhook should carry the decision: %s", ds[2].Body)
	}
}

func TestFloatIsWrittenLikePythonRepr(t *testing.T) {
	cases := map[float64]string{
		40: "40.0", 97.1: "97.1", 0.00005: "5e-05", 0.0001: "0.0001", 1.5e-7: "1.5e-07", -3.7: "-3.7",
		1e16: "1e+16", 1e22: "1e+22", 1234567890123456: "1234567890123456.0", 0: "0.0",
		123456789012345678: "1.2345678901234568e+17", -0.00012: "-0.00012",
	}
	for v, want := range cases {
		b, err := json.Marshal(diditsim.Float(v))
		if err != nil || string(b) != want {
			t.Errorf("Float(%v) = %s (%v), want %s", v, b, err, want)
		}
	}
	if _, err := json.Marshal(diditsim.Float(math.NaN())); err == nil {
		t.Errorf("NaN encoded")
	}
}
