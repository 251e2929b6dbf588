package server

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// unsent returns how many bytes written to c its peer has not yet taken
// into its receive buffer (SIOCOUTQ: sent but not acknowledged, or not sent
// for want of room on its side); false when it cannot tell.
func unsent(c syscall.Conn) (int, bool) {
	if c == nil {
		return 0, false
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ierr != nil {
		return 0, false
	}
	return n, true
}
