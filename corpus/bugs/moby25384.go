package main

import "sync"

// moby#25384 (WaitGroup): the plugin manager adds len(plugins) to a WaitGroup,
// starts one goroutine per plugin, and calls Wait inside the loop instead of
// after it. With more than one plugin, the first Wait waits for goroutines not
// yet started: it blocks for good. Wait belongs after the loop.
func init() { register("moby25384", "waitgroup", moby25384) }

func moby25384() {
	plugins := []string{"authz", "volume", "network"}
	var group sync.WaitGroup
	group.Add(len(plugins))
	for _, p := range plugins {
		go func() {
			defer group.Done()
			_ = p // enable the plugin
		}()
		group.Wait() // want: stuck
	}
}
