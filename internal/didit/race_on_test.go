//go:build race

package didit_test

// raceEnabled: the race detector makes the large-body tests ten times
// slower without telling anything new about allocation.
const raceEnabled = true
