package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// jsonLines decodes every line of s as a JSON object, failing the test on
// any line that is not one.
func jsonLines(t *testing.T, what, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: line %q is not a JSON object: %v\nall of it:\n%s", what, l, err, s)
		}
		out = append(out, m)
	}
	return out
}

// find returns the first object whose key has value.
func find(objs []map[string]any, key string, value any) map[string]any {
	for _, m := range objs {
		if m[key] == value {
			return m
		}
	}
	return nil
}

// expectJSONExit checks that the last object is the error report of an
// exit with code.
func expectJSONExit(t *testing.T, what string, objs []map[string]any, code int) {
	t.Helper()
	last := objs[len(objs)-1]
	if last["event"] != "error" || last["exit"] != float64(code) || last["error"] == "" {
		t.Errorf("%s: last line %v, want {\"event\":\"error\",\"error\":…,\"exit\":%d}", what, last, code)
	}
}

// With --json every line of the stream the JSON goes to is JSON: outcomes,
// events, log records and the final report of an interruption; an --exec
// command's stdout goes to stderr.
func TestCLIJSONStreamIsAllJSON(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, src, []byte("data\n"), 0o644)

	// --exec: JSON on stdout. The command fails, so the library logs a
	// warning before it retries.
	p := c.start("recv", "js", "--group", "x", "--member", "m1", "--json", "--retries", "1",
		"--exec", "cat >/dev/null; echo to-stdout; echo to-stderr >&2; exit 1")
	waitJoined(t, c.srv, "js", "x", p)
	expectOK(t, c.run("send", "js", src))
	waitFor(t, 20*time.Second, "the failed outcome", func() bool {
		b, _ := os.ReadFile(p.out)
		return strings.Contains(string(b), `"ok":false`)
	})
	p.signal(syscall.SIGINT)
	r := p.wait()
	if r.code != 130 {
		t.Fatalf("interrupted recv --exec --json: %s", r)
	}
	objs := jsonLines(t, "recv --exec --json stdout", r.stdout)
	if j := find(objs, "event", "joined"); j == nil || j["channel"] != "js" || j["group"] != "x" || j["member"] != "m1" {
		t.Errorf("no joined event with channel, group and member: %v", objs)
	}
	if find(objs, "level", "WARN") == nil {
		t.Errorf("no log record (level WARN) among %v", objs)
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, m := range objs {
		if s, _ := m["time"].(string); !stamp.MatchString(s) {
			t.Errorf("%v: no \"time\" in RFC 3339 with milliseconds, UTC", m)
		}
	}
	if o := find(objs, "name", "f.txt"); o == nil || o["event"] != "file" {
		t.Errorf("the outcome of f.txt is not an \"event\":\"file\" object: %v", o)
	}
	if o := find(objs, "name", "f.txt"); o == nil || o["ok"] != false {
		t.Errorf("no failed outcome for f.txt among %v", objs)
	}
	expectJSONExit(t, "recv --exec --json", objs, 130)
	if !strings.Contains(r.stderr, "to-stdout") || !strings.Contains(r.stderr, "to-stderr") {
		t.Errorf("the command's output should be on stderr, got %q", r.stderr)
	}

	// --stdout: the files' bytes on stdout, all JSON on stderr.
	p = c.start("recv", "js", "--group", "s", "--stdout", "--json")
	waitJoined(t, c.srv, "js", "s", p)
	expectOK(t, c.run("send", "js", src))
	waitFor(t, 20*time.Second, "the outcome", func() bool { return strings.Contains(p.stderr(), `"ok":true`) })
	p.signal(syscall.SIGINT)
	r = p.wait()
	if r.code != 130 || r.stdout != "data\n" {
		t.Fatalf("interrupted recv --stdout --json: stdout %q\n%s", r.stdout, r)
	}
	objs = jsonLines(t, "recv --stdout --json stderr", r.stderr)
	if find(objs, "event", "joined") == nil {
		t.Errorf("no joined event: %v", objs)
	}
	expectJSONExit(t, "recv --stdout --json", objs, 130)
	if last := objs[len(objs)-1]; fmt.Sprint(last["error"]) != "stopped" {
		t.Errorf("last line %v does not say it stopped (idle, nothing in progress)", last)
	}

	// send --json: a failure is reported as JSON on stdout too.
	r = c.run("send", "js", filepath.Join(t.TempDir(), "missing"), "--json")
	if r.code != 2 || r.stderr != "" {
		t.Fatalf("send --json of a missing file: want exit 2 and nothing on stderr\n%s", r)
	}
	expectJSONExit(t, "send --json", jsonLines(t, "send --json stdout", r.stdout), 2)

	// A usage error found in the arguments is JSON too.
	r = c.run("recv", "js", "extra", "--group", "g", "--stdout", "--json")
	if r.code != 2 {
		t.Fatalf("recv with two channels: %s", r)
	}
	expectJSONExit(t, "recv --stdout --json usage", jsonLines(t, "recv --stdout --json usage stderr", r.stderr), 2)
}

// --until-eof, both orders: a receiver started before tonight's batch
// waits through the mark its group passed yesterday, says on joining that
// it waits, and exits at tonight's mark; one started after the sender
// finished handles the batch and exits.
func TestCLIUntilEOFBothOrders(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := t.TempDir()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "day1.txt"), []byte("one\n"), 0o644)
	writeFile(t, filepath.Join(src, "day2.txt"), []byte("two\n"), 0o644)
	writeFile(t, filepath.Join(src, "day3.txt"), []byte("three\n"), 0o644)
	args := []string{"recv", "nightly", "--group", "g", "--member", "m1", "--dir", out, "--until-eof"}

	// Day 1: the sender first, then the receiver (with -v: it names Redis).
	joinGroups(t, c.url, "nightly", "g")
	expectOK(t, c.run("send", "nightly", filepath.Join(src, "day1.txt"), "--eof"))
	r := c.run(append(args, "-v")...)
	expectOK(t, r)
	sameFile(t, filepath.Join(out, "day1.txt"), []byte("one\n"))
	if !strings.Contains(r.stderr, "joined group g on channel nightly as member m1; waiting for files") ||
		!regexp.MustCompile(`(?m)^redis: (standalone server|Redis Cluster of \d+ primaries).* \((redis|valkey) `).MatchString(r.stderr) {
		t.Errorf("recv -v does not say it joined and what Redis is:\n%s", r.stderr)
	}

	// Day 2: the receiver first. It must not stop at day 1's mark.
	p := c.start(args...)
	waitFor(t, 20*time.Second, "the receiver to say it joined", func() bool {
		if p.exited() {
			t.Fatalf("the receiver exited before day 2 was sent (at day 1's mark):\n%s", p.wait())
		}
		return strings.Contains(p.stderr(), "joined group g on channel nightly as member m1; waiting for files up to the next end-of-batch mark")
	})
	time.Sleep(time.Second) // it would have stopped at once
	if p.exited() {
		t.Fatalf("the receiver exited before day 2 was sent (at day 1's mark):\n%s", p.wait())
	}
	expectOK(t, c.run("send", "nightly", filepath.Join(src, "day2.txt"), "--eof"))
	expectOK(t, p.wait())
	sameFile(t, filepath.Join(out, "day2.txt"), []byte("two\n"))
	if strings.Contains(p.stderr(), "redis:") {
		t.Errorf("recv without -v names Redis:\n%s", p.stderr())
	}

	// Day 3: the sender first again.
	expectOK(t, c.run("send", "nightly", filepath.Join(src, "day3.txt"), "--eof"))
	expectOK(t, c.run(args...))
	sameFile(t, filepath.Join(out, "day3.txt"), []byte("three\n"))
}

// --dir creates a missing directory and says so; with --json as an event.
func TestCLIDirCreatedSaysSo(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, src, []byte("x\n"), 0o644)
	joinGroups(t, c.url, "mk", "text", "json")
	expectOK(t, c.run("send", "mk", src, "--eof"))

	dir := filepath.Join(t.TempDir(), "new", "dir")
	r := c.run("recv", "mk", "--group", "text", "--dir", dir, "--until-eof")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "created the target directory "+dir) {
		t.Errorf("recv --dir with a missing directory does not say it created it:\n%s", r.stderr)
	}
	sameFile(t, filepath.Join(dir, "f.txt"), []byte("x\n"))

	dir = filepath.Join(t.TempDir(), "other")
	r = c.run("recv", "mk", "--group", "json", "--dir", dir, "--until-eof", "--json")
	expectOK(t, r)
	objs := jsonLines(t, "recv --dir --json stdout", r.stdout)
	if n := find(objs, "event", "notice"); n == nil || n["message"] != "created the target directory "+dir {
		t.Errorf("no notice that %s was created among %v", dir, objs)
	}
	if find(objs, "event", "end_of_batch") == nil {
		t.Errorf("no end_of_batch event among %v", objs)
	}
	if r.stderr != "" {
		t.Errorf("recv --dir --json wrote to stderr: %q", r.stderr)
	}
}

// gone reports whether process pid has exited (a zombie counts as gone).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state …: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// An --exec command does not outlive its receiver: neither a receiver
// killed with SIGKILL nor one interrupted leaves it (or what it started)
// running.
func TestCLIExecDiesWithReceiver(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, src, []byte("x\n"), 0o644)
	for i, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		pidFile := filepath.Join(t.TempDir(), "pid")
		// sleep runs as a grandchild of the receiver's child (sh), so a
		// signal to sh alone would leave it running.
		cmd := fmt.Sprintf("cat >/dev/null; sh -c 'echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 300'", pidFile, pidFile, pidFile)
		group := "g" + strconv.Itoa(i)
		p := c.start("recv", "ex", "--group", group, "--exec", cmd)
		waitJoined(t, c.srv, "ex", group, p)
		expectOK(t, c.run("send", "ex", src))
		var pid int
		waitFor(t, 20*time.Second, "the command to start sleep", func() bool {
			b, err := os.ReadFile(pidFile)
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil && pid > 0
		})
		if gone(pid) {
			t.Fatalf("sleep %d is not running", pid)
		}
		t.Cleanup(func() { // a failed test leaves no sleep behind
			if !gone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		p.signal(sig)
		r := p.wait()
		if sig == syscall.SIGINT && r.code != 130 {
			t.Errorf("interrupted receiver: %s", r)
		}
		// Generous: the point is that it goes, not how fast.
		deadline := time.Now().Add(10 * time.Second)
		for !gone(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !gone(pid) {
			t.Errorf("after %v to the receiver, its command's sleep %d still runs", sig, pid)
		}
	}
}
