package server

import (
	"context"
	"net"
	"syscall"
)

type connKey struct{}

// ConnContext is for an http.Server's ConnContext: it lets the watch stream
// see the connection it writes to, to hold updates back while the client
// has not taken the last one (see unsent). Without it a slow client's
// updates pile up in the kernel's socket buffers unannounced.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// requestConn is the connection of the request whose context is ctx, if
// ConnContext set it and it is a socket; TLS is looked through.
func requestConn(ctx context.Context) syscall.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	sc, _ := c.(syscall.Conn)
	return sc
}
