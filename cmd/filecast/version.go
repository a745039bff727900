package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is the release this binary is. The Makefile sets it from git:
//
//	go build -ldflags "-X main.version=v1.2.0" ./cmd/filecast
//
// Left empty, the module version and the VCS revision that the Go
// toolchain recorded (runtime/debug.ReadBuildInfo) are used.
var version string

// buildInfo is what "filecast version --json" prints.
type buildInfo struct {
	Version  string `json:"version"`            // release, module version or "devel"
	Revision string `json:"revision,omitempty"` // VCS commit, if recorded
	Time     string `json:"time,omitempty"`     // commit time, if recorded
	Modified *bool  `json:"modified,omitempty"` // built from a work tree with local changes, if recorded
	Go       string `json:"go"`                 // toolchain, e.g. go1.26.8
	Platform string `json:"platform"`           // GOOS/GOARCH
}

// readBuildInfo returns the version set at link time, else the one the
// toolchain recorded.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				modified := s.Value == "true"
				b.Modified = &modified
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// String is the line "filecast --version" prints, e.g.
// "v1.2.0 (commit 425526e42e95, modified) built with go1.26.8 for linux/amd64".
func (b buildInfo) String() string {
	var s strings.Builder
	s.WriteString(b.Version)
	if b.Revision != "" {
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&s, " (commit %s", rev)
		if b.Modified != nil && *b.Modified {
			s.WriteString(", modified")
		}
		s.WriteString(")")
	}
	fmt.Fprintf(&s, " built with %s for %s", b.Go, b.Platform)
	return s.String()
}

// setVersion gives root a --version flag and adds "filecast version".
func setVersion(root *cobra.Command) {
	// cobra prints "filecast version " and this. (A version template of our
	// own would bring in text/template, which more than doubles the binary.)
	root.Version = readBuildInfo().String()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of filecast",
		Long: `Print the version of this filecast binary: the release it was built as (or
the Go module version, or "devel"), the commit it was built from and whether
the work tree had local changes, when recorded, and the Go toolchain and
platform. "filecast --version" prints the same line.`,
		Example: `  filecast version
  filecast version --json | jq -r .revision`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			b := readBuildInfo()
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(b)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "filecast version %s\n", b)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version as one JSON object")
	root.AddCommand(cmd)
}
