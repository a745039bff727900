package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// A program missing from PATH blocks the receiver only when the command is
// that one program: a command with a fallback runs (sh decides), and a
// script that itself exits 127 is a handler failure, not a block.
func TestCLIExecMissingWordIsShellsBusiness(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := writeTemp(t, "data.txt", "twelve bytes")

	recv := c.start("recv", "fb", "--group", "g", "--exec", "nosuchcmd 2>/dev/null || wc -c", "--until-eof")
	waitJoined(t, c.srv, "fb", "g", recv)
	expectOK(t, c.run("send", "fb", src, "--eof"))
	r := recv.wait()
	expectOK(t, r)
	if strings.Contains(r.stderr, "blocked") || strings.TrimSpace(r.stdout) != "12" {
		t.Errorf("the fallback should have counted 12 bytes, unblocked:\n%s", r)
	}

	recv = c.start("recv", "own", "--group", "g", "--exec", "cat >/dev/null; exit 127", "--retries", "0", "--until-eof")
	waitJoined(t, c.srv, "own", "g", recv)
	expectOK(t, c.run("send", "own", src, "--eof"))
	r = recv.wait()
	expectFail(t, r, 1)
	if strings.Contains(r.stderr, "blocked") || !strings.Contains(r.stderr, "FAILED data.txt after 1 attempt(s):") ||
		!strings.Contains(r.stderr, "exited with status 127") {
		t.Errorf("a command exiting 127 itself should fail the file, not block:\n%s", r)
	}
}

// FILECAST_SIZE is the size the sender expects while the file is still
// uploading: with a budget far smaller than the file, the command starts
// long before the upload ends.
func TestCLIExecSizeOfFileStillUploading(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, randomBytes(7, 2<<20), 0o644)
	recv := c.start("recv", "sz", "--group", "g", "--exec", `echo "size=$FILECAST_SIZE"; cat >/dev/null`, "--until-eof")
	waitJoined(t, c.srv, "sz", "g", recv)
	expectOK(t, c.run("send", "sz", src, "--eof", "--max-bytes", "256KiB", "--chunk-size", "64KiB"))
	r := recv.wait()
	expectOK(t, r)
	if got := strings.TrimSpace(r.stdout); got != "size=2097152" {
		t.Errorf("the command said %q, want size=2097152 (the expected size)\n%s", got, r)
	}
}

// Joining a group that did not exist says it created it and names the
// channel's other groups (a typo would hold every new file); joining an
// existing group just says joined. --json says it as "new".
func TestCLIRecvSaysNewGroup(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "configs", "web-vm")
	p := c.start("recv", "configs", "--group", "web-mv", "--member", "m1", "--stdout")
	want := "created group web-mv on channel configs as member m1 — it gets the files sent from now on; existing groups: web-vm; waiting for files"
	waitFor(t, 20*time.Second, "the receiver to say it created the group", func() bool {
		if p.exited() {
			t.Fatalf("the receiver exited:\n%s", p.wait())
		}
		return strings.Contains(p.stderr(), want)
	})
	p.signal(syscall.SIGINT)
	p.wait()

	p = c.start("recv", "configs", "--group", "web-mv", "--member", "m1", "--stdout")
	waitFor(t, 20*time.Second, "the receiver to say it joined", func() bool {
		return strings.Contains(p.stderr(), "joined group web-mv on channel configs as member m1; waiting for files")
	})
	p.signal(syscall.SIGINT)
	if r := p.wait(); strings.Contains(r.stderr, "created") {
		t.Errorf("joining an existing group says created:\n%s", r)
	}

	p = c.start("recv", "configs", "--group", "db", "--exec", "cat >/dev/null", "--json")
	waitFor(t, 20*time.Second, "the joined event", func() bool { b, _ := os.ReadFile(p.out); return strings.Contains(string(b), `"joined"`) })
	p.signal(syscall.SIGINT)
	objs := jsonLines(t, "recv --json", p.wait().stdout)
	j := find(objs, "event", "joined")
	if j == nil || j["new"] != true || fmt.Sprint(j["existing_groups"]) != "[web-mv web-vm]" {
		t.Errorf("joined event %v, want new true and existing_groups [web-mv web-vm]", j)
	}
}

// Ctrl-C on a blocked receiver says the file stays in Redis, not that it
// was unblocked; on an idle one, just that it stopped. Exit 130 both.
func TestCLIRecvInterruptWords(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	recv := c.start("recv", "ci", "--group", "g", "--exec", filepath.Join(t.TempDir(), "absent.sh"))
	waitJoined(t, c.srv, "ci", "g", recv)
	expectOK(t, c.run("send", "ci", writeTemp(t, "big1.bin", "data\n")))
	waitFor(t, 20*time.Second, "the receiver to block", func() bool { return strings.Contains(recv.stderr(), "blocked: ") })
	recv.signal(syscall.SIGINT)
	r := recv.wait()
	expectFail(t, r, 130, "stopped; 1 file(s) in progress stay in Redis for group g")
	if strings.Contains(r.stderr, "unblocked") {
		t.Errorf("an interrupted blocked receiver says unblocked:\n%s", r)
	}

	recv = c.start("recv", "ci", "--group", "idle", "--stdout")
	waitJoined(t, c.srv, "ci", "idle", recv)
	waitFor(t, 20*time.Second, "the joined line", func() bool { return strings.Contains(recv.stderr(), "waiting for files") })
	recv.signal(syscall.SIGTERM)
	r = recv.wait()
	if line := expectFail(t, r, 130, "stopped"); line != "filecast: stopped" {
		t.Errorf("an idle receiver stopped says %q, want \"filecast: stopped\"", line)
	}
}

// recv --dir --decompress says what the file was written as, and its size
// decoded.
func TestCLIRecvDecompressSaysWrittenAs(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	var plain bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&plain, "%d\n", i)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	src := filepath.Join(t.TempDir(), "nums.txt.gz")
	writeFile(t, src, gz.Bytes(), 0o644)
	out := t.TempDir()
	joinGroups(t, c.url, "dz", "g", "j")
	expectOK(t, c.run("send", "dz", src, "--eof"))
	r := c.run("recv", "dz", "--group", "g", "--dir", out, "--decompress", "--until-eof")
	expectOK(t, r)
	sameFile(t, filepath.Join(out, "nums.txt"), plain.Bytes())
	want := fmt.Sprintf("received nums.txt.gz → nums.txt  %s (%s decoded)\n", human(int64(gz.Len())), human(int64(plain.Len())))
	if !strings.Contains(r.stderr, want) {
		t.Errorf("want %q in:\n%s", want, r)
	}

	r = c.run("recv", "dz", "--group", "j", "--dir", t.TempDir(), "--decompress", "--until-eof", "--json")
	expectOK(t, r)
	o := find(jsonLines(t, "recv --json", r.stdout), "event", "file")
	if o == nil || o["decoded_name"] != "nums.txt" || o["decoded_size"] != float64(plain.Len()) || o["resumed"] != false {
		t.Errorf("file outcome %v, want decoded_name nums.txt, decoded_size %d, resumed false", o, plain.Len())
	}
}
