package metrics

import (
	"testing"
	"time"
)

// BenchmarkObserveRequest is what the metrics add to every partner
// request: the status counter and the latency histogram.
func BenchmarkObserveRequest(b *testing.B) {
	m := New(nil)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("/kyc/status", "GET", 200, 3*time.Millisecond)
	}
}

// TestObserveRequestLabels: the code and its class label the series; a
// code out of range does not panic.
func TestObserveRequestLabels(t *testing.T) {
	m := New(nil)
	m.ObserveRequest("/kyc/status", "GET", 503, time.Millisecond)
	m.ObserveRequest("unmatched", "OTHER", 1000, time.Millisecond)
	if n := testCount(t, m, "kycgate_http_requests_total", "503"); n != 1 {
		t.Fatalf("503 counted %v times", n)
	}
}

func testCount(t *testing.T, m *Metrics, name, code string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					n += s.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
