package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/pprof/profile"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source"
)

// StackOf returns the latest stack the trace recorded for goroutine id in
// the last snapshot's window, top first; nil when it was not there.
func (r *Remote) StackOf(id int64) []api.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return nil
	}
	return r.last.win.StackOf(id, false)
}

// StretchStackOf returns where goroutine id computed during its longest
// stretch on CPU in the last snapshot's window (GoStats.StretchStack).
func (r *Remote) StretchStackOf(id int64) []api.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return nil
	}
	return r.last.win.StackOf(id, true)
}

// profileFetcher is a fetcher that serves pprof profiles by name.
type profileFetcher interface {
	Profile(ctx context.Context, name string) (io.ReadCloser, error)
}

// Profile reads the target's named pprof profile ("heap", "mutex") as it is
// now, when the target serves it.
func (r *Remote) Profile(ctx context.Context, name string) (*profile.Profile, error) {
	pf, ok := r.f.(profileFetcher)
	if !ok {
		return nil, fmt.Errorf("a %s serves no pprof profiles: %w", r.f.Kind(), source.ErrUnsupported)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := pf.Profile(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	what := "the " + name + " profile"
	data, err := readProto(Limit(rc, r.opts.Limits.Profile, CapProfile, what, ParseBytes), r.opts.Limits.Profile, what)
	if err != nil {
		return nil, err
	}
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s profile of %s: %w", name, r.f.Target(), err)
	}
	return p, nil
}

// Profile reads /debug/pprof/{name} in proto form.
func (p *PprofFetcher) Profile(ctx context.Context, name string) (io.ReadCloser, error) {
	return p.open(ctx, "/debug/pprof/"+name, 30*time.Second)
}
