package diagnose

import (
	"strings"
	"testing"
)

// A leak finding names what the goroutines wait on: a select with no cases
// is not a channel.
func TestLeakedOn(t *testing.T) {
	for reason, want := range map[string]string{
		"select (no cases)": "select with no cases",
		"chan receive":      "channels",
		"select":            "channels",
		"sync.Cond.Wait":    "something",
	} {
		if got := leakedOn(reason); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q in it", reason, got, want)
		}
	}
}
