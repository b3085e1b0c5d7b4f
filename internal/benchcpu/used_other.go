//go:build !unix

package benchcpu

import "time"

// Used is 0: the CPU time is not measured here.
func Used() time.Duration { return 0 }
