package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// status --json that fails ends like send and recv --json: with an error
// object on stdout, and the exit code in it.
func TestCLIStatusJSONError(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "ch", "g")
	for _, args := range [][]string{
		{"status", "nope", "--json"},
		{"status", "nope", "--json", "--watch"},
	} {
		r := c.run(args...)
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s", quoteArgs(args), r.code, r)
		}
		var e struct {
			Event, Error string
			Exit         int
		}
		if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || e.Event != "error" || e.Exit != 1 ||
			!strings.Contains(e.Error, `no such channel "nope"`) || strings.TrimSpace(r.stderr) != "" {
			t.Errorf("%s: stdout %q, stderr %q; want only {\"event\":\"error\",\"error\":…,\"exit\":1} on stdout (%v)",
				quoteArgs(args), r.stdout, r.stderr, err)
		}
	}
}

// clean --stale with nothing to abort says so, and how long the most
// silent upload in progress has been silent.
func TestCLICleanStaleNothingToAbort(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "cs", "g")
	r := c.run("clean", "cs", "--stale", "1m")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "no upload has been silent for 1m0s; none is in progress") {
		t.Errorf("clean --stale with nothing in progress says:\n%s", r)
	}
	send := c.startPiped("send", "cs", "-", "--name", "pipe.log")
	send.stdin.Write([]byte("a line\n"))
	waitFor(t, 20*time.Second, "the upload to begin", func() bool { return len(liveIDs(t, c.srv, "cs")) == 1 })
	r = c.run("clean", "cs", "--stale", "1m")
	expectOK(t, r)
	if !regexp.MustCompile(`no upload has been silent for 1m0s; the one in progress \(pipe\.log, sender [^)]+\) has been silent for \d+s`).MatchString(r.stderr) {
		t.Errorf("clean --stale with an upload in progress says:\n%s", r)
	}
	send.stdin.Close()
	expectOK(t, send.wait())
}

// The FAILED column counts the files a group keeps for a retry; those
// dropped by clean --failed are shown apart.
func TestCLIStatusFailedColumn(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	recv := c.start("recv", "rt", "--group", "g", "--exec", "false", "--retries", "0")
	waitJoined(t, c.srv, "rt", "g", recv)
	expectOK(t, c.run("send", "rt", writeTemp(t, "a.txt", "A\n"), writeTemp(t, "b.txt", "B\n"), "--keep-failed", "1h"))
	waitFor(t, 20*time.Second, "both files to fail", func() bool { return count(recv.stderr(), "FAILED ") == 2 })
	recv.signal(syscall.SIGINT)
	recv.wait()
	row := regexp.MustCompile(`(?m)^g .*$`)
	if got := row.FindString(c.run("status", "rt").stdout); !strings.HasSuffix(got, "  2") {
		t.Errorf("before clean --failed the row of g is %q, want FAILED 2", got)
	}
	expectOK(t, c.run("clean", "rt", "--failed"))
	if got := row.FindString(c.run("status", "rt").stdout); !strings.HasSuffix(got, "  0 (+2 dropped)") {
		t.Errorf("after clean --failed the row of g is %q, want FAILED 0 (+2 dropped)", got)
	}
}

// status --watch on a terminal shorter than its output cuts each frame
// to the terminal's height, the header kept and the last line saying how
// many lines were cut: nothing scrolls.
func TestCLIStatusWatchFitsTheTerminal(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	var groups []string
	for i := range 40 {
		groups = append(groups, fmt.Sprintf("g%02d", i))
	}
	joinGroups(t, c.url, "tall", groups...) // 40 rows in the groups table
	term := newTerminal(t)                  // 30 rows
	cmd := c.command("status", "tall", "--watch", "--interval", "100ms")
	cmd.Env = environ(c.url, []string{"TERM=xterm"})
	cmd.Stdout = term.tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 20*time.Second, "three frames", func() bool { return strings.Count(term.screen(), "\x1b[H") >= 4 })
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("status --watch after SIGINT: %v", err)
	}
	time.Sleep(100 * time.Millisecond)                   // the terminal has read everything
	frames := strings.Split(term.screen(), "\x1b[H")[2:] // after the clear, and the first home
	for i, f := range frames[:len(frames)-1] {           // the last is cut by the signal
		lines := strings.Split(strings.TrimSuffix(f, "\x1b[K\x1b[J"), "\n")
		if len(lines) > 30 || !strings.HasPrefix(lines[0], "filecast status, ") ||
			!regexp.MustCompile(`^\.\.\. \d+ more lines: make the window taller`).MatchString(lines[len(lines)-1]) {
			t.Fatalf("frame %d has %d lines (want 30 at most), starting %q and ending %q (want the header, and how many lines were cut)",
				i, len(lines), lines[0], lines[len(lines)-1])
		}
	}
}
