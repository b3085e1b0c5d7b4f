// Package benchcpu reports a benchmark's process CPU time per operation
// (user + system, GC included). On a machine shared with other work that
// figure moves much less than the wall time does. A database server's CPU
// is another process's and is not in it.
package benchcpu

import (
	"testing"
	"time"
)

// Loop runs the benchmark loop over op and reports cpu-ns/op.
func Loop(b *testing.B, op func()) {
	c0 := Used()
	n := 0
	for b.Loop() {
		op()
		n++
	}
	Report(b, Used()-c0, n)
}

// Report adds cpu-ns/op for n operations that used cpu between them;
// nothing where the platform does not measure it.
func Report(b *testing.B, cpu time.Duration, n int) {
	if n > 0 && cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}
