package probes

import (
	"bytes"
	"fmt"
	"runtime/pprof"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
)

// StackOf returns the latest stack the trace recorded for goroutine id in
// the window of the last snapshot built, top first; nil when it was not in
// that window.
func (c *Collector) StackOf(id int64) []api.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	return c.last.win.stackOf(id, false)
}

// StretchStackOf returns where goroutine id computed during its longest
// stretch on CPU in the window of the last snapshot built (see
// GoStats.StretchStack), or nil.
func (c *Collector) StretchStackOf(id int64) []api.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	return c.last.win.stackOf(id, true)
}

// ReadLocalProfile reads one of this process's pprof profiles ("heap",
// "mutex", ...) as it is now.
func ReadLocalProfile(name string) (*profile.Profile, error) {
	p := pprof.Lookup(name)
	if p == nil {
		return nil, fmt.Errorf("no %s profile", name)
	}
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 0); err != nil {
		return nil, err
	}
	return profile.Parse(&buf)
}
