#!/usr/bin/env python3
"""Generate internal/didit/testdata/canonical_vectors.json.

Each vector holds a raw JSON text and what Didit's Python side makes of it:
the X-Signature-V2 canonical form

    json.dumps(shorten_floats(json.loads(body)), sort_keys=True,
               ensure_ascii=False, separators=(",", ":"))

and the HMAC-SHA256 signatures under a fixed secret. The Go tests in
internal/didit assert that Canonicalize and Sign reproduce them byte for byte.

Standard library only. Run from the repository root:

    python3 scripts/didit/canonical_vectors.py

Vectors whose input Python refuses carry "error" (the Python exception name)
instead of "canonical"; Go must refuse them too.
"""

import hashlib
import hmac
import json
import os
import sys

SECRET = "kycgate-test-secret_Zm9vYmFyYmF6"  # looks like base64 on purpose: never decode it
TIMESTAMP = 1772446504


def shorten_floats(value):
    if isinstance(value, dict):
        return {k: shorten_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten_floats(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical(body: bytes) -> bytes:
    return json.dumps(
        shorten_floats(json.loads(body)),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def hexmac(msg: bytes) -> str:
    return hmac.new(SECRET.encode("utf-8"), msg, hashlib.sha256).hexdigest()


DECISION = r"""{
  "session_id": "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11",
  "session_kind": "user",
  "session_number": 1042,
  "session_url": "https://verify.didit.me/session/Qm7ZxP2kT9aL",
  "status": "Declined",
  "environment": "sandbox",
  "workflow_id": "0b1e2d3c-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
  "features": ["ID_VERIFICATION", "LIVENESS", "FACE_MATCH", "IP_ANALYSIS"],
  "vendor_data": "user-8812",
  "metadata": {"plan": "pro"},
  "expected_details": null,
  "contact_details": null,
  "callback": "https://app.example.test/kyc/return?a=1&b=<2>",
  "created_at": "2026-03-02T10:15:04.120000Z",
  "id_verifications": [{
    "node_id": "feature_ocr", "status": "Approved",
    "document_type": "Passport", "document_number": "X1234567",
    "first_name": "José", "last_name": "Müller", "full_name": "José Müller",
    "date_of_birth": "1991-04-09", "issuing_state": "ESP", "age": 34.0,
    "warnings": [], "matches": []
  }],
  "liveness_checks": [{"node_id": "feature_liveness", "status": "Approved", "method": "PASSIVE", "score": 97.1, "warnings": []}],
  "face_matches": [{"node_id": "feature_face_match", "status": "Approved", "score": 100.0, "warnings": []}],
  "aml_screenings": null,
  "ip_analyses": [{
    "node_id": "feature_ip_analysis", "status": "Declined",
    "ip_address": "203.0.113.7", "ip_country": "Spain", "ip_country_code": "ES",
    "ip_state": "Madrid", "ip_city": "Madrid", "latitude": 40.41, "longitude": -3.70,
    "platform": "mobile", "device_brand": "Apple", "device_model": "iPhone",
    "browser_family": "Mobile Safari", "os_family": "iOS",
    "is_vpn_or_tor": true, "is_data_center": false,
    "isp": null, "organization": null, "time_zone": "Europe/Madrid", "time_zone_offset": "+0100",
    "ip": {"location": {"latitude": 40.4168, "longitude": -3.7038}, "distance_from_id_document": 0.00005, "distance_from_poa_document": 1e-7},
    "warnings": [{
      "feature": "LOCATION", "risk": "PRIVATE_NETWORK_DETECTED", "log_type": "error",
      "short_description": "VPN or Tor detected", "long_description": "The user\u2019s IP belongs to a VPN \u2014 \u201cprivate\u201d network.",
      "additional_data": null, "node_id": "feature_ip_analysis"
    }],
    "matches": []
  }],
  "reviews": []
}"""

WEBHOOK = (
    r"""{
  "event_id": "8d3c6f0e-2a41-4b8e-9a57-3f1e0c2b7d90",
  "webhook_type": "status.updated",
  "session_id": "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11",
  "status": "Declined",
  "vendor_data": "user-8812",
  "workflow_id": "0b1e2d3c-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
  "metadata": {"plan": "pro", "note": "café ☕ 東京"},
  "environment": "sandbox",
  "timestamp": %d,
  "created_at": %d,
  "decision": %s
}"""
    % (TIMESTAMP, TIMESTAMP, DECISION)
)

WEBHOOK_NOT_STARTED = json.dumps(
    {
        "session_id": "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11",
        "status": "Not Started",
        "webhook_type": "status.updated",
        "created_at": TIMESTAMP,
        "timestamp": TIMESTAMP,
        "vendor_data": "user-8812",
    }
)

# (name, raw JSON text). Texts are str; they are sent as UTF-8 bytes.
VECTORS = [
    ("empty_object", "{}"),
    ("empty_array", "[]"),
    ("scalar_string_root", '"hello"'),
    ("scalar_float_root", "1.0"),
    ("whitespace_everywhere", ' \t\n\r{ "b" : [ 1 , 2 ] ,\n "a" : { } } \n'),
    ("unsorted_keys", '{"zeta":1,"alpha":2,"Mid":3,"_u":4,"10":5,"9":6,"":7}'),
    ("nested", '{"b":{"d":[{"z":1,"y":[{"k2":true,"k1":false}]}],"c":null},"a":[[],[[]],{}]}'),
    ("nulls_bools", '{"t":true,"f":false,"n":null,"arr":[null,true,false]}'),
    ("duplicate_keys_last_wins", '{"a":1,"b":2,"a":3,"c":{"x":1,"x":{"y":2}}}'),
    ("non_ascii_names", '{"full_name":"José Müller","first_name":"José","last_name":"Müller"}'),
    ("non_ascii_escaped_input", '{"full_name":"Jos\\u00e9 M\\u00fcller"}'),
    ("cjk", '{"name":"山田太郎","city":"東京都","kr":"김철수"}'),
    ("emoji", '{"e":"😀👍🏽","escaped":"\\ud83d\\ude00"}'),
    ("line_separators", '{"s":"a\u2028b\u2029c","escaped":"\\u2028\\u2029"}'),
    ("html_chars", '{"h":"<script>alert(\'x\')</script> & \\u003c\\u003e\\u0026","url":"https://x.test/?a=1&b=2"}'),
    ("control_chars", '{"c":"\\u0000\\u0001\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u001f\\u007f","q":"\\"quoted\\" back\\\\slash \\/ slash"}'),
    ("unicode_keys_order", '{"é":1,"z":2,"中":3,"😀":4,"\\uffff":5,"A":6,"a":7,"\\u007f":8}'),
    ("float_1_0", '{"x":1.0,"y":-1.0,"z":0.0,"w":100.00}'),
    ("float_0_00005", '{"x":0.00005}'),
    ("float_1e_minus_7", '{"x":1e-7,"y":1E-7,"z":1.0e-7}'),
    ("float_1e16", '{"x":1e16,"y":1E+16}'),
    ("float_1_5e16", '{"x":1.5e16}'),
    ("float_123456789_123", '{"x":123456789.123}'),
    ("float_neg_zero", '{"x":-0.0,"y":-0,"z":-0e5}'),
    ("float_2_5", '{"x":2.5,"y":-2.5,"z":2.50}'),
    ("float_repr_boundaries", '[0.0001,0.00012,0.000099,1e-4,1e-5,123456789012345.6,1234567890123456.7,9999999999999998.0,0.1,0.2,0.30000000000000004,1.7976931348623157e308,5e-324,2.2250738585072014e-308,1e300,1e22,1e21,1e-300]'),
    ("float_precision", '[3.141592653589793238462643383279,2.718281828459045,1.1111111111111111111,0.1e1,12.5e-1,9007199254740993.0,4.35,100.0e-2]'),
    ("float_underflow", '[1e-400,-1e-400]'),
    ("big_ints", '[9007199254740993,18446744073709551616,-9223372036854775809,123456789012345678901234567890123456789012345678901234567890]'),
    ("int_forms", '[0,-0,1,-1,1E2,1e0,10e-1]'),
    ("geo_scores", '{"latitude":40.41,"longitude":-3.70,"score":97.1,"similarity":91.40,"distance":0.5,"lat0":48.8566,"lon0":2.3522}'),
    ("decision_v3", DECISION),
    ("webhook_full_declined", WEBHOOK),
    ("webhook_not_started", WEBHOOK_NOT_STARTED),
]

# Inputs Python itself refuses (exception name recorded).
ERROR_VECTORS = [
    ("lone_high_surrogate", '{"s":"\\ud800"}'),
    ("lone_low_surrogate", '{"s":"\\udc00x"}'),
    ("reversed_surrogates", '{"s":"\\ude00\\ud83d"}'),
    ("raw_control_char", '{"s":"a\u0001b"}'),
    ("trailing_comma", '{"a":1,}'),
    ("leading_zero", "[01]"),
    ("extra_data", "{} {}"),
    ("bad_escape", '"\\x41"'),
    ("truncated", '{"a":'),
    ("int_too_long", "1" * 4301),
]


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_path = os.path.join(root, "internal", "didit", "testdata", "canonical_vectors.json")
    vectors = []
    for name, text in VECTORS:
        body = text.encode("utf-8")
        canon = canonical(body)
        v = {
            "name": name,
            "input": text,
            "canonical": canon.decode("utf-8"),
            "hmac_v2": hexmac(canon),
            "hmac_raw": hexmac(body),
        }
        parsed = json.loads(body)
        if isinstance(parsed, dict) and "webhook_type" in parsed:
            # Didit's X-Signature-Simple, with the fields read from the body.
            simple = "%s:%s:%s:%s" % (
                parsed.get("timestamp", ""),
                parsed.get("session_id", ""),
                parsed.get("status", ""),
                parsed.get("webhook_type", ""),
            )
            v["timestamp"] = parsed["timestamp"]
            v["hmac_simple"] = hexmac(simple.encode("utf-8"))
        vectors.append(v)
    for name, text in ERROR_VECTORS:
        try:
            canonical(text.encode("utf-8"))
        except Exception as e:  # noqa: BLE001 - we record which one
            vectors.append({"name": name, "input": text, "error": type(e).__name__})
        else:
            sys.exit("vector %s: Python accepted it; move it to VECTORS" % name)
    with open(out_path, "w", encoding="ascii") as f:
        json.dump({"secret": SECRET, "python": sys.version.split()[0], "vectors": vectors}, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print("wrote %d vectors to %s" % (len(vectors), os.path.relpath(out_path, root)))


if __name__ == "__main__":
    main()
