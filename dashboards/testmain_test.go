package dashboards

import (
	"os"
	"testing"

	"github.com/inspectd/inspectd/internal/portfile"
)

func TestMain(m *testing.M) { os.Exit(portfile.RunIsolated(m)) }
