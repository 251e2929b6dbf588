package main

import (
	"errors"
	"time"
)

// kubernetes#5316 (channel, with a timer): finishRequest runs the request in a
// goroutine that reports on unbuffered channels, and waits for the result or
// for a timeout. When the timeout wins, nobody will ever receive, and the
// goroutine blocks for good on its send. A buffer of one on each channel ends
// it.
func init() { register("kubernetes5316", "channel / select+timer", kubernetes5316) }

func kubernetes5316() {
	_, _ = k5316FinishRequest(time.Millisecond, func() (string, error) {
		time.Sleep(20 * time.Millisecond) // slower than the timeout
		return "ok", nil
	})
}

func k5316FinishRequest(timeout time.Duration, fn func() (string, error)) (string, error) {
	ch := make(chan string)
	errCh := make(chan error)
	go func() {
		if result, err := fn(); err != nil {
			errCh <- err
		} else {
			ch <- result // want: stuck
		}
	}()
	select {
	case result := <-ch:
		return result, nil
	case err := <-errCh:
		return "", err
	case <-time.After(timeout):
		return "", errors.New("request timed out")
	}
}
