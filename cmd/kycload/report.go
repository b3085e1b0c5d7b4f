package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPU      string `json:"cpu"`
	MemGiB   string `json:"memory"`
	Go       string `json:"go"`
	Kernel   string `json:"kernel"`
	Postgres string `json:"postgres,omitempty"`
	When     string `json:"when"`
	LoadAvg  string `json:"loadavg_at_start"`
	LoadEnd  string `json:"loadavg_at_end,omitempty"`
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), When: time.Now().UTC().Format(time.RFC3339), LoadAvg: loadavg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int64
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
				m.MemGiB = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// row is one endpoint on one engine, as the tables show it.
type row struct {
	name          string
	write         bool
	kg, bl, open  *Result
	blOpen        *Result // the baseline at kycgate's open-loop rate
	ratio, target float64
}

func (h *harness) rows(engineName string) []row {
	var out []row
	all := append(scenarios[:len(scenarios):len(scenarios)], scenario{name: authCacheRow})
	for _, sc := range all {
		r := row{name: sc.name, write: sc.write, target: 0.60}
		if sc.write {
			r.target = 0.50
		}
		for i := range h.Results {
			res := &h.Results[i]
			if res.Engine != engineName || res.Name != sc.name {
				continue
			}
			switch {
			case res.Target == "baseline" && res.Mode == "open":
				r.blOpen = res
			case res.Target == "baseline":
				r.bl = res
			case res.Mode == "open":
				r.open = res
			default:
				r.kg = res
			}
		}
		if r.kg == nil {
			continue
		}
		if sc.name == authCacheRow { // same request, same baseline as status
			for _, o := range out {
				if o.name == "status" {
					r.bl = o.bl
				}
			}
		}
		if r.bl != nil && r.bl.RPS > 0 {
			r.ratio = r.kg.RPS / r.bl.RPS
		}
		out = append(out, r)
	}
	return out
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

const p99Target = 10 * time.Millisecond

func (h *harness) report(w io.Writer) {
	fmt.Fprintln(w)
	h.markdown(w)
}

// markdown writes the tables BENCHMARKS.md shows.
func (h *harness) markdown(w io.Writer) {
	m := h.Machine
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s RAM, kernel %s, %s", m.CPUs, m.CPU, m.MemGiB, m.Kernel, m.Go)
	if m.Postgres != "" {
		fmt.Fprintf(w, ", PostgreSQL %s", m.Postgres)
	}
	fmt.Fprintf(w, "; measured %s, load average %s at the start and %s at the end. Closed loop: %d workers, %s per phase after %s warm-up; open loop: %s at half the closed-loop peak after %s at that rate unrecorded.\n",
		m.When, m.LoadAvg, m.LoadEnd, h.opt.workers, h.opt.duration, h.opt.warmup, h.opt.openDur, h.opt.warmup)
	for _, eng := range h.opt.engines {
		h.engineMarkdown(w, eng)
	}
	for _, s := range h.Servers {
		fmt.Fprintf(w, "\nkycgate on %s after its run: RSS %d MB (peak %d MB); %d ERROR lines in its log%s\n",
			s.Engine, s.RSSKiB>>10, s.HWMKiB>>10, s.LogErrors, trimErr(s.FirstErr))
	}
	h.floodMarkdown(w)
	h.emailMarkdown(w)
	h.scaleMarkdown(w)
}

// engineMarkdown writes one engine's tables: closed loop against the
// baseline, then the open-loop control.
func (h *harness) engineMarkdown(w io.Writer, eng string) {
	rows := h.rows(eng)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### %s\n\n", eng)
	fmt.Fprintln(w, "| endpoint | kind | kycgate req/s | p50 | p99 | p99.9 ms | CPU µs/req | baseline req/s | p50 | p99 | p99.9 ms | CPU µs/req | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
	for _, r := range rows {
		kind := "read"
		if r.write {
			kind = "write"
		}
		bl := "| – | – | – | – | –"
		if r.bl != nil {
			bl = fmt.Sprintf("| %.0f | %s | %s | %s | %d", r.bl.RPS, ms(r.bl.P50), ms(r.bl.P99), ms(r.bl.P999), r.bl.CPUPerReq.Microseconds())
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %d %s | %.0f %% | ≥ %.0f %% | %s |%s\n", r.name, kind,
			r.kg.RPS, ms(r.kg.P50), ms(r.kg.P99), ms(r.kg.P999), r.kg.CPUPerReq.Microseconds(), bl, 100*r.ratio, 100*r.target, yes(r.ratio >= r.target), flags(r.kg, r.bl))
	}
	fmt.Fprintf(w, "\nkycgate at a fixed rate of half its peak (open loop, latency from each request's due time):\n\n")
	fmt.Fprintln(w, "| endpoint | offered req/s | answered req/s | p50 | p99 | p99.9 ms | p99 ≤ 10 ms | machine busy, stall / steal ms | baseline at the same rate: p50 | p99 | p99.9 ms | machine busy, stall / steal ms |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		if r.open == nil {
			continue
		}
		o := r.open
		ctl := "| – | – | – | –"
		if b := r.blOpen; b != nil {
			ctl = fmt.Sprintf("| %s | %s | %s | %.0f %%, %s / %s", ms(b.P50), ms(b.P99), ms(b.P999), 100*b.Busy, ms(b.Stall), ms(b.Steal))
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %s | %s | %s | %.0f %%, %s / %s %s |%s\n", r.name, o.Rate, o.RPS, ms(o.P50), ms(o.P99), ms(o.P999),
			yes(o.P99 <= p99Target && o.Errors == 0), 100*o.Busy, ms(o.Stall), ms(o.Steal), ctl, flags(o, r.blOpen))
	}
}

// emailMarkdown writes the email round-trip table, if that run was made.
func (h *harness) emailMarkdown(w io.Writer) {
	if len(h.Email) > 0 {
		fmt.Fprint(w, "\n### Email round trip (SQLite)\n\n")
		fmt.Fprint(w, "prepare → send-otp → delivery to the SMTP sink → read the code → verify-otp, a fresh email each time.\n\n")
		fmt.Fprintln(w, "| concurrency | round trips/s | p50 | p99 | p99.9 ms | target | met |")
		fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|---|")
		for _, r := range h.Email {
			e := ""
			if r.Errors > 0 {
				e = fmt.Sprintf(" %d errors: %s", r.Errors, r.FirstErr)
			}
			fmt.Fprintf(w, "| %d | %.0f | %s | %s | %s | ≥ %.0f | %s |%s\n", r.Concurrency, r.RPS, ms(r.P50), ms(r.P99), ms(r.P999),
				r.Target, yes(r.RPS >= r.Target && r.Errors == 0), e)
		}
	}
}

// scaleMarkdown writes the scale run's table, if that run was made.
func (h *harness) scaleMarkdown(w io.Writer) {
	if len(h.Scale) > 0 {
		fmt.Fprint(w, "\n### Scale run (SQLite)\n\n")
		fmt.Fprintf(w, "Every user enrolled, verified, with an approved session; status asks for uniformly random users. c=1: one request at a time; c=%d: closed loop.\n\n", h.opt.workers)
		fmt.Fprintf(w, "| users | db MB | status c=1 p50 | p99 ms | status c=%d req/s | p99 ms | prepare c=1 p50 | p99 ms | prepare c=%d req/s | p99 ms | kycgate RSS MB | peak RSS MB |\n", h.opt.workers, h.opt.workers)
		fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, s := range h.Scale {
			fmt.Fprintf(w, "| %d | %d | %s | %s | %.0f | %s | %s | %s | %.0f | %s | %d | %d |\n", s.Users, s.DBBytes>>20,
				ms(s.StatusC1.P50), ms(s.StatusC1.P99), s.StatusCN.RPS, ms(s.StatusCN.P99),
				ms(s.PrepareC1.P50), ms(s.PrepareC1.P99), s.PrepareCN.RPS, ms(s.PrepareCN.P99), s.RSSKiB>>10, s.PeakRSSKiB>>10)
		}
		if len(h.Scale) == 2 && h.Scale[0].StatusC1.P50 > 0 {
			small, big := h.Scale[0], h.Scale[1]
			ratio := float64(big.StatusC1.P50) / float64(small.StatusC1.P50)
			fmt.Fprintf(w, "\nstatus p50 at %d users / at %d users: %.2f× (target ≤ 1.5×: %s); RSS %d MB (target < 150 MB: %s)\n",
				big.Users, small.Users, ratio, yes(ratio <= 1.5), big.PeakRSSKiB>>10, yes(big.PeakRSSKiB>>10 < 150))
		}
	}
}

func flags(a, b *Result) string {
	var s []string
	for _, r := range []*Result{a, b} {
		if r == nil {
			continue
		}
		if r.Errors > 0 {
			s = append(s, fmt.Sprintf("%s: %d errors (%s)", r.Target, r.Errors, r.FirstErr))
		}
		if r.Exhaust {
			s = append(s, r.Target+": fixture pool used up after "+r.Elapsed.Round(time.Millisecond).String())
		}
	}
	if len(s) == 0 {
		return ""
	}
	return " " + strings.Join(s, "; ")
}

func trimErr(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return " (first: " + s + ")"
}
