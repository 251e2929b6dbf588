//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "costbench: runs on Linux only: it reads its targets' numbers from /proc and clock_gettime")
	os.Exit(2)
}
