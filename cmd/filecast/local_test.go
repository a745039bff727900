package main

// Tests of a receiver's own faults against real file systems: a tmpfs
// mounted by the test that fills, goes read-only and grows again; a
// command that does not exist until it does; files that keep failing
// (dead letters); groups whose members are gone.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// tmpfs mounts a tmpfs of size bytes for the test and returns its path.
// Mounting needs root (CI runs as root); elsewhere the test is skipped.
func tmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).Run(); err != nil {
		t.Skipf("cannot mount a tmpfs here (root needed): %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// remount changes the options of a tmpfs mounted by tmpfs.
func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, opts, err, out)
	}
}

// A disk that fills mid-file: the receiver keeps the file (not given up,
// not acknowledged), says what is wrong once, takes no other file, shows
// as blocked in status; once the disk has room it resumes from its partial
// file and every file arrives once, whole, with nothing left behind.
func TestCLIDiskFullBlocksAndResumes(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := tmpfs(t, 3<<20)
	src := t.TempDir()
	big, small := randomBytes(31, 5_000_000), []byte("small and after\n")
	writeFile(t, filepath.Join(src, "a-big.bin"), big, 0o644)
	writeFile(t, filepath.Join(src, "b-small.txt"), small, 0o644)
	recv := c.start("recv", "full", "--group", "g", "--member", "m", "--dir", out, "--until-eof")
	waitJoined(t, c.srv, "full", "g", recv)
	expectOK(t, c.run("send", "full", src, "--eof"))
	waitFor(t, 20*time.Second, "the receiver to say it is blocked", func() bool {
		return strings.Contains(recv.stderr(), "blocked: no space left on device under "+out)
	})
	st := c.status("full")
	if b := st.Groups[0].Members[0].Blocked; b == nil || b.Name != "a-big.bin" || !strings.Contains(b.Reason, "no space left") {
		t.Errorf("status does not show the member blocked on a-big.bin: %+v", st.Groups[0].Members)
	}
	if len(st.Groups[0].Failed) != 0 || len(st.Files) != 3 {
		t.Errorf("a full disk failed a file or released one: failed %+v, files %+v", st.Groups[0].Failed, st.Files)
	}
	time.Sleep(2 * time.Second) // retries meanwhile must neither repeat the message nor take the next file
	if n := count(recv.stderr(), "blocked:"); n != 1 {
		t.Errorf("said it is blocked %d times, want once:\n%s", n, recv.stderr())
	}
	if _, err := os.Stat(filepath.Join(out, "b-small.txt")); err == nil {
		t.Error("the blocked member took the next file")
	}
	remount(t, out, "size=20m")
	r := recv.wait()
	expectOK(t, r)
	if !strings.Contains(r.stderr, "unblocked after") {
		t.Errorf("the receiver did not say it went on:\n%s", r)
	}
	sameFile(t, filepath.Join(out, "a-big.bin"), big)
	sameFile(t, filepath.Join(out, "b-small.txt"), small)
	if got := tree(t, out); len(got) != 2 {
		t.Errorf("target holds %q, want the two files only", got)
	}
	for _, name := range []string{"a-big.bin", "b-small.txt"} {
		if n := count(r.stderr, "received "+name+" "); n != 1 {
			t.Errorf("%s received %d times, want once", name, n)
		}
	}
	expectReleased(t, c.srv, "full")
}

// --fail-fast: the first fault of the receiver's own side ends it with exit
// 5; the file stays in Redis for the next run, which gets it whole.
func TestCLIFailFastKeepsTheFile(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := tmpfs(t, 1<<20)
	data := randomBytes(32, 3<<20)
	path := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, path, data, 0o644)
	joinGroups(t, c.url, "ff", "g")
	expectOK(t, c.run("send", "ff", path, "--eof"))
	r := c.run("recv", "ff", "--group", "g", "--member", "m", "--dir", out, "--until-eof", "--fail-fast")
	expectFail(t, r, 5, "no space left on device under "+out)
	if st := c.status("ff"); len(st.Files) != 2 || len(st.Groups[0].Failed) != 0 {
		t.Errorf("after --fail-fast: files %+v, failed %+v; want the file kept, not failed", st.Files, st.Groups[0].Failed)
	}
	remount(t, out, "size=10m")
	expectOK(t, c.run("recv", "ff", "--group", "g", "--member", "m", "--dir", out, "--until-eof"))
	sameFile(t, filepath.Join(out, "big.bin"), data)
	if parts := partFiles(t, out); len(parts) != 0 {
		t.Errorf("partial files left: %q", parts)
	}
	expectReleased(t, c.srv, "ff")
}

// A target that cannot be written at start is refused at once (exit 2);
// one that turns read-only while running blocks the receiver until it is
// writable again.
func TestCLIReadOnlyTarget(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := tmpfs(t, 10<<20)
	remount(t, out, "ro")
	expectFail(t, c.run("recv", "ro", "--group", "g", "--dir", out), 2, "cannot write to the target directory", "read-only file system")
	remount(t, out, "rw")

	recv := c.start("recv", "ro", "--group", "g", "--dir", out, "--until-eof")
	waitJoined(t, c.srv, "ro", "g", recv)
	expectOK(t, c.run("send", "ro", writeTemp(t, "one.txt", "first\n")))
	waitFor(t, 20*time.Second, "the first file", func() bool { _, err := os.Stat(filepath.Join(out, "one.txt")); return err == nil })
	remount(t, out, "ro")
	expectOK(t, c.run("send", "ro", writeTemp(t, "two.txt", "second\n"), "--eof"))
	waitFor(t, 20*time.Second, "the receiver to say the target is read-only", func() bool {
		return strings.Contains(recv.stderr(), "blocked: read-only file system under "+out)
	})
	remount(t, out, "rw")
	expectOK(t, recv.wait())
	sameFile(t, filepath.Join(out, "two.txt"), []byte("second\n"))
	expectReleased(t, c.srv, "ro")
}

// writeTemp writes a file named name in a new directory and returns its path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	writeFile(t, p, []byte(content), 0o644)
	return p
}

// An --exec command that does not exist blocks the receiver (the file is
// kept, not failed) until it does; then the file is handled once.
func TestCLIExecCommandMissing(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	bin := t.TempDir()
	handler := filepath.Join(bin, "handler.sh")
	out := filepath.Join(t.TempDir(), "got")
	recv := c.start("recv", "ex", "--group", "g", "--exec", handler+` "$FILECAST_NAME"`, "--until-eof")
	waitJoined(t, c.srv, "ex", "g", recv)
	expectOK(t, c.run("send", "ex", writeTemp(t, "job.txt", "the job\n"), "--eof"))
	waitFor(t, 20*time.Second, "the receiver to say the command cannot run", func() bool {
		return strings.Contains(recv.stderr(), "blocked: the command") && strings.Contains(recv.stderr(), "cannot run")
	})
	if st := c.status("ex"); len(st.Groups[0].Failed) != 0 {
		t.Errorf("a missing command failed the file: %+v", st.Groups[0].Failed)
	}
	script := "#!/bin/sh\ncat >> " + out + "\necho \"handled $1\" >> " + out + "\n"
	if err := os.WriteFile(handler, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	expectOK(t, recv.wait())
	if b, _ := os.ReadFile(out); string(b) != "the job\nhandled job.txt\n" {
		t.Errorf("the command got %q, want the file once", b)
	}
	expectReleased(t, c.srv, "ex")
}

// A file whose handler keeps failing is kept for its group (a dead
// letter): status lists it, filecast retry delivers it again, and one not
// retried is dropped at the end of the channel's retention, which status
// records.
func TestCLIDeadLettersRetriedAndExpired(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir := t.TempDir()
	flag := filepath.Join(dir, "works")
	// The command fails until the flag file exists.
	cmd := `test -e ` + flag + ` && cat > ` + filepath.Join(dir, `"$FILECAST_NAME"`)
	recv := c.start("recv", "dl", "--group", "g", "--exec", cmd, "--retries", "0")
	waitJoined(t, c.srv, "dl", "g", recv)
	expectOK(t, c.run("send", "dl", writeTemp(t, "a.txt", "A\n"), "--keep-failed", "1h"))
	waitFor(t, 20*time.Second, "a.txt to fail", func() bool { return strings.Contains(recv.stderr(), "FAILED a.txt") })
	st := c.status("dl")
	if f := st.Groups[0].Failed; len(f) != 1 || f[0].Name != "a.txt" || f[0].State != "kept" || len(st.Files) != 1 {
		t.Fatalf("after the failure: failed %+v, files %+v; want a.txt kept", f, st.Files)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.run("retry", "dl", "--group", "g", "a.txt")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "delivering a.txt to group g again") {
		t.Errorf("retry does not say what it does:\n%s", r)
	}
	waitFor(t, 20*time.Second, "a.txt to arrive on retry", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "a.txt"))
		return string(b) == "A\n"
	})
	waitFor(t, 20*time.Second, "a.txt to be released", func() bool { return len(liveIDs(t, c.srv, "dl")) == 0 })
	expectFail(t, c.run("retry", "dl", "--group", "g", "nosuch.txt"), 1, "keeps no failed file", "nosuch.txt")

	// A second file fails while the flag is gone, with a retention of 2 s:
	// the receiver drops it when the retention ends.
	os.Remove(flag)
	expectOK(t, c.run("send", "dl", writeTemp(t, "b.txt", "B\n"), "--keep-failed", "2s"))
	waitFor(t, 20*time.Second, "b.txt to fail", func() bool { return strings.Contains(recv.stderr(), "FAILED b.txt") })
	waitFor(t, 20*time.Second, "b.txt to be dropped at the end of its retention", func() bool {
		return len(liveIDs(t, c.srv, "dl")) == 0
	})
	for _, f := range c.status("dl").Groups[0].Failed {
		if f.Name == "b.txt" && (f.State != "dropped" || f.DroppedAt.IsZero()) {
			t.Errorf("status of b.txt after its retention: %+v, want dropped, with when", f)
		}
	}
	expectReleased(t, c.srv, "dl")
}

// A group whose members are gone holds the budget: a waiting sender says
// who holds it (at -v), and a channel with --group-expiry drops the group
// once its members have been gone that long, which status records.
func TestCLIDeadGroupExpires(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	// Group "gone" had a member once; group "live" is receiving.
	gone := c.start("recv", "dg", "--group", "gone", "--stdout", "--lease", "2s")
	waitJoined(t, c.srv, "dg", "gone", gone)
	gone.signal(syscall.SIGTERM)
	gone.wait()
	out := filepath.Join(t.TempDir(), "out")
	live := c.start("recv", "dg", "--group", "live", "--dir", out)
	waitJoined(t, c.srv, "dg", "live", live)
	data := randomBytes(33, 6<<20)
	path := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, path, data, 0o644)
	// 2 MiB of budget: the sender must wait for "gone", which never reads.
	send := c.start("send", "dg", path, "--max-bytes", "2MiB", "--group-expiry", "8s", "-v", "--lease", "2s")
	waitFor(t, 30*time.Second, "the sender to say who holds the budget", func() bool {
		return strings.Contains(send.stderr(), "held for group gone, whose members have been gone")
	})
	if !strings.Contains(send.stderr(), "--drop-group gone") {
		t.Errorf("the sender does not say what to do:\n%s", send.stderr())
	}
	expectOK(t, send.wait())
	waitFor(t, 20*time.Second, "big.bin at the live group", func() bool {
		b, _ := os.ReadFile(filepath.Join(out, "big.bin"))
		return len(b) == len(data)
	})
	st := c.status("dg")
	dropped := false
	for _, d := range st.Dropped {
		if d.Name == "gone" && strings.Contains(d.Reason, "group expiry") {
			dropped = true
		}
	}
	if !dropped || len(st.Groups) != 1 {
		t.Errorf("status: dropped %+v, groups %d; want gone dropped by group expiry", st.Dropped, len(st.Groups))
	}
}

// A --dir receiver removes at start the partial files of its own member
// whose files are no longer in Redis, says so, and touches nothing else.
func TestCLILeftoversRemovedAtStart(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := t.TempDir()
	joinGroups(t, c.url, "lo", "g")
	// A file still in Redis, but not for this group (it was dropped and
	// joined again since), and one that still awaits it.
	plantFile(t, c.srv, "lo", "00000000000000aa", "other.bin", []byte("x"), []string{"another"})
	plantFile(t, c.srv, "lo", "00000000000000bb", "awaited.bin", []byte("x"), []string{"g", "another"})
	mine := filepath.Join(out, "sub", ".filecast-0123456789abcdef-m.part")
	notOurs := filepath.Join(out, ".filecast-00000000000000aa-m.part")
	awaited := filepath.Join(out, ".filecast-00000000000000bb-m.part")
	theirs := filepath.Join(out, ".filecast-0123456789abcdef-other.part")
	unrelated := filepath.Join(out, ".filecast-notes")
	for _, p := range []string{mine, notOurs, awaited, theirs, unrelated} {
		writeFile(t, p, []byte("x"), 0o644)
	}
	recv := c.start("recv", "lo", "--group", "g", "--member", "m", "--dir", out)
	waitFor(t, 20*time.Second, "the leftover to be removed", func() bool {
		return strings.Contains(recv.stderr(), "removed "+mine+", the partial file of a file this group no longer awaits")
	})
	waitFor(t, 20*time.Second, "the leftover of a file not for this group to be removed", func() bool {
		return strings.Contains(recv.stderr(), "removed "+notOurs)
	})
	if _, err := os.Stat(mine); err == nil {
		t.Error("the member's leftover is still there")
	}
	for _, p := range []string{theirs, unrelated, awaited} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, not this member's, was touched: %v", p, err)
		}
	}
}

// While Redis cannot be reached, a receiver says so once, and again once
// it is back.
func TestCLISaysConnectionLostAndBack(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{AOF: true})
	recv := c.start("recv", "cl", "--group", "g", "--stdout", "--lease", "2s")
	waitJoined(t, c.srv, "cl", "g", recv)
	c.srv.Kill()
	time.Sleep(1500 * time.Millisecond)
	c.srv.Restart()
	waitFor(t, 30*time.Second, "the receiver to say the connection is back", func() bool {
		return strings.Contains(recv.stderr(), "is back after")
	})
	if n := count(recv.stderr(), "lost the connection to"); n != 1 {
		t.Errorf("said %d times that the connection was lost, want once:\n%s", n, recv.stderr())
	}
	if !strings.Contains(recv.stderr(), "retrying for up to 1m0s") {
		t.Errorf("does not say how long it retries:\n%s", recv.stderr())
	}
}
