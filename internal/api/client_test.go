package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An error answer is the API's JSON error, or for another server's answer
// one line that sums it up.
func TestClientErrorAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/workloads":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error": "workload hello is running"}`))
		case "/page":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("<!DOCTYPE html>\n<html><head>\n<title>Internal\n Error</title></head><body>" + strings.Repeat("x", 5000) + "</body></html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "")
	for _, tc := range []struct {
		path, msg string
		code      int
		notAPI    bool
	}{
		{"/api/v1/workloads", "workload hello is running", 409, false},
		{"/page", `a page titled "Internal Error"`, 500, true},
		{"/nothing", "404 page not found", 404, true},
	} {
		err := c.Do(context.Background(), "GET", tc.path, nil, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.code || se.Message != tc.msg || se.NotAPI != tc.notAPI {
			t.Errorf("GET %s: %#v, want code %d, message %q, NotAPI %v", tc.path, err, tc.code, tc.msg, tc.notAPI)
		}
		resp, err := c.Open(context.Background(), tc.path)
		if resp != nil || !errors.As(err, &se) || se.Message != tc.msg {
			t.Errorf("Open %s: %v, want message %q", tc.path, err, tc.msg)
		}
	}
}

// A port that takes connections and never answers is given up after the
// transport's bound, with an error that says so.
func TestClientGivesUpOnSilence(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { ln.Close(); <-done }()
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	c := NewClient(ln.Addr().String(), "")
	c.HTTP.Transport = NewTransport(200 * time.Millisecond)
	err = c.Do(context.Background(), "GET", "/api/v1/snapshot", nil, nil)
	if !IsAnswerTimeout(err) {
		t.Errorf("%v: want an answer timeout", err)
	}
	if IsAnswerTimeout(context.DeadlineExceeded) || IsAnswerTimeout(errors.New("x")) {
		t.Error("IsAnswerTimeout takes other errors for one")
	}
}
