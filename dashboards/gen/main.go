// Command gen writes the inspectd Grafana dashboards as JSON into
// dashboards/grafana/. Run it with `go generate ./dashboards` (it writes
// next to the directory it runs in) or `go run ./dashboards/gen -out DIR`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/inspectd/inspectd/dashboards"
)

func main() {
	out := flag.String("out", "grafana", "directory to write the dashboards into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, d := range dashboards.All {
		db, err := d.Build()
		if err != nil {
			return fmt.Errorf("%s: %w", d.File, err)
		}
		b, err := dashboards.JSON(db)
		if err != nil {
			return fmt.Errorf("%s: %w", d.File, err)
		}
		if err := os.WriteFile(filepath.Join(out, d.File), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
