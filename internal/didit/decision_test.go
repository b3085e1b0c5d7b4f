package didit

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
)

func TestSummarizeDecision(t *testing.T) {
	cases := []struct {
		file        string
		status      kyc.DiditStatus
		ips         []kyc.IPInfo
		blocklisted bool
	}{
		{
			file: "v3_declined_vpn.json", status: "Declined",
			ips: []kyc.IPInfo{{
				IPAddress: "203.0.113.7", IPCountry: "Spain", IPState: "Madrid", IPCity: "Madrid",
				Platform: "mobile", DeviceBrand: "Apple", DeviceModel: "iPhone", IsVPNOrTor: true,
			}},
		},
		{file: "null_arrays.json", status: "In Progress", ips: []kyc.IPInfo{}},
		{file: "empty_arrays.json", status: "Not Started", ips: []kyc.IPInfo{}},
		{
			// Duplicate 198.51.100.20 keeps its first item; "", null and a
			// null item are skipped; null strings read as "".
			file: "multi_node.json", status: "In Review",
			ips: []kyc.IPInfo{
				{IPAddress: "198.51.100.20", IPCountry: "Germany", IPState: "Berlin", IPCity: "Berlin", Platform: "desktop"},
				{IPAddress: "192.0.2.99", IPCountry: "Netherlands", IPCity: "Amsterdam", Platform: "desktop", DeviceBrand: "Apple", DeviceModel: "Mac", IsDataCenter: true},
				{IPAddress: "2001:db8::1", IPCountry: "Japan", IPState: "Tokyo", IPCity: "東京", Platform: "tablet", DeviceBrand: "Samsung", DeviceModel: "Galaxy Tab", IsVPNOrTor: true},
			},
		},
		{
			file: "v2_shape.json", status: "Declined", blocklisted: true,
			ips: []kyc.IPInfo{{
				IPAddress: "203.0.113.50", IPCountry: "Portugal", IPState: "Lisboa", IPCity: "Lisbon",
				Platform: "mobile", DeviceBrand: "Google", DeviceModel: "Pixel 8", IsDataCenter: true,
			}},
		},
		{file: "blocklist_warning.json", status: "Declined", blocklisted: true, ips: []kyc.IPInfo{}},
		{file: "blocklist_match.json", status: "Declined", blocklisted: true, ips: []kyc.IPInfo{}},
		{file: "blocklisted_events.json", status: "Declined", blocklisted: true, ips: []kyc.IPInfo{}},
		{file: "not_blocklisted.json", status: "Approved", ips: []kyc.IPInfo{}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "decisions", c.file))
			if err != nil {
				t.Fatal(err)
			}
			d, err := SummarizeDecision(raw)
			if err != nil {
				t.Fatalf("SummarizeDecision: %v", err)
			}
			if d.Status != c.status {
				t.Errorf("Status = %q, want %q", d.Status, c.status)
			}
			if d.Blocklisted != c.blocklisted {
				t.Errorf("Blocklisted = %v, want %v", d.Blocklisted, c.blocklisted)
			}
			if !reflect.DeepEqual(d.IPInfo, c.ips) {
				t.Errorf("IPInfo =\n%+v\nwant\n%+v", d.IPInfo, c.ips)
			}
			if string(d.Raw) != string(raw) {
				t.Error("Raw is not the input")
			}
			if enc, _ := json.Marshal(d.IPInfo); len(d.IPInfo) == 0 && string(enc) != "[]" {
				t.Errorf("empty IPInfo encodes as %s, want []", enc)
			}
		})
	}
}

func TestSummarizeDecisionRawIsACopy(t *testing.T) {
	raw := []byte(`{"status":"Approved"}`)
	d, err := SummarizeDecision(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw[2] = 'X'
	if string(d.Raw) != `{"status":"Approved"}` {
		t.Errorf("Raw aliases the caller's buffer: %s", d.Raw)
	}
}

func TestSummarizeDecisionLenient(t *testing.T) {
	cases := map[string]struct {
		in          string
		blocklisted bool
		ips         int
	}{
		"wrong types ignored":        {`{"status":7,"ip_analyses":{"ip_address":"192.0.2.1"},"warnings":"x","liveness_checks":[1,"a",null]}`, false, 1},
		"ip_analyses null, v2 used":  {`{"ip_analyses":null,"ip_analysis":{"ip_address":"192.0.2.2"}}`, false, 1},
		"plural wins over singular":  {`{"ip_analyses":[{"ip_address":"192.0.2.3"}],"ip_analysis":{"ip_address":"192.0.2.4"}}`, false, 1},
		"v1 location":                {`{"location":{"ip_address":"192.0.2.5","is_vpn_or_tor":true}}`, false, 1},
		"lower-case risk":            {`{"aml_screenings":[{"warnings":[{"risk":"email_in_blocklist"}]}]}`, true, 0},
		"possible face in blocklist": {`{"face_matches":[{"warnings":[{"risk":"POSSIBLE_FACE_IN_BLOCKLIST"}]}]}`, true, 0},
		"top-level warnings":         {`{"warnings":[{"risk":"PHONE_NUMBER_IN_BLOCKLIST"}]}`, true, 0},
		"blocklisted true":           {`{"blocklisted":true}`, true, 0},
		"blocklisted false":          {`{"blocklisted":false}`, false, 0},
		"blocklisted {}":             {`{"blocklisted":{}}`, false, 0},
		"blocklisted null":           {`{"blocklisted":null}`, false, 0},
		"unknown future feature":     {`{"key_people_checks":[{"warnings":[{"risk":"X_IN_BLOCKLIST"}]}]}`, true, 0},
		"match string true":          {`{"id_verifications":[{"matches":[{"is_blocklisted":"true"}]}]}`, true, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := SummarizeDecision(json.RawMessage(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if d.Blocklisted != c.blocklisted || len(d.IPInfo) != c.ips {
				t.Errorf("Blocklisted=%v IPInfo=%v, want %v and %d IPs", d.Blocklisted, d.IPInfo, c.blocklisted, c.ips)
			}
		})
	}
	for _, bad := range []string{``, `null`, `[]`, `"x"`, `{`, `7`} {
		if _, err := SummarizeDecision(json.RawMessage(bad)); !errors.Is(err, ErrMalformedDecision) {
			t.Errorf("SummarizeDecision(%q) error = %v, want ErrMalformedDecision", bad, err)
		}
	}
}
