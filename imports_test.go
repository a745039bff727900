package filecast_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/filecast/filecast"

// listedPackage is what go list says of a package of the module.
type listedPackage struct {
	ImportPath string
	Imports    []string // of its non-test files
}

// importViolations checks the layers of the module (STYLE.md, Layout):
//   - only internal/store speaks to Redis: no other package imports the
//     Redis client, so it can be swapped there alone;
//   - internal/wire (the byte formats) imports only the standard library,
//     and internal/chunk only that, internal/wire and the hash;
//   - the CLI, cmd/..., dogfoods the library: it imports the public
//     package, internal/units and third-party libraries, no other internal
//     package.
//
// Tests are not checked: they inspect Redis and plant data with whatever
// they need. bench/ and examples/ are programs of their own, not layers of
// the library (the benchmark measures Redis itself; an example may use
// Redis for its own data). std reports whether a path is of the standard
// library.
func importViolations(pkgs []listedPackage, std func(string) bool) []string {
	var bad []string
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if under(rel, "bench") || under(rel, "examples") {
			continue
		}
		for _, imp := range p.Imports {
			internal := strings.HasPrefix(imp, module+"/internal/")
			var why string
			switch {
			case under(imp, "github.com/redis/rueidis") && rel != "internal/store":
				why = "only internal/store may import the Redis client"
			case rel == "internal/wire" && !std(imp):
				why = "internal/wire imports only the standard library"
			case rel == "internal/chunk" && !std(imp) && imp != module+"/internal/wire" && imp != "github.com/zeebo/xxh3":
				why = "internal/chunk imports only the standard library, internal/wire and xxh3"
			case under(rel, "cmd") && internal && imp != module+"/internal/units":
				why = "cmd/ imports the public package and internal/units, no other internal package"
			}
			if why != "" {
				bad = append(bad, fmt.Sprintf("%s imports %s: %s", p.ImportPath, imp, why))
			}
		}
	}
	return bad
}

// under reports whether path is dir or below it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// The import rules hold for every package of the module.
func TestImportRules(t *testing.T) {
	goList := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	std := strings.Fields(string(goList("std")))
	slices.Sort(std)
	isStd := func(p string) bool { _, ok := slices.BinarySearch(std, p); return ok }
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(goList("-json=ImportPath,Imports", module+"/...")))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for _, v := range importViolations(pkgs, isStd) {
		t.Error(v)
	}
}

// The check finds each kind of broken rule.
func TestImportRulesCatchViolations(t *testing.T) {
	std := func(p string) bool { return !strings.Contains(p, ".") }
	broken := []listedPackage{
		{module, []string{"fmt", module + "/internal/store", "github.com/redis/rueidis"}},
		{module + "/internal/wire", []string{"fmt", "github.com/zeebo/xxh3"}},
		{module + "/internal/chunk", []string{"io", module + "/internal/wire", "github.com/zeebo/xxh3", module + "/internal/store"}},
		{module + "/cmd/filecast", []string{module, module + "/internal/units", "github.com/spf13/cobra", module + "/internal/wire"}},
		{module + "/internal/store", []string{"github.com/redis/rueidis"}},                              // allowed
		{module + "/examples/logagg", []string{"github.com/redis/rueidis", module + "/internal/units"}}, // not a layer
	}
	got := importViolations(broken, std)
	want := []string{
		module + " imports github.com/redis/rueidis",
		module + "/internal/wire imports github.com/zeebo/xxh3",
		module + "/internal/chunk imports " + module + "/internal/store",
		module + "/cmd/filecast imports " + module + "/internal/wire",
	}
	if len(got) != len(want) {
		t.Fatalf("violations:\n%s\nwant %d, starting with %q", strings.Join(got, "\n"), len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+":") {
			t.Errorf("violation %d = %q, want %q…", i, got[i], want[i])
		}
	}
}
