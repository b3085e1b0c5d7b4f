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
	stop chan struct{}
	done chan time.Duration
	cpu0 cpuTimes
}

func startStallMeter() *stallMeter {
	m := &stallMeter{stop: make(chan struct{}), done: make(chan time.Duration, 1), cpu0: readCPUTimes()}
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

// end returns the longest oversleep, the steal time since the start, and
// how busy the machine's CPUs were (0–1, all processes, steal excluded).
func (m *stallMeter) end() (worst, steal time.Duration, busy float64) {
	close(m.stop)
	worst = <-m.done
	c := readCPUTimes()
	steal = c.steal - m.cpu0.steal
	if total := c.total - m.cpu0.total; total > 0 {
		busy = float64(c.busy-m.cpu0.busy) / float64(total)
	}
	return worst, steal, busy
}

// cpuTimes are the machine's summed CPU times from /proc/stat's first
// line, in USER_HZ ticks turned into durations.
type cpuTimes struct{ busy, steal, total time.Duration }

func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var v [8]time.Duration
	for i := range v {
		n, _ := strconv.ParseInt(f[i+1], 10, 64)
		v[i] = time.Duration(n) * time.Second / 100 // USER_HZ
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	busy := user + nice + system + irq + softirq
	return cpuTimes{busy: busy, steal: steal, total: busy + idle + iowait + steal}
}
