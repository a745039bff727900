package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// refDir is the committed command reference, from this package's directory.
const refDir = "../../docs/cli"

// The committed reference in docs/cli says what every command's --help
// says, so it cannot go stale: a flag or command added without "make docs"
// fails here.
func TestCLIReferenceUpToDate(t *testing.T) {
	pages, err := markdownPages(newRoot())
	if err != nil {
		t.Fatal(err)
	}
	const fix = "docs/cli is out of date with the commands' --help: run \"make docs\" and commit docs/cli"
	committed, _ := filepath.Glob(filepath.Join(refDir, "*.md"))
	for _, p := range committed {
		if _, ok := pages[filepath.Base(p)]; !ok {
			t.Errorf("%s: docs/cli/%s documents a command that no longer exists", fix, filepath.Base(p))
		}
	}
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join(refDir, name))
		if err != nil {
			t.Errorf("%s: docs/cli/%s is missing", fix, name)
			continue
		}
		if string(got) != string(want) {
			t.Errorf("%s: docs/cli/%s differs, first at: %s", fix, name, firstDiff(string(got), string(want)))
		}
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ": committed " + strconv.Quote(gl) + ", --help says " + strconv.Quote(wl)
		}
	}
	return "(line endings)"
}

// Every command a user can run has a description and examples in its
// --help, and the real binary prints them. Cobra's own help and
// completion commands are cobra's to describe.
func TestCLIHelpEverywhere(t *testing.T) {
	t.Parallel()
	cmds := documented(newRoot())
	if len(cmds) < 7 {
		t.Fatalf("only %d commands documented", len(cmds))
	}
	for _, c := range cmds {
		path := c.CommandPath()
		if strings.HasPrefix(path, "filecast completion") {
			continue
		}
		if c.Long == "" || c.Example == "" {
			t.Errorf("%s --help: Long %d bytes, Example %d bytes; want both", path, len(c.Long), len(c.Example))
		}
		args := append(strings.Fields(path)[1:], "--help")
		out, err := exec.Command(cliBin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("%s --help: %v\n%s", path, err, out)
			continue
		}
		if c.Example != "" && !strings.Contains(string(out), "Examples:\n"+c.Example) {
			t.Errorf("%s --help does not show its examples:\n%s", path, out)
		}
	}
}

// The generated man pages (make docs, a build with -tags docs): one per
// command, with its flags. The binary users run has no docs command.
func TestCLIManPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gen := filepath.Join(t.TempDir(), "filecast-docs")
	if out, err := exec.Command("go", "build", "-tags", "docs", "-o", gen, ".").CombinedOutput(); err != nil {
		t.Fatalf("build with -tags docs: %v\n%s", err, out)
	}
	out, err := exec.Command(gen, "docs", "--man", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("filecast docs --man: %v\n%s", err, out)
	}
	var want []string
	for _, c := range documented(newRoot()) {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
	}
	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("man pages %q, want %q", got, want)
	}
	recv, err := os.ReadFile(filepath.Join(dir, "filecast-recv.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`.TH "FILECAST-RECV" "1"`, `\fB--group\fP`, `\fB--until-eof\fP`, "Outputs (choose one)"} {
		if !strings.Contains(string(recv), s) {
			t.Errorf("filecast-recv.1 lacks %q", s)
		}
	}
}

// The binary users run leaves the reference generator out.
func TestCLINoDocsCommand(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(cliBin, "docs", "--man", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "docs"`) {
		t.Errorf("filecast docs: %v\n%s\nwant an unknown command (it is built only with -tags docs)", err, out)
	}
}
