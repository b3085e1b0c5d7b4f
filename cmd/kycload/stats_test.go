package main

import (
	"strings"
	"testing"
	"time"
)

// TestPct: nearest-rank percentiles, the figures BENCHMARKS.md reports.
func TestPct(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1) // 1..100 ms
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{ms(7)}, 0.999, ms(7)},
		{"p50 of 100", hundred, 0.50, ms(50)},
		{"p99 of 100", hundred, 0.99, ms(99)},
		{"p99.9 of 100 is the max", hundred, 0.999, ms(100)},
		{"p0 is the min", hundred, 0, ms(1)},
		{"p50 of 4 rounds up the rank", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 0.5, ms(2)},
		{"p99 of 4 is the max", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 0.99, ms(4)},
	} {
		if got := pct(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: pct(%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

// TestSummarize: the rate is answers over the phase's time, and the
// percentiles come from the sorted latencies whatever order they arrive in.
func TestSummarize(t *testing.T) {
	lat := []time.Duration{5, 1, 4, 2, 3}
	for i := range lat {
		lat[i] *= time.Millisecond
	}
	r := Result{Elapsed: 2 * time.Second}
	summarize(&r, lat)
	if r.N != 5 || r.RPS != 2.5 {
		t.Errorf("N %d, RPS %v; want 5, 2.5", r.N, r.RPS)
	}
	if r.P50 != 3*time.Millisecond || r.P99 != 5*time.Millisecond || r.Max != 5*time.Millisecond {
		t.Errorf("p50 %v, p99 %v, max %v; want 3, 5, 5 ms", r.P50, r.P99, r.Max)
	}
	empty := Result{}
	summarize(&empty, nil)
	if empty.N != 0 || empty.RPS != 0 || empty.Max != 0 {
		t.Errorf("no latencies: %+v", empty)
	}
	if got := ms(1500 * time.Microsecond); got != "1.50" {
		t.Errorf("ms(1.5 ms) = %q", got)
	}
}

// TestRows: each endpoint's row pairs kycgate's closed-loop run with the
// baseline's, the ratio is their rates', the target is 60 % for reads and
// 50 % for writes, and the auth-cache row borrows status's baseline.
func TestRows(t *testing.T) {
	h := &harness{Results: []Result{
		{Name: "status", Target: "kycgate", Engine: "sqlite", Mode: "closed", RPS: 600},
		{Name: "status", Target: "baseline", Engine: "sqlite", Mode: "closed", RPS: 1000},
		{Name: "status", Target: "kycgate", Engine: "sqlite", Mode: "open", RPS: 300},
		{Name: "status", Target: "baseline", Engine: "sqlite", Mode: "open", RPS: 300},
		{Name: "send-otp", Target: "kycgate", Engine: "sqlite", Mode: "closed", RPS: 100},
		{Name: "send-otp", Target: "baseline", Engine: "sqlite", Mode: "closed", RPS: 400},
		{Name: "send-otp", Target: "kycgate", Engine: "postgres", Mode: "closed", RPS: 1},
		{Name: authCacheRow, Target: "kycgate", Engine: "sqlite", Mode: "closed", RPS: 800},
	}}
	rows := map[string]row{}
	for _, r := range h.rows("sqlite") {
		rows[r.name] = r
	}
	if len(rows) != 3 {
		t.Fatalf("rows %v, want status, send-otp and the auth-cache row", rows)
	}
	st, so, ac := rows["status"], rows["send-otp"], rows[authCacheRow]
	if st.ratio != 0.6 || st.target != 0.60 || st.write || st.open == nil || st.blOpen == nil {
		t.Errorf("status row: %+v", st)
	}
	if so.ratio != 0.25 || so.target != 0.50 || !so.write {
		t.Errorf("send-otp row: ratio %v target %v write %v", so.ratio, so.target, so.write)
	}
	if ac.bl != st.bl || ac.ratio != 0.8 {
		t.Errorf("auth-cache row: baseline %v, ratio %v; want status's baseline and 0.8", ac.bl, ac.ratio)
	}
}

// TestMarkdown: the report shows each engine's rows with their ratio and
// verdict, the open-loop control, and skips sections no run filled.
func TestMarkdown(t *testing.T) {
	h := &harness{Results: []Result{
		{Name: "status", Target: "kycgate", Engine: "sqlite", Mode: "closed", RPS: 600},
		{Name: "status", Target: "baseline", Engine: "sqlite", Mode: "closed", RPS: 1000},
		{Name: "status", Target: "kycgate", Engine: "sqlite", Mode: "open", Rate: 300, RPS: 300},
		{Name: "send-otp", Target: "kycgate", Engine: "sqlite", Mode: "closed", RPS: 100},
		{Name: "send-otp", Target: "baseline", Engine: "sqlite", Mode: "closed", RPS: 400},
	}}
	h.opt.engines = []string{"sqlite", "postgres"}
	var b strings.Builder
	h.markdown(&b)
	out := b.String()
	for _, want := range []string{
		"### sqlite",
		"| status | read | 600 |",
		"| 60 % | ≥ 60 % | yes |",
		"| send-otp | write | 100 |",
		"| 25 % | ≥ 50 % | **no** |",
		"| status | 300 | 300 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for _, absent := range []string{"### postgres", "Email round trip", "Scale run"} {
		if strings.Contains(out, absent) {
			t.Errorf("report has %q though no run filled it", absent)
		}
	}
}
