package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
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

// Limits of the HTTP servers of the daemon and the agent: a client that
// is slow to send its request, or holds an idle connection, is let go; at
// most MaxConns connections are served at once (more wait to be accepted).
const (
	readTimeout       = 30 * time.Second
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 30 * time.Second
	maxHeaderBytes    = 64 << 10
	MaxConns          = 256
)

// NewHTTPServer returns the http.Server of the inspection surface, with
// its limits. Responses have no overall write timeout (a watch stream
// lasts): the handlers set deadlines on their writes.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadTimeout:       readTimeout,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:       ConnContext,
	}
}

// LimitListener serves at most MaxConns connections of ln at once.
func LimitListener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, MaxConns)
}
