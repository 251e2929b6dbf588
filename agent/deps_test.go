package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// What an agent may carry: the model and its sources, the diagnosis, the
// API, x/exp/trace, pprof's profile package and fgprof. Not the workload
// lab, not the daemon's exporters (Prometheus, Pyroscope, OpenTelemetry and
// the gRPC beneath it), not the terminal UI or the CLI.
var forbidden = []string{
	"github.com/inspectd/inspectd/internal/workload",
	"github.com/inspectd/inspectd/internal/daemon",
	"github.com/inspectd/inspectd/internal/tui",
	"github.com/inspectd/inspectd/internal/pprofui",
	"github.com/inspectd/inspectd/internal/source/remote",
	"github.com/prometheus/",
	"github.com/grafana/pyroscope-go",
	"go.opentelemetry.io/",
	"google.golang.org/grpc",
	"github.com/google/pprof/driver",
	"charm.land/",
	"github.com/spf13/cobra",
}

const (
	// maxDeps bounds `go list -deps ./agent`: net/http, net/http/pprof,
	// x/exp/trace, pprof's profile and fgprof alone are 216 packages.
	maxDeps = 260
	// maxBinary bounds a program that embeds the agent and nothing else
	// (testdata/minimal): those libraries alone make 7.5 MB.
	maxBinary = 15 << 20
)

func TestAgentDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("the agent depends on %s", d)
			}
		}
	}
	if len(deps) > maxDeps {
		t.Errorf("the agent depends on %d packages, more than %d", len(deps), maxDeps)
	}
	t.Logf("%d packages", len(deps))
}

func TestAgentBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	bin := filepath.Join(t.TempDir(), "minimal")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/minimal").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxBinary {
		t.Errorf("a program embedding only the agent is %.1f MB, more than %d MB", float64(fi.Size())/(1<<20), maxBinary>>20)
	}
	t.Logf("%.1f MB", float64(fi.Size())/(1<<20))
}
