package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filecast/filecast/internal/redistest"
)

// The README's batch job, in the order written: join creates the group, so
// the send that follows never finds the channel without one, and the
// receiver started afterwards gets the batch and exits.
func TestCLIJoinBeforeSend(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.bin"), randomBytes(1, 300_000), 0o644)
	writeFile(t, filepath.Join(src, "b.bin"), randomBytes(2, 3_000), 0o644)

	r := c.run("join", "datasets", "--group", "train", "--group", "eval")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "created group train on channel datasets") ||
		!strings.Contains(r.stderr, "created group eval on channel datasets: it gets every file sent from now on; existing groups: train") {
		t.Errorf("join does not say what it did:\n%s", r.stderr)
	}
	expectOK(t, c.run("send", "datasets", src, "--eof"))
	for _, group := range []string{"train", "eval"} {
		out := t.TempDir()
		expectOK(t, c.run("recv", "datasets", "--group", group, "--dir", out, "--until-eof"))
		sameFile(t, filepath.Join(out, "a.bin"), randomBytes(1, 300_000))
		sameFile(t, filepath.Join(out, "b.bin"), randomBytes(2, 3_000))
	}

	// Joining again changes nothing; --json says it as JSON.
	r = c.run("join", "datasets", "--group", "train", "--json")
	expectOK(t, r)
	var ev map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev["event"] != "joined" || ev["group"] != "train" || ev["new"] != false {
		t.Errorf("join --json printed %q (%v), want a joined event for train, not new", r.stdout, err)
	}
	r = c.run("join", "datasets", "--group", "train")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "group train is on channel datasets already") {
		t.Errorf("join of a group there does not say nothing changed:\n%s", r.stderr)
	}
	expectFail(t, c.run("join", "datasets"), exitUsage, "--group")
	expectFail(t, c.run("join", "datasets", "--group", "bad:name"), exitUsage, "contains")
}
