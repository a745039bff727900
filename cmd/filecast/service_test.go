package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// stopBound is how long recv and send --follow may take to exit after
// SIGTERM, as docs/OPERATIONS.md states it (the units' TimeoutStopSec is
// 30 s, with room for a slow Redis). It is a bound on a hang, not a speed:
// a stop takes milliseconds, 5 s when an --exec command ignores SIGTERM,
// and a follower may read a deleted log to its end for 10 s.
const stopBound = 15 * time.Second

// sigterm stops p with SIGTERM and checks that it exits with code 130
// within stopBound, its one error line containing want. It returns how
// long the stop took.
func sigterm(t *testing.T, p *proc, want string) time.Duration {
	t.Helper()
	start := time.Now()
	p.signal(syscall.SIGTERM)
	r := p.waitUpTo(stopBound)
	took := time.Since(start)
	expectFail(t, r, 130, want)
	t.Logf("filecast %s stopped %v after SIGTERM", quoteArgs(p.args), took.Round(time.Millisecond))
	return took
}

// A receiver stopped with SIGTERM in the middle of a file (as systemctl
// stop does) exits 130 within stopBound and keeps the partial file; the
// receiver started again with the same command completes the file, byte
// for byte.
func TestServiceRecvStopsMidTransfer(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	data := randomBytes(13, 6<<20)
	joinGroups(t, c.url, "svc", "g")
	out := t.TempDir()
	args := []string{"recv", "svc", "--group", "g", "--member", "web-01", "--dir", out}
	recv := c.start(args...)
	send := c.startPiped("send", "svc", "-", "--name", "big.bin", "--flush", "10ms")
	half := len(data) / 2
	if _, err := send.stdin.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	partSize := func() int64 {
		var size int64
		for _, p := range partFiles(t, out) {
			if st, err := os.Stat(filepath.Join(out, p)); err == nil {
				size = max(size, st.Size())
			}
		}
		return size
	}
	waitFor(t, 20*time.Second, "the receiver to write the first MiB", func() bool { return partSize() >= 1<<20 })

	sigterm(t, recv, "stopped; 1 file(s) in progress stay in Redis for group g")
	if len(partFiles(t, out)) != 1 {
		t.Fatalf("after SIGTERM the target holds %q, want the one partial file kept for the restart", tree(t, out))
	}

	recv = c.start(args...)
	if _, err := send.stdin.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	send.stdin.Close()
	expectOK(t, send.wait())
	waitFor(t, 30*time.Second, "big.bin in the target directory", func() bool {
		_, err := os.Stat(filepath.Join(out, "big.bin"))
		return err == nil
	})
	sameFile(t, filepath.Join(out, "big.bin"), data)
	if left := partFiles(t, out); len(left) != 0 {
		t.Errorf("partial files left after the file completed: %q", left)
	}
	// It says what it did not move again.
	waitFor(t, 10*time.Second, "the received line", func() bool { return strings.Contains(recv.stderr(), "received big.bin") })
	if !regexp.MustCompile(`received big\.bin  6\.0 MiB \(resumed: [0-9.]+ [KM]iB moved\)`).MatchString(recv.stderr()) {
		t.Errorf("the restarted receiver does not say it resumed big.bin:\n%s", recv.stderr())
	}
	sigterm(t, recv, "stopped") // idle, as most stops find it
}

// A follower stopped with SIGTERM in the middle of a growing log exits 130
// within stopBound; started again, it continues the same file where it
// stopped, and every line reaches the receiver once, in order.
func TestServiceFollowStopsMidFile(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir, out := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "app.log")
	log := newAppLog(t, path)
	recv := c.start("recv", "svf", "--group", "g", "--dir", out)
	waitJoined(t, c.srv, "svf", "g", recv)
	args := []string{"send", "svf", "--follow", path, "--flush", "20ms", "--linger", "200ms"}
	follow := c.start(args...)
	waitFor(t, 20*time.Second, "the follower to start", func() bool { return strings.Contains(follow.stderr(), "following ") })
	log.lines(200, time.Millisecond)

	sigterm(t, follow, "stopped")
	log.lines(100, 0) // while no follower runs

	follow = c.start(args...)
	waitFor(t, 20*time.Second, "the follower to continue", func() bool { return strings.Contains(follow.stderr(), "continuing ") })
	log.lines(100, time.Millisecond)
	log.rotate("rename") // completes the generation
	waitFor(t, 30*time.Second, "every line in the receiver's directory", func() bool {
		lines, _ := generations(t, out, "app.log")
		return len(lines) >= log.next
	})
	time.Sleep(300 * time.Millisecond) // a duplicate would show now
	lines, _ := generations(t, out, "app.log")
	checkLines(t, lines, log.next)
	sigterm(t, follow, "stopped")
}

// A receiver whose --exec command ignores SIGTERM still stops within
// stopBound: the command is killed 5 s after it was asked to stop. The
// file stays in Redis and the restarted receiver delivers it whole.
func TestServiceRecvStopsStubbornExec(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	data := randomBytes(14, 3<<20)
	joinGroups(t, c.url, "sve", "g")
	got := filepath.Join(t.TempDir(), "got")
	stubborn := "trap '' TERM; cat > " + got + "; sleep 8"
	recv := c.start("recv", "sve", "--group", "g", "--member", "m1", "--exec", stubborn)
	send := c.startPiped("send", "sve", "-", "--name", "big.bin", "--flush", "10ms")
	if _, err := send.stdin.Write(data[:1<<20]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the command to get the first bytes", func() bool {
		st, err := os.Stat(got)
		return err == nil && st.Size() > 0
	})
	if took := sigterm(t, recv, "stopped; 1 file(s) in progress"); took < 4*time.Second {
		t.Errorf("stopped after %v: the command that ignores SIGTERM was not given its 5 s", took)
	}

	recv = c.start("recv", "sve", "--group", "g", "--member", "m1", "--exec", "cat > "+got)
	if _, err := send.stdin.Write(data[1<<20:]); err != nil {
		t.Fatal(err)
	}
	send.stdin.Close()
	expectOK(t, send.wait())
	waitFor(t, 30*time.Second, "the whole file through the command", func() bool {
		st, err := os.Stat(got)
		return err == nil && st.Size() == int64(len(data)) && strings.Contains(recv.stderr(), "received big.bin")
	})
	sameFile(t, got, data)
	sigterm(t, recv, "stopped")
}
