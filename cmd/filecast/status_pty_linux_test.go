package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/filecast/filecast/internal/redistest"
)

// openPTY opens a pseudo-terminal pair: the master to read, the slave to
// give a process as its terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// On a terminal, status --watch redraws in place: it clears the screen
// once, then each snapshot starts at the top left; SIGINT ends it with 0.
func TestCLIStatusWatchTerminal(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "tty", "g")
	master, slave := openPTY(t)
	cmd := exec.Command(cliBin, "status", "tty", "--watch", "--interval", "100ms")
	cmd.Env = environ(c.url, nil)
	cmd.Stdout, cmd.Stderr = slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out bytes.Buffer
	go func() { // until the master is closed
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	screen := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	waitFor(t, 20*time.Second, "three redraws", func() bool { return bytes.Count([]byte(screen()), []byte("\x1b[H")) >= 4 })
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	s := screen()
	if err != nil {
		t.Errorf("status --watch on a terminal, interrupted: %v, want exit 0\n%q", err, s)
	}
	if bytes.Count([]byte(s), []byte("\x1b[2J")) != 1 || !bytes.Contains([]byte(s), []byte("channel tty: ")) ||
		!bytes.Contains([]byte(s), []byte("\x1b[K")) || bytes.Contains([]byte(s), []byte("\n\nfilecast status, ")) {
		t.Errorf("status --watch on a terminal does not redraw in place (one clear, then home and clear-to-end per snapshot):\n%q", s)
	}
}
