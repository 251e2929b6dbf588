package inproc

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/model"
	"github.com/inspectd/inspectd/internal/source"
)

// readProfile reads this process's goroutine profile: labels by stack.
func readProfile() (*model.StackProfile, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		return nil, err
	}
	return model.ParseStackProfile(&buf)
}

// ReadProfile reads one of this process's pprof profiles ("heap",
// "mutex", ...) as it is now.
func ReadProfile(name string) (*profile.Profile, error) {
	p := pprof.Lookup(name)
	if p == nil {
		return nil, fmt.Errorf("no %s profile: %w", name, source.ErrUnsupported)
	}
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 0); err != nil {
		return nil, err
	}
	return profile.Parse(&buf)
}

// Profile reads one of this process's pprof profiles (see ReadProfile).
func (c *Collector) Profile(_ context.Context, name string) (*profile.Profile, error) {
	return ReadProfile(name)
}
