package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// filecast --version and filecast version print the version, the commit
// when the toolchain recorded one, the Go toolchain and the platform; a
// release build sets the version with -ldflags -X main.version (make build).
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(cliBin, args...).Output()
		if err != nil {
			t.Fatalf("filecast %s: %v", args[0], err)
		}
		line := string(out)
		if !strings.HasPrefix(line, "filecast version ") || !strings.Contains(line, runtime.Version()) ||
			!strings.Contains(line, platform) || strings.Count(line, "\n") != 1 {
			t.Errorf("filecast %s printed %q, want one line naming %s and %s", args[0], line, runtime.Version(), platform)
		}
	}
	out, err := exec.Command(cliBin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("filecast version --json: %v", err)
	}
	var b buildInfo
	if err := json.Unmarshal(out, &b); err != nil || b.Go != runtime.Version() || b.Platform != platform || b.Version == "" {
		t.Errorf("filecast version --json printed %s (%v)", out, err)
	}

	bin := filepath.Join(t.TempDir(), "filecast")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags -X main.version: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "filecast version v9.8.7-test ") {
		t.Errorf("built with -X main.version=v9.8.7-test, --version printed %q (%v)", out, err)
	}
}

// The line --version prints, from what the toolchain recorded.
func TestBuildInfoString(t *testing.T) {
	for _, tc := range []struct {
		b    buildInfo
		want string
	}{
		{buildInfo{Version: "devel", Go: "go1.26.8", Platform: "linux/amd64"}, "devel built with go1.26.8 for linux/amd64"},
		{buildInfo{Version: "v1.2.0", Revision: "425526e42e95ec0eeb7aacf6b02aa736f1dc34b0", Go: "go1.26.8", Platform: "linux/arm64"},
			"v1.2.0 (commit 425526e42e95) built with go1.26.8 for linux/arm64"},
		{buildInfo{Version: "devel", Revision: "425526e42e95ec0e", Modified: ptr(true), Go: "go1.26.8", Platform: "linux/amd64"},
			"devel (commit 425526e42e95, modified) built with go1.26.8 for linux/amd64"},
	} {
		if got := tc.b.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.b, got, tc.want)
		}
	}
}

// A mistyped command is a usage error (exit 2) that suggests the command
// meant, in one line.
func TestCLIUnknownCommand(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, url: "redis://127.0.0.1:1"} // never reached
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"sned", "ch", "file"}, []string{`unknown command "sned"`, "did you mean send?", "filecast --help"}},
		{[]string{"--prefix", "x", "stauts"}, []string{`unknown command "stauts"`, "did you mean status?"}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`, "filecast --help"}},
	} {
		r := c.run(tc.args...)
		line := expectFail(t, r, 2, tc.want...)
		if strings.Contains(line, "did you mean") != strings.Contains(strings.Join(tc.want, " "), "did you mean") {
			t.Errorf("%q: unexpected suggestion in %q", tc.args, line)
		}
	}
}

func ptr[T any](v T) *T { return &v }
