//go:build unix

package benchcpu

import (
	"syscall"
	"time"
)

// Used is the CPU time this process has used so far.
func Used() time.Duration {
	var r syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &r) != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
