package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/inspectd/inspectd/internal/api"
)

// SnapshotFunc builds a snapshot over a window (probes.Remote.Snapshot).
type SnapshotFunc func(ctx context.Context, window time.Duration) (*api.Snapshot, error)

// Poll is the update stream of a target without /api/v1/watch (a program
// that serves only net/http/pprof, a gops agent): it takes snapshots one after
// the other and delivers on C the same messages as Stream: an UpdateMsg with
// the difference from the previous snapshot (full after a failure), and
// ConnMsg values when snapshots fail and when they succeed again.
type Poll struct {
	Snapshot SnapshotFunc
	// Interval is the least time between the starts of two snapshots; a
	// snapshot that takes longer (a remote one lasts its window) is followed
	// at once by the next.
	Interval time.Duration
	Window   time.Duration
	C        chan tea.Msg

	MinBackoff, MaxBackoff time.Duration
}

// NewPoll returns a poll of snapshot.
func NewPoll(snapshot SnapshotFunc, interval, window time.Duration) *Poll {
	return &Poll{
		Snapshot: snapshot, Interval: interval, Window: window, C: make(chan tea.Msg, 1),
		MinBackoff: 250 * time.Millisecond, MaxBackoff: 5 * time.Second,
	}
}

// Run polls until ctx ends. It closes C when it returns.
func (p *Poll) Run(ctx context.Context) {
	defer close(p.C)
	var (
		prev      *api.Snapshot
		seq       int64
		connected bool
		downSince time.Time // when the last success was followed by a failure
		period    = p.Interval
	)
	backoff := p.MinBackoff
	for ctx.Err() == nil {
		began := time.Now()
		snap, err := p.Snapshot(ctx, p.Window)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if connected {
				connected = false
				downSince = time.Now()
				prev = nil // the target may come back another program
			}
			p.send(ctx, ConnMsg{State: Reconnecting, Err: err, Retry: backoff})
			if !p.sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, p.MaxBackoff)
			continue
		}
		backoff = p.MinBackoff
		period = max(p.Interval, time.Since(began))
		if !connected {
			connected = true
			if downSince.IsZero() {
				p.send(ctx, ConnMsg{State: Connected})
			} else {
				down := time.Since(downSince)
				p.send(ctx, ConnMsg{State: Connected, Reconnected: true, Down: down, Lost: int64(down / period)})
			}
		}
		seq++
		u := api.Diff(prev, snap)
		u.Seq = seq
		p.send(ctx, UpdateMsg{Update: u})
		prev = snap
		if !p.sleep(ctx, p.Interval-time.Since(began)) {
			return
		}
	}
}

func (p *Poll) send(ctx context.Context, m tea.Msg) {
	select {
	case p.C <- m:
	case <-ctx.Done():
	}
}

// sleep waits d (nothing if d <= 0) unless ctx ends first.
func (p *Poll) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
