//go:build !linux

package server

import "syscall"

// unsent cannot tell here: a slow client's updates wait in the socket's
// buffers, and the stream learns of it only once a write blocks.
func unsent(syscall.Conn) (int, bool) { return 0, false }
