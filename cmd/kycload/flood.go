package main

// The webhook-flood scenario: what forged webhooks cost kycgate, and what
// they cost everyone else. Workers post forged Didit webhooks, each a
// large body signed only with a random X-Signature-V2 (so kycgate must
// canonicalise the body before it can refuse it) under a fresh
// X-Timestamp, as fast as kycgate answers; meanwhile status, an
// authenticated endpoint, is asked at a fixed rate, its latency measured
// from each request's due time. It reports kycgate's peak resident memory,
// the status latency with and without the flood, and the flood's answers
// by status. Run only when named (-only webhook-flood); loopback only,
// bounded in time (-flood-duration) and in requests (-flood-requests).
//
// The flood comes from a process of its own (`kycload flood`, this binary
// again) run under nice 10. In a real attack the attacker's CPU is on
// other machines; here the load generator shares the cores, and what it
// spends would otherwise show as kycgate's latency (a refusal that costs
// kycgate nothing still costs the sender a connection and a megabyte of
// writes). Niced, it takes the time kycgate and the probe leave. The
// machine's own stall is reported beside the latencies, as elsewhere.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const floodScenario = "webhook-flood"

// FloodResult is one webhook-flood run.
type FloodResult struct {
	Shape      string        `json:"shape"`
	BodyBytes  int           `json:"body_bytes"`
	Workers    int           `json:"workers"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Posts      int           `json:"posts"`
	ByStatus   map[int]int   `json:"answers_by_status"`
	Errors     int           `json:"transport_errors"`
	FirstErr   string        `json:"first_transport_error,omitempty"`
	ServerCPU  time.Duration `json:"server_cpu_ns"`
	RSSBefore  int64         `json:"rss_before_kib"`
	PeakRSS    int64         `json:"peak_rss_kib"` // VmHWM of a kycgate started for this run
	RSSAfter   int64         `json:"rss_after_kib"`
	Quiet      Result        `json:"status_quiet"`       // status alone, before the flood
	UnderFlood Result        `json:"status_under_flood"` // status during the flood
}

// floodBody is a JSON document of about n bytes that is expensive to
// canonicalise, shaped by shape.
func floodBody(shape string, n int) ([]byte, error) {
	var unit, open, close string
	switch shape {
	case "objects": // small objects with keys out of order: each must be reordered
		open, unit, close = "[", `{"b":0,"a":0}`, "]"
	case "keys": // one object, descending keys
		var sb strings.Builder
		sb.WriteString("{")
		for i := 9_999_999; sb.Len() < n-20; i-- {
			if sb.Len() > 1 {
				sb.WriteString(",")
			}
			sb.WriteString(`"k` + strconv.Itoa(i) + `":0`)
		}
		sb.WriteString("}")
		return []byte(sb.String()), nil
	case "nested": // chains of 64 nested objects, every level out of order
		open, unit, close = "[", strings.Repeat(`{"b":0,"a":`, 64)+"0"+strings.Repeat("}", 64), "]"
	case "escapes":
		open, unit, close = "[", `{"\u0062":"\u00e9\n\"\\\ud83d\ude00","\u0061":"\u2028"}`, "]"
	case "floats": // integral floats, 309 digits each in canonical form
		open, unit, close = "[", "1e308", "]"
	default:
		return nil, fmt.Errorf("unknown -flood-shape %q (objects, keys, nested, escapes, floats)", shape)
	}
	var sb strings.Builder
	sb.WriteString(open)
	for i := 0; sb.Len()+len(unit)+1+len(close) <= n; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(unit)
	}
	sb.WriteString(close)
	return []byte(sb.String()), nil
}

// runWebhookFlood runs the scenario on SQLite, on a kycgate of its own so
// that its peak resident memory (VmHWM) is the flood's.
func (h *harness) runWebhookFlood(ctx context.Context) error {
	o := h.opt
	body, err := floodBody(o.floodShape, o.floodSize)
	if err != nil {
		return err
	}
	fmt.Printf("\n== %s (sqlite): setting up\n", floodScenario)
	e, err := h.statusEngine(ctx, "sqlite", "flood")
	if err != nil {
		return err
	}
	defer e.db.Close()
	e.settle(ctx)
	kg, _, err := h.startKycgate(ctx, e, "flood")
	if err != nil {
		return err
	}
	defer kg.stop()
	probe := statusGen("st", statusUsers)(kg.base, e.apiKey)
	pc := newClient()

	r := FloodResult{Shape: o.floodShape, BodyBytes: len(body), Workers: o.floodWorkers, ByStatus: map[int]int{}}
	r.Quiet = openLoop(ctx, pc, probe, 200, o.floodRate, o.warmup, o.floodQuiet, kg)
	r.Quiet.Name, r.Quiet.Target, r.Quiet.Engine = "status, quiet", "kycgate", "sqlite"
	printResult("quiet", "status", &r.Quiet)
	r.RSSBefore, _ = kg.memory()

	fmt.Printf("   flooding: %d workers, forged %d-byte webhooks (%s), for %s or %d posts\n", o.floodWorkers, len(body), o.floodShape, o.floodDuration, o.floodRequests)
	args := []string{"flood", "-url", kg.base + "/webhooks/didit", "-workers", strconv.Itoa(o.floodWorkers),
		"-size", strconv.Itoa(o.floodSize), "-shape", o.floodShape, "-duration", o.floodDuration.String(),
		"-requests", strconv.Itoa(o.floodRequests)}
	name := h.self
	if nice, err := exec.LookPath("nice"); err == nil {
		name, args = nice, append([]string{"-n", "10", h.self}, args...)
	} else {
		fmt.Println("   (no nice: the flood runs at the same priority as kycgate)")
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	cpu0, start := kg.cpu(), time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the flood: %w", err)
	}
	r.UnderFlood = openLoop(ctx, pc, probe, 200, o.floodRate, 0, o.floodDuration, kg)
	r.UnderFlood.Name, r.UnderFlood.Target, r.UnderFlood.Engine = "status, under "+floodScenario, "kycgate", "sqlite"
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("the flood: %w", err)
	}
	r.Elapsed, r.ServerCPU = time.Since(start), kg.cpu()-cpu0
	var fr floodReport
	if err := json.Unmarshal(out.Bytes(), &fr); err != nil {
		return fmt.Errorf("the flood's report: %w: %q", err, out.Bytes())
	}
	r.Posts, r.ByStatus, r.Errors, r.FirstErr = fr.Posts, fr.ByStatus, fr.Errors, fr.FirstErr
	r.RSSAfter, r.PeakRSS = kg.memory()
	printResult("under flood", "status", &r.UnderFlood)
	fmt.Printf("   %s\n", r.summary())
	h.Flood = append(h.Flood, r)
	return nil
}

// summary is the run in one line.
func (r *FloodResult) summary() string {
	var answers []string
	for _, c := range slices.Sorted(maps.Keys(r.ByStatus)) {
		answers = append(answers, fmt.Sprintf("%d × %d", r.ByStatus[c], c))
	}
	s := fmt.Sprintf("%d forged %d KiB webhooks (%s) in %s, answers %s, %d transport errors; kycgate CPU %s; RSS %d MB before, peak %d MB, %d MB after",
		r.Posts, r.BodyBytes>>10, r.Shape, r.Elapsed.Round(time.Millisecond), strings.Join(answers, ", "), r.Errors,
		r.ServerCPU.Round(10*time.Millisecond), r.RSSBefore>>10, r.PeakRSS>>10, r.RSSAfter>>10)
	if r.FirstErr != "" {
		s += " (first error: " + trimErr(r.FirstErr)[9:]
	}
	return s
}

// floodMarkdown writes the webhook-flood runs as a table.
func (h *harness) floodMarkdown(w io.Writer) {
	if len(h.Flood) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### %s (SQLite)\n\n", floodScenario)
	fmt.Fprintf(w, "Forged webhooks (X-Signature-V2 only, random) posted by %d workers for %s; status asked at %.0f/s meanwhile, latency from each request's due time.\n\n",
		h.opt.floodWorkers, h.opt.floodDuration, h.opt.floodRate)
	fmt.Fprintln(w, "| body | posts | answers | kycgate CPU s | peak RSS MB | status quiet p50 | p99 ms | under flood p50 | p99 | p99.9 | max ms | machine busy, stall / steal ms |")
	fmt.Fprintln(w, "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range h.Flood {
		var answers []string
		for _, c := range slices.Sorted(maps.Keys(r.ByStatus)) {
			answers = append(answers, fmt.Sprintf("%d × %d", r.ByStatus[c], c))
		}
		if r.Errors > 0 {
			answers = append(answers, fmt.Sprintf("%d transport errors", r.Errors))
		}
		q, f := r.Quiet, r.UnderFlood
		fmt.Fprintf(w, "| %d KiB %s | %d | %s | %.1f | %d | %s | %s | %s | %s | %s | %s | %.0f %%, %s / %s |%s\n",
			r.BodyBytes>>10, r.Shape, r.Posts, strings.Join(answers, ", "), r.ServerCPU.Seconds(), r.PeakRSS>>10,
			ms(q.P50), ms(q.P99), ms(f.P50), ms(f.P99), ms(f.P999), ms(f.Max), 100*f.Busy, ms(f.Stall), ms(f.Steal), flags(&q, &f))
	}
}

// floodReport is what `kycload flood` prints.
type floodReport struct {
	Posts    int         `json:"posts"`
	ByStatus map[int]int `json:"by_status"`
	Errors   int         `json:"errors"`
	FirstErr string      `json:"first_error,omitempty"`
}

// floodMain is `kycload flood`: forged webhooks posted to a loopback URL
// by -workers workers, for -duration or -requests posts, whichever comes
// first; the answers by status go to stdout as JSON.
func floodMain(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	target := fs.String("url", "", "webhook URL; must be on 127.0.0.1")
	workers := fs.Int("workers", 128, "concurrent posts")
	size := fs.Int("size", 1<<20, "bytes per body")
	shape := fs.String("shape", "objects", "body shape")
	dur := fs.Duration("duration", 10*time.Second, "how long")
	requests := fs.Int("requests", 50000, "at most this many posts")
	fs.Parse(args)
	u, err := url.Parse(*target)
	if err != nil || u.Hostname() != "127.0.0.1" {
		return errors.New("-url must be an http://127.0.0.1:PORT/ URL")
	}
	if *workers < 1 || *requests < 1 || *dur <= 0 {
		return errors.New("-workers, -requests and -duration must be positive")
	}
	body, err := floodBody(*shape, *size)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	c := newClient()
	var (
		mu    sync.Mutex
		posts atomic.Int64
		errs  errLog
		wg    sync.WaitGroup
		rep   = floodReport{ByStatus: map[int]int{}}
	)
	for w := range *workers {
		wg.Go(func() {
			sig := randHex(32) // 64 hex digits: well-formed, so the body must be canonicalised
			local := map[int]int{}
			for ctx.Err() == nil && posts.Add(1) <= int64(*requests) {
				req, _ := http.NewRequestWithContext(ctx, "POST", *target, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
				req.Header.Set("X-Signature-V2", sig)
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.add("worker %d: %v", w, err)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local[resp.StatusCode]++
			}
			mu.Lock()
			for code, n := range local {
				rep.ByStatus[code] += n
				rep.Posts += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	rep.Errors, rep.FirstErr = int(errs.n.Load()), errs.first
	return json.NewEncoder(os.Stdout).Encode(rep)
}
