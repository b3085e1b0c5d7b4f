package envelope

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, http.StatusCreated, "created", "Made <it>", map[string]int{"n": 1})
	want := `{"statusCode":201,"success":true,"status":"created","message":"Made \u003cit\u003e","data":{"n":1}}` + "\n"
	if w.Code != 201 || w.Body.String() != want {
		t.Errorf("Write = %d %q, want 201 %q", w.Code, w.Body.String(), want)
	}
	if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(want)) {
		t.Errorf("Content-Length = %s, want %d", got, len(want))
	}
	if got := w.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %s", got)
	}
}

// A body that cannot be encoded becomes the 500 envelope, never half a body.
func TestWriteUnencodable(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, http.StatusOK, "ok", "fine", map[string]any{"f": func() {}})
	if w.Code != 500 || w.Body.String() != serverError {
		t.Errorf("Write = %d %q, want 500 %q", w.Code, w.Body.String(), serverError)
	}
}

func TestRequestID(t *testing.T) {
	for _, tc := range []struct {
		given string
		kept  bool
	}{
		{"abc-123_X.y", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"a b", false},
		{"a\nb", false},
		{"é", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Request-Id", tc.given)
		w := httptest.NewRecorder()
		id := RequestID(w, r)
		if w.Header().Get("X-Request-Id") != id {
			t.Errorf("%q: header %q, returned %q", tc.given, w.Header().Get("X-Request-Id"), id)
		}
		if kept := id == tc.given; kept != tc.kept {
			t.Errorf("%q: got %q, kept = %v, want %v", tc.given, id, kept, tc.kept)
		}
		if !tc.kept && (len(id) != 24 || !plainID(id)) {
			t.Errorf("%q: new id %q, want 24 hex digits", tc.given, id)
		}
	}
}

func TestMethods(t *testing.T) {
	m := NewMethods(map[string]string{"POST": "post", "GET": "get"})
	for _, tc := range []struct{ method, want string }{{"GET", "get"}, {"HEAD", "get"}, {"POST", "post"}} {
		w := httptest.NewRecorder()
		if h, ok := m.Lookup(w, httptest.NewRequest(tc.method, "/", nil)); !ok || h != tc.want || w.Body.Len() != 0 {
			t.Errorf("%s = %q, %v (wrote %q), want %q", tc.method, h, ok, w.Body.String(), tc.want)
		}
	}
	w := httptest.NewRecorder()
	if _, ok := m.Lookup(w, httptest.NewRequest("DELETE", "/", nil)); ok {
		t.Fatal("DELETE found")
	}
	if w.Code != 405 || w.Header().Get("Allow") != "GET, POST" || !strings.Contains(w.Body.String(), `"status":"method_not_allowed"`) {
		t.Errorf("DELETE = %d Allow %q %s, want 405 Allow GET, POST in the envelope", w.Code, w.Header().Get("Allow"), w.Body.String())
	}
}
