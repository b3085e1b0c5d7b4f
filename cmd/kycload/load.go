package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Gen makes the next request of a scenario. ok=false means its fixture pool
// is used up. It must be safe for concurrent use.
type Gen func() (req *http.Request, ok bool)

// newClient is one keep-alive HTTP client per target, with room for every
// worker's connection.
func newClient() *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2048,
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// errLog keeps the error count and the first error's text.
type errLog struct {
	n     atomic.Int64
	once  sync.Once
	first string
}

func (e *errLog) add(format string, args ...any) {
	e.n.Add(1)
	e.once.Do(func() { e.first = fmt.Sprintf(format, args...) })
}

// do sends one request and reports whether it got the expected status.
func do(c *http.Client, req *http.Request, expect int, errs *errLog) bool {
	resp, err := c.Do(req)
	if err != nil {
		errs.add("%s %s: %v", req.Method, req.URL.Path, err)
		return false
	}
	if resp.StatusCode != expect {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		errs.add("%s %s: HTTP %d (want %d): %s", req.Method, req.URL.Path, resp.StatusCode, expect, b)
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

// closedLoop runs workers that each send the next request as soon as the
// previous one is answered, for warmup (not recorded) and then dur, or until
// the fixture pool runs out. Every latency is kept.
//
// With server set, the result also has the server's CPU time per answered
// request over the measured part.
func closedLoop(ctx context.Context, c *http.Client, gen Gen, expect, workers int, warmup, dur time.Duration, server *proc) Result {
	var errs errLog
	var exhausted atomic.Bool
	if warmup > 0 {
		run(ctx, c, gen, expect, workers, warmup, &errLog{}, &exhausted)
	}
	cpu0, self0 := server.cpu(), selfCPU()
	start := time.Now()
	lats := run(ctx, c, gen, expect, workers, dur, &errs, &exhausted)
	r := Result{Mode: "closed", Workers: workers, Elapsed: time.Since(start), Errors: int(errs.n.Load()),
		FirstErr: errs.first, Exhaust: exhausted.Load()}
	summarize(&r, lats)
	if server != nil && r.N > 0 {
		r.CPUPerReq = (server.cpu() - cpu0) / time.Duration(r.N)
		r.ClientCPUPerReq = (selfCPU() - self0) / time.Duration(r.N)
	}
	return r
}

func run(ctx context.Context, c *http.Client, gen Gen, expect, workers int, dur time.Duration, errs *errLog, exhausted *atomic.Bool) []time.Duration {
	var stop atomic.Bool
	timer := time.AfterFunc(dur, func() { stop.Store(true) })
	defer timer.Stop()
	per := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for !stop.Load() && ctx.Err() == nil && !exhausted.Load() {
				req, ok := gen()
				if !ok {
					exhausted.Store(true)
					break
				}
				t0 := time.Now()
				if do(c, req, expect, errs) {
					lat = append(lat, time.Since(t0))
				}
			}
			per[w] = lat
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range per {
		all = append(all, l...)
	}
	return all
}

// traceOpen, when set (KYCLOAD_TRACE=file), gets "due time (Unix µs),latency
// µs" for every open-loop request, to see whether a latency tail is spread
// out or one stall, and to line it up with other processes' activity.
var (
	traceOpen io.Writer
	traceMu   sync.Mutex
)

// openLoop offers a fixed rate for warmup (not recorded) and then dur,
// whatever the answers' latency: each request has a due time, and its
// latency is measured from that due time, so a stall shows up in the
// percentiles instead of slowing the offered load (no coordinated omission).
func openLoop(ctx context.Context, c *http.Client, gen Gen, expect int, rate float64, warmup, dur time.Duration, server *proc) Result {
	nw := int(rate * warmup.Seconds())
	n := int(rate * dur.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, nw+n)
	var errs, warmErrs errLog
	var exhausted atomic.Bool
	const pool = 512
	per := make([][]time.Duration, pool)
	start := time.Now()
	measured := start.Add(time.Duration(nw) * interval) // first recorded due time
	var wg sync.WaitGroup
	for w := range pool {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for d := range due {
				if exhausted.Load() || ctx.Err() != nil {
					continue
				}
				req, ok := gen()
				if !ok {
					exhausted.Store(true)
					continue
				}
				if d.Before(measured) {
					do(c, req, expect, &warmErrs)
					continue
				}
				if do(c, req, expect, &errs) {
					lat = append(lat, time.Since(d))
					if traceOpen != nil {
						traceMu.Lock()
						fmt.Fprintf(traceOpen, "%d,%d\n", d.UnixMicro(), time.Since(d).Microseconds())
						traceMu.Unlock()
					}
				}
			}
			per[w] = lat
		}()
	}
	var cpu0 time.Duration
	var stalls *stallMeter
	for i := range nw + n {
		d := start.Add(time.Duration(i) * interval)
		if wait := time.Until(d); wait > 0 {
			time.Sleep(wait)
		}
		if i == nw {
			cpu0 = server.cpu()
			stalls = startStallMeter()
		}
		due <- d
	}
	close(due)
	wg.Wait()
	r := Result{Mode: "open", Rate: rate, Elapsed: time.Since(measured), Errors: int(errs.n.Load()),
		FirstErr: errs.first, Exhaust: exhausted.Load()}
	if stalls != nil {
		r.Stall, r.Steal, r.Busy = stalls.end()
	}
	var all []time.Duration
	for _, l := range per {
		all = append(all, l...)
	}
	summarize(&r, all)
	if server != nil && r.N > 0 {
		r.CPUPerReq = (server.cpu() - cpu0) / time.Duration(r.N)
	}
	return r
}
