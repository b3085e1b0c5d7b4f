package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// stallMeter watches the machine rather than the server, as a control for
// latency tails: a goroutine asks to sleep 1 ms over and over and records
// how much later than asked it woke (the "hiccup" method of jHiccup). A
// stall that holds up every process — another job's burst, the hypervisor
// running another guest — shows here whichever server is being measured.
// It also reads the kernel's steal time: CPU time the hypervisor gave to
// other guests while this one had work.
type stallMeter struct {
	stop   chan struct{}
	done   chan time.Duration
	steal0 time.Duration
}

func startStallMeter() *stallMeter {
	m := &stallMeter{stop: make(chan struct{}), done: make(chan time.Duration, 1), steal0: stealTime()}
	go func() {
		var worst time.Duration
		for {
			select {
			case <-m.stop:
				m.done <- worst
				return
			default:
			}
			t := time.Now()
			time.Sleep(time.Millisecond)
			worst = max(worst, time.Since(t)-time.Millisecond)
		}
	}()
	return m
}

// end returns the longest oversleep and the steal time since the start.
func (m *stallMeter) end() (worst, steal time.Duration) {
	close(m.stop)
	return <-m.done, stealTime() - m.steal0
}

// stealTime is the machine's total steal time (/proc/stat, all CPUs).
func stealTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	v, _ := strconv.ParseInt(f[8], 10, 64)
	return time.Duration(v) * time.Second / 100 // USER_HZ
}
