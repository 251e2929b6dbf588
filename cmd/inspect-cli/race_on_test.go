//go:build race

package main

// raceEnabled says the tests run with -race: the end-to-end test builds the
// CLI the same way, so that it reuses the test's build cache.
const raceEnabled = true
