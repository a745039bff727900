package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/filecast/filecast/internal/redistest"
)

// terminal is a pseudo-terminal a process writes its stderr to, as a
// person's would: everything written to it is kept for the test.
type terminal struct {
	tty, master *os.File
	mu          sync.Mutex
	out         bytes.Buffer
	done        chan struct{}
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 30, Cols: 140}); err != nil {
		t.Fatal(err)
	}
	term := &terminal{tty: tty, master: master, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close(); master.Close() })
	return term
}

// start runs filecast with its stderr on the terminal and stdin from a pipe.
func (term *terminal) start(t *testing.T, c *cli, args ...string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := c.command(args...)
	cmd.Env = environ(c.url, []string{"TERM=xterm"})
	cmd.Stderr = term.tty
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdin
}

// screen returns what the terminal has shown so far.
func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// trickle writes n bytes to w over about d, then closes it.
func trickle(w io.WriteCloser, n int, d time.Duration) {
	const pieces = 40
	data := randomBytes(7, n)
	for i := range pieces {
		w.Write(data[i*n/pieces : (i+1)*n/pieces])
		time.Sleep(d / pieces)
	}
	w.Close()
}

// On a terminal, send and recv draw live bars while a file is in flight:
// its name, the bytes moved and the rate, and a line of totals; the bars
// are gone at the end, and the messages of each file stay.
func TestProgressBarsOnATerminal(t *testing.T) {
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "p", "g")
	rterm, sterm := newTerminal(t), newTerminal(t)
	recv, _ := rterm.start(t, c, "recv", "p", "--group", "g", "--dir", t.TempDir(), "--until-eof")
	first := filepath.Join(t.TempDir(), "first.txt")
	writeFile(t, first, []byte("the first file\n"), 0o644)
	send, stdin := sterm.start(t, c, "send", "p", first, "-", "--name", "stream.log", "--eof", "--flush", "20ms")
	trickle(stdin, 4<<20, 1500*time.Millisecond)
	for _, cmd := range []*exec.Cmd{send, recv} {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s: %v", cmd.Args, err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the terminals have read everything
	bar := regexp.MustCompile(`stream\.log .*[0-9.]+ [KM]iB, [0-9.]+ (B|[KMG]iB)/s`)
	for _, tc := range []struct {
		term        *terminal
		total, last string
	}{
		{sterm, `sent 1/2 files, [0-9.]+ [KM]iB, [0-9.]+ (B|[KMG]iB)/s`, "sent stream.log"},
		{rterm, `received 1 file, [0-9.]+ [KM]iB, [0-9.]+ (B|[KMG]iB)/s`, "received stream.log"},
	} {
		screen := tc.term.screen()
		switch {
		case len(bar.FindAllString(screen, -1)) < 2:
			t.Errorf("the terminal showed no bar redrawn for stream.log (want %s at least twice):\n%q", bar, screen)
		case !regexp.MustCompile(tc.total).MatchString(screen):
			t.Errorf("the terminal showed no totals line %s:\n%q", tc.total, screen)
		case !strings.Contains(screen, "\x1b["):
			t.Errorf("the bars were not redrawn in place (no escape sequence):\n%q", screen)
		case !strings.Contains(screen, tc.last):
			t.Errorf("the terminal does not show %q at the end:\n%q", tc.last, screen)
		}
	}
}

// Off a terminal nothing changes unless --progress asks for plain lines;
// --progress prints them at its interval, without escape sequences.
func TestProgressLinesOffATerminal(t *testing.T) {
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "p", "g")
	for _, asked := range []bool{false, true} {
		args := []string{"send", "p", "-", "--name", "stream.log", "--flush", "20ms"}
		if asked {
			args = append(args, "--progress", "--progress-interval", "100ms")
		}
		p := c.startPiped(args...)
		trickle(p.stdin, 2<<20, time.Second)
		r := p.wait()
		expectOK(t, r)
		lines := regexp.MustCompile(`(?m)^progress: stream\.log [0-9.]+ [KM]iB, [0-9.]+ (B|[KMG]iB)/s$`).FindAllString(r.stderr, -1)
		totals := regexp.MustCompile(`(?m)^progress: sent 0/1 files, [0-9.]+ [KM]iB, `).FindAllString(r.stderr, -1)
		switch {
		case strings.Contains(r.stderr, "\x1b["):
			t.Errorf("%v: escape sequences off a terminal:\n%q", r, r.stderr)
		case !asked && strings.Contains(r.stderr, "progress"):
			t.Errorf("%v: progress without --progress off a terminal", r)
		case asked && (len(lines) < 3 || len(totals) < 3):
			t.Errorf("%v: want a progress line for the file and the totals about every 100ms of the 1s transfer, got %d and %d", r, len(lines), len(totals))
		}
	}
}

// A sender waiting for budget says so in its --progress lines and does not
// repeat the same line every interval while nothing moves.
func TestProgressLinesWhileWaitingForBudget(t *testing.T) {
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "w", "g") // no member runs: the budget fills and stays full
	big := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, big, randomBytes(3, 6<<20), 0o644)
	p := c.start("send", "w", big, "--max-bytes", "2MiB", "--progress", "--progress-interval", "100ms")
	waitFor(t, 20*time.Second, "the sender to wait for budget", func() bool {
		return strings.Contains(p.stderr(), "waiting for budget")
	})
	time.Sleep(time.Second) // ten intervals of waiting
	p.signal(syscall.SIGINT)
	r := p.wait()
	rows := regexp.MustCompile(`(?m)^progress: big\.bin .*$`).FindAllString(r.stderr, -1)
	seen := map[string]int{}
	for _, l := range rows {
		seen[l]++
	}
	for l, n := range seen {
		if n > 1 {
			t.Errorf("%q printed %d times while nothing moved:\n%s", l, n, r.stderr)
		}
	}
	if !regexp.MustCompile(`(?m)^progress: sent 0/1 files, [0-9.]+ MiB of 6\.0 MiB \(\d+%\), waiting for budget$`).MatchString(r.stderr) {
		t.Errorf("no totals line saying the sender waits for budget:\n%s", r.stderr)
	}
}
