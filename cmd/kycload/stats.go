package main

import (
	"fmt"
	"slices"
	"time"
)

// Result is one measured phase: every latency, sorted.
type Result struct {
	Name     string        `json:"name"`
	Target   string        `json:"target"` // "kycgate" or "baseline"
	Engine   string        `json:"engine"`
	Mode     string        `json:"mode"` // "closed" or "open"
	Workers  int           `json:"workers,omitempty"`
	Rate     float64       `json:"rate,omitempty"` // offered rate (open loop)
	N        int           `json:"n"`
	Errors   int           `json:"errors"`
	FirstErr string        `json:"first_error,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
	Max      time.Duration `json:"max_ns"`
	Exhaust  bool          `json:"pool_exhausted,omitempty"` // stopped early: fixtures used up
	// CPUPerReq is the server process's CPU time (user+system) over the
	// phase divided by the requests answered: a figure other load on the
	// machine barely moves, unlike requests/s.
	CPUPerReq time.Duration `json:"server_cpu_per_request_ns,omitempty"`
	// ClientCPUPerReq is the harness's own CPU per request (load
	// generator, SMTP sink, Didit simulator): it shares the two cores.
	ClientCPUPerReq time.Duration `json:"client_cpu_per_request_ns,omitempty"`
	// Stall is the longest a 1 ms sleep in the harness overslept during
	// the phase, Steal the hypervisor's steal time (open loop only): the
	// machine's share of a latency tail.
	Stall time.Duration `json:"machine_stall_ns,omitempty"`
	Steal time.Duration `json:"steal_ns,omitempty"`
	// Busy is the share of the machine's CPU time that went to any
	// process over the phase (open loop only).
	Busy float64 `json:"machine_busy,omitempty"`
}

// summarize fills the rates and percentiles from raw latencies.
func summarize(r *Result, lat []time.Duration) {
	slices.Sort(lat)
	r.N = len(lat)
	if r.Elapsed > 0 {
		r.RPS = float64(r.N) / r.Elapsed.Seconds()
	}
	r.P50, r.P99, r.P999 = pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999)
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
