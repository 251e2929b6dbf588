package main

import (
	"os"
	"testing"

	"github.com/inspectd/inspectd/internal/portfile"
)

func TestMain(m *testing.M) { os.Exit(portfile.RunIsolated(m)) }
