package main

import "errors"

// cilium#24786 (buffered channel nobody reads): the kvstore's etcd status
// checker reports each failed quorum check on statusCheckErrors, a channel
// with a buffer of 128 read only where clustermesh is used. Elsewhere,
// after 128 failures the checker blocks on its send for good, and health
// checks fail until a restart. A select with a default on the send, or
// reading the channel only where it is made, would end it.
func init() { register("cilium24786", "channel (buffered)", cilium24786) }

type c24786Client struct {
	statusCheckErrors chan error
}

func cilium24786() {
	e := &c24786Client{statusCheckErrors: make(chan error, 128)}
	go e.statusChecker()
}

func (e *c24786Client) statusChecker() {
	for {
		err := errors.New("etcd: quorum check failed")
		e.statusCheckErrors <- err // want: stuck
	}
}
