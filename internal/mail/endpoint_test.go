package mail

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	valid := []struct {
		raw  string
		want Endpoint
		str  string
	}{
		{"smtp://127.0.0.1:2525", Endpoint{Host: "127.0.0.1", Port: 2525, TLS: STARTTLSOpportunistic}, "smtp://127.0.0.1:2525"},
		{"smtp://mail.example.com", Endpoint{Host: "mail.example.com", Port: 587}, "smtp://mail.example.com:587"},
		{"smtp://mail.example.com/", Endpoint{Host: "mail.example.com", Port: 587}, "smtp://mail.example.com:587"},
		{"SMTP://Mail.Example.com:25", Endpoint{Host: "Mail.Example.com", Port: 25}, "smtp://Mail.Example.com:25"},
		{"smtps://mail.example.com", Endpoint{Host: "mail.example.com", Port: 465, TLS: ImplicitTLS}, "smtps://mail.example.com:465"},
		{"smtps://mail.example.com:2465", Endpoint{Host: "mail.example.com", Port: 2465, TLS: ImplicitTLS}, "smtps://mail.example.com:2465"},
		{"smtp://relay:587?starttls=required", Endpoint{Host: "relay", Port: 587, TLS: STARTTLSRequired}, "smtp://relay:587?starttls=required"},
		{"smtp://user:s3cret@relay:587", Endpoint{Host: "relay", Port: 587, Username: "user", Password: "s3cret"}, "smtp://user:xxxxx@relay:587"},
		{"smtps://apikey:p%40ss%3Aw0rd@smtp.example.net", Endpoint{Host: "smtp.example.net", Port: 465, Username: "apikey", Password: "p@ss:w0rd", TLS: ImplicitTLS}, "smtps://apikey:xxxxx@smtp.example.net:465"},
		{"smtp://u%40example.com:pw@[::1]:2525", Endpoint{Host: "::1", Port: 2525, Username: "u@example.com", Password: "pw"}, "smtp://u%40example.com:xxxxx@[::1]:2525"},
	}
	for _, tc := range valid {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := ParseURL(tc.raw)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Errorf("String() = %q, want %q", s, tc.str)
			}
			if tc.want.Password != "" && strings.Contains(got.String(), tc.want.Password) {
				t.Errorf("String() leaks the password: %q", got.String())
			}
		})
	}

	invalid := []struct {
		raw, wantErr string
	}{
		{"", "empty"},
		{"http://mail.example.com:25", `unsupported scheme "http"`},
		{"mail.example.com:25", "scheme"},
		{"//mail.example.com:25", "missing scheme"},
		{"smtp://", "missing host"},
		{"smtp://:25", "missing host"},
		{"smtp://user:pw@:25", "missing host"},
		{"smtp:mail.example.com", "missing host"},
		{"smtp://mail.example.com:abc", "port"},
		{"smtp://mail.example.com:0", `invalid port "0"`},
		{"smtp://mail.example.com:65536", `invalid port "65536"`},
		{"smtp://mail.example.com:", "empty port"},
		{"smtp://mail.example.com:25/inbox", "unexpected path"},
		{"smtp://mail.example.com:25#x", "fragment"},
		{"smtp://mail.example.com:25?tls=on", `unknown query parameter "tls"`},
		{"smtp://mail.example.com:25?starttls=maybe", `invalid starttls value "maybe"`},
		{"smtp://mail.example.com:25?starttls=required&starttls=required", "invalid starttls value"},
		{"smtps://mail.example.com?starttls=required", "does not apply to smtps"},
		{"smtp://user@mail.example.com", "without password"},
		{"smtp://:pw@mail.example.com", "empty username"},
	}
	for _, tc := range invalid {
		t.Run("invalid "+tc.raw, func(t *testing.T) {
			_, err := ParseURL(tc.raw)
			if err == nil {
				t.Fatalf("ParseURL(%q) succeeded, want error containing %q", tc.raw, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseURLErrorsHidePassword(t *testing.T) {
	for _, raw := range []string{
		"smtp://user:hunter2secret@mail.example.com:notaport",
		"smtp://user:hunter2secret@mail.example.com:25?x=1",
		"ftp://user:hunter2secret@mail.example.com",
		"smtp://user:hunter2secret@mail.example.com:25/%zz",
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Fatalf("ParseURL(%q) succeeded", raw)
		}
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestTLSModeString(t *testing.T) {
	for m, want := range map[TLSMode]string{
		STARTTLSOpportunistic: "starttls-opportunistic",
		STARTTLSRequired:      "starttls-required",
		ImplicitTLS:           "implicit-tls",
		TLSMode(9):            "TLSMode(9)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d: got %q, want %q", int(m), got, want)
		}
	}
}
