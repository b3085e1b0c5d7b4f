//go:build unix

package store_test

import (
	"syscall"
	"testing"
)

// loopCPU runs the benchmark loop and also reports the process's CPU time
// per operation (user + system, GC included): on a machine shared with
// other work it moves much less than the wall time does. On PostgreSQL the
// server's CPU is another process's and is not in it.
func loopCPU(b *testing.B, op func()) {
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	n := 0
	for b.Loop() {
		op()
		n++
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	ns := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
	if n > 0 {
		b.ReportMetric(float64(ns)/float64(n), "cpu-ns/op")
	}
}
