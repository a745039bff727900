package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// A send of several files ends with a total line; a rerun of an
// interrupted one counts what it skipped there too.
func TestCLISendTotalLine(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.small"), randomBytes(51, 10<<10), 0o644)
	writeFile(t, filepath.Join(src, "b.big"), randomBytes(52, 12<<20), 0o644)
	writeFile(t, filepath.Join(src, "c.small"), randomBytes(53, 3<<10), 0o644)
	joinGroups(t, c.url, "tot", "g")

	total := regexp.MustCompile(`(?m)^sent (\d+) files?, [0-9.]+ [KMG]?i?B in [0-9.]+m?s, [0-9.]+ [KMG]?i?B/s(; (\d+) skipped)?$`)
	r := c.run("send", "tot", src)
	expectOK(t, r)
	if m := total.FindStringSubmatch(r.stderr); m == nil || m[1] != "3" || m[2] != "" {
		t.Errorf("no total line for 3 files sent, none skipped:\n%s", r)
	}
	r = c.run("send", "tot", filepath.Join(src, "a.small"))
	expectOK(t, r)
	if total.MatchString(r.stderr) {
		t.Errorf("a send of one file printed a total line:\n%s", r)
	}

	// Killed in b.big, which fills the budget; the rerun skips a.small.
	args := []string{"send", "tot2", src, "--max-bytes", "4MiB", "--lease", "1m"}
	p := startBlocked(t, c, "tot2", "b.big", args...)
	p.signal(syscall.SIGKILL)
	p.wait()
	c.start("recv", "tot2", "--group", "g", "--dir", filepath.Join(t.TempDir(), "out"))
	r = c.run(args...)
	expectOK(t, r)
	if m := total.FindStringSubmatch(r.stderr); m == nil || m[1] != "2" || m[3] != "1" {
		t.Errorf("the rerun's total line does not say 2 files sent, 1 skipped:\n%s", r)
	}
}

// A sender waiting on a full budget says so, and why, at the default
// verbosity (the library tells after 3 seconds).
func TestCLISendSaysItWaitsForBudget(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	path := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, path, randomBytes(54, 16<<20), 0o644)
	p, _ := startBlockedSend(t, c, "wait", path)
	waitFor(t, 20*time.Second, "the sender to say it waits for budget", func() bool {
		return strings.Contains(p.stderr(), "big.bin waits for budget")
	})
	if line := p.stderr(); !strings.Contains(line, "held for group g") {
		t.Errorf("the wait message does not say who holds the budget:\n%s", line)
	}
	p.signal(syscall.SIGKILL)
	p.wait()
}
