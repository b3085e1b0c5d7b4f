//go:build !unix

package httpapi

import "testing"

func loopCPU(b *testing.B, op func()) {
	for b.Loop() {
		op()
	}
}
