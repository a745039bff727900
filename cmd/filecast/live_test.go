package main

// Tests of live data against a real redis-server and real processes:
// send --follow (growing and rotating logs) and send --watch (a drop
// folder), killed and restarted, at the rates users run them.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// appLog is an application's log file: numbered lines, rotated the ways
// logrotate does it, between two lines.
type appLog struct {
	t    *testing.T
	path string
	f    *os.File
	next int
	gen  int // rotations so far, for the rotated names
}

func newAppLog(t *testing.T, path string) *appLog {
	l := &appLog{t: t, path: path}
	l.reopen()
	t.Cleanup(func() { l.f.Close() })
	return l
}

func (l *appLog) reopen() {
	if l.f != nil {
		l.f.Close()
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	l.f = f
}

// lines writes n lines, pause apart.
func (l *appLog) lines(n int, pause time.Duration) {
	for range n {
		fmt.Fprintf(l.f, "%06d %d a line of the application's log\n", l.next, time.Now().UnixNano())
		l.next++
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// rotate rotates the log: "rename" (logrotate's create, one late line to
// the old file before the application reopens), "copytruncate", or
// "recreate" (deleted and created anew).
func (l *appLog) rotate(how string) {
	l.gen++
	rotated := fmt.Sprintf("%s.%d", l.path, l.gen)
	switch how {
	case "rename":
		if err := os.Rename(l.path, rotated); err != nil {
			l.t.Fatal(err)
		}
		l.lines(1, 0)
		l.reopen()
	case "copytruncate":
		data, err := os.ReadFile(l.path)
		if err != nil {
			l.t.Fatal(err)
		}
		if err := os.WriteFile(rotated, data, 0o644); err != nil {
			l.t.Fatal(err)
		}
		if err := os.Truncate(l.path, 0); err != nil {
			l.t.Fatal(err)
		}
	case "recreate":
		l.f.Close()
		l.f = nil
		if err := os.Remove(l.path); err != nil {
			l.t.Fatal(err)
		}
		l.reopen()
	default:
		l.t.Fatalf("no rotation %q", how)
	}
}

// generations reads the completed generations of base that a --dir
// receiver wrote to out, in the order of their names, and returns the
// line numbers they hold, in that order, and how many there were.
func generations(t *testing.T, out, base string) (lines []int, gens int) {
	t.Helper()
	byName := generationLines(t, out, base)
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names) // the stamps sort in time order
	for _, name := range names {
		lines = append(lines, byName[name]...)
	}
	return lines, len(names)
}

// generationLines returns the line numbers each completed generation of
// base in out holds, by name.
func generationLines(t *testing.T, out, base string) map[string][]int {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(out, base+"-*"))
	byName := map[string][]int{}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := []int{}
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if l == "" {
				continue
			}
			n, err := strconv.Atoi(strings.Fields(l)[0])
			if err != nil {
				t.Fatalf("%s: line %q", name, l)
			}
			lines = append(lines, n)
		}
		byName[filepath.Base(name)] = lines
	}
	return byName
}

// checkLines checks that lines are 0..n-1, each once, in order.
func checkLines(t *testing.T, lines []int, n int) {
	t.Helper()
	for i, got := range lines {
		if got != i {
			t.Fatalf("line %d of the generations in order is line %d (want each line once, in order; %d lines)", i, got, len(lines))
		}
	}
	if len(lines) != n {
		t.Fatalf("%d lines arrived, want %d", len(lines), n)
	}
}

// A follower killed with SIGKILL mid-stream and started again with the
// same command continues exactly where the stored data ends: through the
// kill and rotations of every kind, every line is in the receiver's
// directory once, in order, each generation its own file.
func TestCLIFollowKilledAndRestarted(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir, out := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "app.log")
	log := newAppLog(t, path)
	recv := c.start("recv", "fk", "--group", "g", "--dir", out)
	waitJoined(t, c.srv, "fk", "g", recv)
	args := []string{"send", "fk", "--follow", path, "--linger", "300ms", "--flush", "20ms"}
	follow := c.start(args...)
	waitFor(t, 20*time.Second, "the follower to start", func() bool { return strings.Contains(follow.stderr(), "following ") })

	log.lines(100, time.Millisecond)
	log.rotate("rename")
	log.lines(50, time.Millisecond)
	follow.signal(syscall.SIGKILL)
	follow.wait()
	log.lines(50, time.Millisecond) // while no follower runs
	log.rotate("copytruncate")      // ... and rotated meanwhile
	log.lines(20, 0)
	follow = c.start(args...)
	log.lines(100, time.Millisecond)
	log.rotate("recreate")
	log.lines(100, time.Millisecond)
	log.rotate("rename") // completes the last generation
	waitFor(t, 30*time.Second, "every line in the receiver's directory", func() bool {
		lines, _ := generations(t, out, "app.log")
		return len(lines) >= log.next
	})
	time.Sleep(300 * time.Millisecond) // a duplicate would show now
	lines, gens := generations(t, out, "app.log")
	checkLines(t, lines, log.next)
	if gens < 4 {
		t.Errorf("%d generations for 4 rotations", gens)
	}
	r := follow.stderr()
	if !strings.Contains(r, "continuing app.log-") {
		t.Errorf("the restarted follower did not continue the open generation:\n%s", r)
	}
	follow.signal(syscall.SIGTERM)
	expectFail(t, follow.wait(), 130, "stopped", "run the same command again")
}

// The latency a user sees: a line appended to a followed file is at a
// receiver within half a second (99th percentile), at 10, 100 and 1000
// lines a second. The receiver runs in this process, so it can time each
// line against the time written in it.
func TestCLIFollowLineLatency(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := filecast.New(ctx, filecast.Options{URL: c.url})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.Join(ctx, "lat", "g"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var delays []time.Duration
	got := 0
	go rc.Receive(ctx, "lat", func(ctx context.Context, f *filecast.File) error {
		for line, err := range f.Lines() {
			if err != nil {
				return err
			}
			now := time.Now()
			fields := strings.Fields(string(line))
			ns, _ := strconv.ParseInt(fields[1], 10, 64)
			mu.Lock()
			delays = append(delays, now.Sub(time.Unix(0, ns)))
			got++
			mu.Unlock()
		}
		return nil
	}, filecast.ReceiveOptions{Group: "g"})

	path := filepath.Join(t.TempDir(), "app.log")
	log := newAppLog(t, path)
	follow := c.start("send", "lat", "--follow", path)
	waitFor(t, 20*time.Second, "the follower to start", func() bool { return strings.Contains(follow.stderr(), "following ") })
	for _, rate := range []struct {
		perSecond int
		seconds   float64
	}{{10, 3}, {100, 3}, {1000, 2}} {
		mu.Lock()
		delays, got = nil, 0
		mu.Unlock()
		n := int(float64(rate.perSecond) * rate.seconds)
		start := time.Now()
		for i := range n {
			// Paced against the clock, so a slow write does not slow the rate.
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate.perSecond))))
			log.lines(1, 0)
		}
		waitFor(t, 20*time.Second, fmt.Sprintf("%d lines at %d/s", n, rate.perSecond), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return got >= n
		})
		mu.Lock()
		slices.Sort(delays)
		p50, p99 := delays[len(delays)/2], delays[len(delays)*99/100]
		mu.Unlock()
		t.Logf("%d lines/s: line latency p50 %v, p99 %v", rate.perSecond, p50.Round(time.Millisecond), p99.Round(time.Millisecond))
		if p99 > 500*time.Millisecond {
			t.Errorf("%d lines/s: 99th percentile line latency %v, want at most 500ms", rate.perSecond, p99)
		}
	}
}

// Following what is not there, or not a file, or not readable: a usage
// error where that is a mistake, a stated wait where it is not.
func TestCLIFollowBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "f.log")
	writeFile(t, file, []byte("x\n"), 0o644)
	joinGroups(t, c.url, "bad", "g")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"follow stdin", []string{"send", "bad", "--follow", "-"}, []string{"stdin", "cannot be followed"}},
		{"follow and watch", []string{"send", "bad", "--follow", "--watch", dir}, []string{"--follow and --watch"}},
		{"watch two dirs", []string{"send", "bad", "--watch", dir, dir}, []string{"exactly one DIR"}},
		{"watch a file", []string{"send", "bad", "--watch", file}, []string{"not a directory"}},
		{"watch a missing dir", []string{"send", "bad", "--watch", filepath.Join(dir, "nope")}, []string{"no such file"}},
		{"from-start without follow", []string{"send", "bad", file, "--from-start"}, []string{"--from-start goes with --follow"}},
		{"settle without watch", []string{"send", "bad", file, "--settle", "2s"}, []string{"--settle goes with --watch"}},
		{"follow with eof", []string{"send", "bad", "--follow", file, "--eof"}, []string{"--eof does not go with"}},
		{"a pattern in a directory", []string{"send", "bad", "--follow", filepath.Join(dir, "*", "x.log")}, []string{"only the last element"}},
		{"a bad exclude", []string{"send", "bad", "--follow", file, "--exclude", "["}, []string{"exclude pattern"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectFail(t, c.run(tc.args...), 2, tc.want...)
		})
	}

	// Unreadable at start: exit 2. (Root reads anything; the follower runs
	// without the capabilities that let it.)
	secret := filepath.Join(dir, "secret.log")
	writeFile(t, secret, []byte("s\n"), 0o000)
	noDAC := requireSetpriv(t)
	expectFail(t, c.wrapped(noDAC...).run("send", "bad", "--follow", secret), 2, "cannot follow", "permission denied")
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o000); err != nil {
		t.Fatal(err)
	}
	expectFail(t, c.wrapped(noDAC...).run("send", "bad", "--follow", locked), 2, "cannot follow", "permission denied")
	expectFail(t, c.wrapped(noDAC...).run("send", "bad", "--watch", locked), 2, "watch "+locked+": cannot read it: permission denied")
}

// requireSetpriv returns the command that runs a program without the
// capabilities that let root read unreadable files, or skips the test.
func requireSetpriv(t *testing.T) []string {
	t.Helper()
	cmd := []string{"setpriv", "--bounding-set=-dac_override,-dac_read_search"}
	probe := filepath.Join(t.TempDir(), "probe")
	writeFile(t, probe, nil, 0o000)
	if err := exec.Command(cmd[0], append(cmd[1:], "cat", probe)...).Run(); err == nil {
		t.Skip("cannot make a file unreadable to this user (setpriv missing, or it does not drop the capability)")
	}
	return cmd
}

// A path that does not exist yet is waited for, and sent from its first
// byte when it appears; a file that becomes unreadable, is replaced by a
// directory, or is truncated without rotation is said so and handled.
func TestCLIFollowWaitsAndRecovers(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir, out := t.TempDir(), t.TempDir()
	recv := c.start("recv", "wr", "--group", "g", "--dir", out)
	waitJoined(t, c.srv, "wr", "g", recv)
	noDAC := requireSetpriv(t)
	path := filepath.Join(dir, "later.log")
	follow := c.wrapped(noDAC...).start("send", "wr", "--follow", path, dir+"/*.txt", "-v", "--linger", "200ms")
	waitFor(t, 20*time.Second, "the follower to say it waits", func() bool {
		return strings.Contains(follow.stderr(), "waiting for "+path)
	})
	log := newAppLog(t, path)
	log.lines(5, 0)
	waitFor(t, 20*time.Second, "the file that appeared to be followed from its start", func() bool {
		return strings.Contains(follow.stderr(), "following "+path+" as later.log-") && strings.Contains(follow.stderr(), "from its start")
	})

	// A file of the glob that cannot be read: a warning, then it is
	// followed once it can be.
	locked := filepath.Join(dir, "locked.txt")
	writeFile(t, locked, []byte("line 0\n"), 0o000)
	waitFor(t, 20*time.Second, "a warning about the unreadable file", func() bool {
		return strings.Contains(follow.stderr(), "cannot follow "+locked+" now") && strings.Contains(follow.stderr(), "permission denied")
	})
	if err := os.Chmod(locked, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the file to be followed once readable", func() bool {
		return strings.Contains(follow.stderr(), "following "+locked)
	})

	// Truncated below what was sent, without rotation: a new generation.
	log.lines(5, 0)
	time.Sleep(300 * time.Millisecond)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	log.lines(3, 0)
	waitFor(t, 20*time.Second, "the truncated file's generation to complete", func() bool {
		return count(follow.stderr(), "completed later.log-") == 1
	})

	// Replaced by a directory: its generation completes, and it is waited for.
	log.f.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the follower to say the path is a directory now", func() bool {
		return strings.Contains(follow.stderr(), "waiting for "+path+": it is a directory") && count(follow.stderr(), "completed later.log-") == 2
	})
	waitFor(t, 20*time.Second, "both generations at the receiver", func() bool {
		_, gens := generations(t, out, "later.log")
		return gens == 2
	})
	if !strings.Contains(follow.stderr(), "(its file was truncated") {
		t.Errorf("the truncated generation's completion does not say why:\n%s", follow.stderr())
	}
	lines, gens := generations(t, out, "later.log")
	checkLines(t, lines, 13)
	if gens != 2 {
		t.Errorf("%d generations of later.log, want 2 (truncated, then removed)", gens)
	}
	noCrash(t, cliResult{stderr: follow.stderr()})
}

// With the inotify watch limit reached, the follower says so (at -v) and
// polls; lines still arrive. The limit is real: the follower runs in a
// user namespace whose limit is set to 0.
func TestCLIFollowPollsWithoutNotifications(t *testing.T) {
	t.Parallel()
	if err := exec.Command("unshare", "--user", "--map-root-user", "sh", "-c", "echo 0 > /proc/sys/user/max_inotify_watches").Run(); err != nil {
		t.Skipf("cannot set an inotify limit in a user namespace here (%v)", err)
	}
	c := newCLI(t, redistest.Config{})
	out := t.TempDir()
	recv := c.start("recv", "pl", "--group", "g", "--dir", out)
	waitJoined(t, c.srv, "pl", "g", recv)
	path := filepath.Join(t.TempDir(), "app.log")
	log := newAppLog(t, path)
	limited := c.wrapped("unshare", "--user", "--map-root-user", "sh", "-c", `echo 0 > /proc/sys/user/max_inotify_watches && exec "$@"`, "sh")
	follow := limited.start("send", "pl", "--follow", path, "-v", "--linger", "200ms")
	waitFor(t, 20*time.Second, "the follower to fall back to polling", func() bool {
		return strings.Contains(follow.stderr(), "polling for changes") && strings.Contains(follow.stderr(), "following ")
	})
	log.lines(20, 5*time.Millisecond)
	log.rotate("rename")
	waitFor(t, 20*time.Second, "the lines to arrive", func() bool {
		lines, _ := generations(t, out, "app.log")
		return len(lines) >= 21
	})
	lines, _ := generations(t, out, "app.log")
	checkLines(t, lines, 21)
}

// Two followed logs to --stdout: both flow at once (neither waits for the
// other to end), interleaved by whole lines.
func TestCLIFollowTwoLogsToStdout(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir := t.TempDir()
	recv := c.start("recv", "two", "--group", "g", "--stdout")
	waitJoined(t, c.srv, "two", "g", recv)
	a, b := newAppLog(t, filepath.Join(dir, "a.log")), newAppLog(t, filepath.Join(dir, "b.log"))
	follow := c.start("send", "two", "--follow", dir, "--flush", "5ms")
	waitFor(t, 20*time.Second, "the follower to start", func() bool { return count(follow.stderr(), "following ") == 2 })
	for range 200 {
		a.lines(1, 0)
		b.lines(1, 100*time.Microsecond)
	}
	var out string
	waitFor(t, 20*time.Second, "400 lines on stdout", func() bool {
		b, _ := os.ReadFile(recv.out)
		out = string(b)
		return strings.Count(out, "\n") >= 400
	})
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) != 8 || len(f[0]) != 6 {
			t.Fatalf("a line cut or mixed with another: %q", l)
		}
		seen[f[0]]++
	}
	if len(seen) != 200 {
		t.Errorf("%d distinct line numbers, want 200 (each from both logs)", len(seen))
	}
	for n, k := range seen {
		if k != 2 {
			t.Errorf("line %s seen %d times, want twice (once per log)", n, k)
		}
	}
}

// Files written to --stdout side by side interleave by whole lines: a
// chunk that ends mid-line keeps its line back until the rest comes.
func TestStdoutInterleavesWholeLines(t *testing.T) {
	var out strings.Builder
	s := &stdoutSink{w: &out}
	a, b := &lineWriter{s: s}, &lineWriter{s: s}
	a.Write([]byte("one\nhello wo"))
	b.Write([]byte("xyz\n"))
	a.Write([]byte("rld\ntail"))
	a.flush()
	if got, want := out.String(), "one\nxyz\nhello world\ntail"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
