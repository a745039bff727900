package main

import (
	"path/filepath"
	"strings"
	"testing"

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
