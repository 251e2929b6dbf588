package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/inspectd/inspectd/internal/api"
	"github.com/inspectd/inspectd/internal/source"
)

// writeSnapshot answers s as JSON, streamed: its tasks are encoded one by
// one into a small buffer rather than the whole answer in memory (87 MB at
// 100,000 tasks), and the encoding stops when the client goes away. What
// encoding costs the program is passed to charge.
func writeSnapshot(ctx context.Context, w http.ResponseWriter, s *api.Snapshot, charge func(time.Duration)) {
	rest := *s
	tasks := rest.Tasks
	rest.Tasks = nil
	head, err := json.Marshal(&rest)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "encoding the snapshot: "+err.Error())
		return
	}
	// "tasks" is the first field that may be null at the top: nested
	// ones are left out when empty.
	marker := []byte(`"tasks":null`)
	i := bytes.Index(head, marker)
	if i < 0 {
		WriteError(w, http.StatusInternalServerError, "encoding the snapshot: no tasks field")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A client that takes nothing for this long is given up.
	const stall = 30 * time.Second
	_ = rc.SetWriteDeadline(time.Now().Add(stall))
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:i])
	bw.WriteString(`"tasks":[`)
	enc := json.NewEncoder(bw)
	// Encoding is CPU the program spends on inspection: measured a batch
	// at a time on its thread (not while the client takes the bytes),
	// and charged.
	var cpu time.Duration
	defer func() { charge(cpu * 3 / 2) }()
	const batch = 32 // some 28 kB: within bw, which then rarely writes while locked
	for j := 0; j < len(tasks); j += batch {
		var err error
		cpu += source.OnThread(func() {
			for k := j; k < min(j+batch, len(tasks)) && err == nil; k++ {
				if k > 0 {
					bw.WriteByte(',')
				}
				err = enc.Encode(&tasks[k])
			}
		})
		if err != nil || ctx.Err() != nil {
			return
		}
		if bw.Buffered() > 48<<10 {
			if bw.Flush() != nil {
				return
			}
			_ = rc.SetWriteDeadline(time.Now().Add(stall))
		}
	}
	bw.WriteByte(']')
	bw.Write(head[i+len(marker):])
	bw.WriteByte('\n')
	bw.Flush()
}
