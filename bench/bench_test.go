package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestBenchSmall runs the whole benchmark on a tiny dataset, so make bench
// keeps working: every step runs, counts its lines right, checks the
// files written, and yields a figure. It asserts no speed.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs every step")
	}
	cfg, err := parseFlags([]string{"-size", "4MiB", "-files", "3", "-gzip", "2", "-big", "8MiB",
		"-runs", "1", "-groups", "1,2", "-budget", "2MiB", "-small", "20", "-cache", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(".."); err != nil { // the module root, where the bench builds from
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir("bench") })
	rep, err := run(context.Background(), cfg, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"upload", "deliver to 1 group(s), discard", "deliver to 2 group(s), discard",
		"deliver to 1 group(s), --dir", "deliver to 2 group(s), --dir", "count lines", "end to end",
		"first byte", "Redis memory growth", "sender peak RSS", "receiver peak RSS", "throughput",
		"send 20 files", "receive 20 files of 4 KiB, --stdout", "receive 20 files of 4 KiB, --dir",
		"cluster: upload", "cluster: deliver to 1 group(s), discard", "cluster: deliver to 2 group(s), discard",
		"cluster: largest primary's share of the chunk bytes"}
	for _, w := range want {
		found := false
		for _, f := range rep.Results {
			if strings.HasPrefix(f.Name, w) {
				found = true
				if f.Value <= 0 || len(f.Runs) == 0 || f.Against <= 0 {
					t.Errorf("%s: median %v from runs %v against %v, want positive figures", f.Name, f.Value, f.Runs, f.Against)
				}
			}
		}
		if !found {
			t.Errorf("no figure for %q", w)
		}
	}
	for _, f := range rep.Ceilings {
		if f.Value <= 0 {
			t.Errorf("ceiling %s = %v", f.Name, f.Value)
		}
	}
	if g := rep.Dataset["files"]; g != 3 {
		t.Errorf("dataset has %d files, want 3", g)
	}
}
