package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/inspectd/inspectd/internal/api"
)

// writeSnapshot answers s as JSON, streamed: its tasks are encoded one by
// one into a small buffer rather than the whole answer in memory (87 MB at
// 100,000 tasks), and the encoding stops when the client goes away.
func writeSnapshot(ctx context.Context, w http.ResponseWriter, s *api.Snapshot) {
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
	for j := range tasks {
		if j > 0 {
			bw.WriteByte(',')
		}
		if err := enc.Encode(&tasks[j]); err != nil {
			return
		}
		if j%256 == 255 {
			if ctx.Err() != nil {
				return
			}
			if bw.Buffered() > 48<<10 {
				if bw.Flush() != nil {
					return
				}
				_ = rc.SetWriteDeadline(time.Now().Add(stall))
			}
		}
	}
	bw.WriteByte(']')
	bw.Write(head[i+len(marker):])
	bw.WriteByte('\n')
	bw.Flush()
}
