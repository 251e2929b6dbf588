// Package portfile keeps the files through which a process that serves the
// inspection API (inspectd, or a program embedding the agent) says where:
// one file per process in the user config dir's inspectd/agents, named
// after its pid and holding its address. `inspect-cli ps` and PID targets
// read them.
package portfile

import (
	"os"
	"path/filepath"
	"strconv"
)

// Dir is where the port files are.
func Dir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "inspectd", "agents"), nil
}

// Write writes this process' port file, holding addr, and returns its path.
func Write(addr string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, strconv.Itoa(os.Getpid()))
	return path, os.WriteFile(path, []byte(addr), 0o644)
}

// RunIsolated runs a package's tests (testing.M) with the user config dir
// in a temporary directory, so that the daemons and agents they start write
// their port files there, not among the user's; it returns Run's code. A
// test binary that a test runs as a helper process keeps the config dir it
// was given, where the test looks for its port file.
func RunIsolated(m interface{ Run() int }) int {
	const isolated = "INSPECTD_TEST_CONFIG_ISOLATED"
	if os.Getenv(isolated) != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "inspectd-config")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDG_CONFIG_HOME", dir)
	os.Setenv(isolated, "1")
	return m.Run()
}
