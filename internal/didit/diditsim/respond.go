package diditsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// detail is DRF's usual error body.
func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

// writeJSON writes v as Didit's API does (see marshalCompact).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalCompact(v)
	if err != nil {
		http.Error(w, "encode error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func notFound(w http.ResponseWriter) { writeJSON(w, http.StatusNotFound, detail("Not found.")) }

// fieldErrors is DRF's validation body: field → messages.
type fieldErrors map[string][]string

func (fe fieldErrors) add(field, msg string) { fe[field] = append(fe[field], msg) }

const maxBodyBytes = 4 << 20 // portrait_image can be ~2 MB of base64

// readJSONObject reads a JSON object body into fields. It writes DRF-style
// errors itself and returns false when the request cannot go on.
func readJSONObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, detail(fmt.Sprintf("Unsupported media type %q in request.", ct)))
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, detail("Request body is too large."))
		} else {
			writeJSON(w, http.StatusBadRequest, detail("Could not read the request body."))
		}
		return nil, false
	}
	fields := map[string]json.RawMessage{}
	if len(body) == 0 {
		return fields, true // DRF: an empty body is empty data
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		writeJSON(w, http.StatusBadRequest, detail("JSON parse error - "+err.Error()))
		return nil, false
	}
	if _, ok := v.(map[string]any); !ok {
		writeJSON(w, http.StatusBadRequest, map[string][]string{
			"non_field_errors": {fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", pyTypeName(v))},
		})
		return nil, false
	}
	_ = json.Unmarshal(body, &fields)
	return fields, true
}

// pyTypeName names a decoded JSON value the way DRF's messages do.
func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	default:
		return "dict"
	}
}

// isNull reports a missing or JSON-null field.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// stringField decodes an optional string field. DRF's CharField also accepts
// numbers (it coerces them); other types are errors.
func stringField(fe fieldErrors, fields map[string]json.RawMessage, name string) (string, bool) {
	raw := fields[name]
	if isNull(raw) {
		return "", false
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return string(raw), true
	default:
		fe.add(name, "Not a valid string.")
		return "", false
	}
}

// objectField decodes an optional JSON object field and keeps it verbatim.
func objectField(fe fieldErrors, fields map[string]json.RawMessage, name string) json.RawMessage {
	raw := fields[name]
	if isNull(raw) {
		return nil
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	if _, ok := v.(map[string]any); !ok {
		fe.add(name, fmt.Sprintf("Expected a dictionary of items but got type %q.", pyTypeName(v)))
		return nil
	}
	return clientJSON(raw)
}

// clientJSON stores a client's JSON value as Didit would re-emit it.
func clientJSON(raw json.RawMessage) json.RawMessage {
	b, err := pyReencode(raw)
	if err != nil {
		return raw // already validated as JSON; cannot really happen
	}
	return b
}
