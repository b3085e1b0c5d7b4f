//go:build !race

package didit_test

const raceEnabled = false
