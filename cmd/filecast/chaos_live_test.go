package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// A followed log written at random rates, rotated at random moments in
// random ways, while its follower is SIGKILLed (or stopped with SIGTERM)
// and restarted at random moments: every line reaches the receiver's
// directory exactly once, in order, and nothing is left in Redis.
func TestChaosFollow(t *testing.T) {
	t.Parallel()
	chaosRun(t, 2, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		dir, out := t.TempDir(), t.TempDir()
		path := filepath.Join(dir, "app.log")
		log := newAppLog(t, path)
		recv := c.start("recv", "cf", "--group", "g", "--dir", out)
		waitJoined(t, c.srv, "cf", "g", recv)
		args := []string{"send", "cf", "--follow", path, "--linger", "200ms", "--flush", "20ms"}
		follow := c.start(args...)
		waitFor(t, 20*time.Second, "the follower to start", func() bool { return strings.Contains(follow.stderr(), "following ") })
		kills, stops := 0, 0
		var steps []string    // for a failure's report
		changed := time.Now() // the last rotation, or start of a follower
		startedAt := time.Now()
		var removedAt time.Time // the last delete-and-recreate
		for range 12 {
			log.lines(1+rng.IntN(80), time.Duration(rng.IntN(3))*time.Millisecond)
			if how := []string{"rename", "copytruncate", "recreate", "", "", ""}[rng.IntN(6)]; how != "" {
				if how == "recreate" {
					// A file deleted before any follower opened it is gone
					// for everyone: delete only one the follower has had
					// time to open.
					if follow == nil {
						how = "rename"
					} else {
						time.Sleep(time.Until(changed.Add(200 * time.Millisecond)))
					}
				}
				log.rotate(how)
				changed = time.Now()
				if how == "recreate" {
					removedAt = changed
				}
				steps = append(steps, fmt.Sprintf("%s %s at line %d", time.Now().Format("05.000"), how, log.next))
			}
			if follow != nil && rng.IntN(3) == 0 {
				if rng.IntN(4) == 0 {
					// A process signalled before its runtime set up its handlers
					// dies of the signal: give it the time to start.
					time.Sleep(time.Until(startedAt.Add(300 * time.Millisecond)))
					follow.signal(syscall.SIGTERM)
					expectFail(t, follow.wait(), 130, "stopped")
					stops++
					steps = append(steps, fmt.Sprintf("%s stopped (SIGTERM) at line %d", time.Now().Format("05.000"), log.next))
				} else {
					// What a removed file still held when a follower is killed is
					// gone with it: kill only once it has had the time to read it.
					time.Sleep(time.Until(removedAt.Add(300 * time.Millisecond)))
					follow.signal(syscall.SIGKILL)
					follow.wait()
					kills++
					steps = append(steps, fmt.Sprintf("%s killed at line %d", time.Now().Format("05.000"), log.next))
				}
				follow = nil
			} else if follow == nil && rng.IntN(2) == 0 {
				follow = c.start(args...)
				changed, startedAt = time.Now(), time.Now()
				steps = append(steps, fmt.Sprintf("%s started at line %d", time.Now().Format("05.000"), log.next))
			}
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("steps:\n%s", strings.Join(steps, "\n"))
			}
		})
		if follow == nil {
			follow = c.start(args...)
		}
		// The end of the log: its last generation completes, and nothing
		// follows it.
		log.rotate("rename")
		log.f.Close()
		log.f = nil
		os.Remove(path)
		deadline := time.Now().Add(45 * time.Second)
		for {
			lines, _ := generations(t, out, "app.log")
			if len(lines) >= log.next {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 45s, %d of %d lines in the receiver's directory: %s\nlog directory:\n%s\nreceived:\n%s",
					len(lines), log.next, gaps(lines, log.next), describeLogs(dir), describeLogs(out))
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		// Each line once, in order within its generation. (Generations sort
		// in time order while a follower runs; one that lived and was rotated
		// away while none ran is named by its birth, which may interleave.)
		seen := map[int]int{}
		lines := generationLines(t, out, "app.log")
		gens := len(lines)
		for name, ls := range lines {
			for i, l := range ls {
				seen[l]++
				if i > 0 && l != ls[i-1]+1 {
					t.Errorf("generation %s: line %d follows line %d", name, l, ls[i-1])
				}
			}
		}
		for l := range log.next {
			if seen[l] != 1 {
				t.Errorf("line %d arrived %d times, want once\nlog directory:\n%s\nreceived:\n%s", l, seen[l], describeLogs(dir), describeLogs(out))
				break
			}
		}
		deadline = time.Now().Add(20 * time.Second)
		for left := fileKeys(c.srv, "cf"); len(left) > 0; left = fileKeys(c.srv, "cf") {
			if time.Now().After(deadline) {
				t.Fatalf("keys of released generations still in redis after 20s: %q", left)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%d lines in %d generations; %d kills, %d stops", log.next, gens, kills, stops)
		if parts := partFiles(t, out); len(parts) != 0 {
			t.Errorf("partial files left: %q", parts)
		}
	})
}

// A drop folder fed by fast writers, slow writers and rename-in, in
// subdirectories, while its watcher is SIGKILLed and restarted at random
// moments: every file reaches the receiver exactly once, byte-identical,
// and with --remove-sent (every other trial) leaves the folder.
func TestChaosWatch(t *testing.T) {
	t.Parallel()
	chaosRun(t, 2, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		drop, out := t.TempDir(), t.TempDir()
		joinGroups(t, c.url, "cw", "g")
		recv := c.start("recv", "cw", "--group", "g", "--dir", out, "--json", "--concurrency", "4")
		remove := rng.IntN(2) == 0
		args := []string{"send", "cw", "--watch", drop, "--settle", "300ms"}
		if remove {
			args = append(args, "--remove-sent")
		}
		watch := c.start(args...)
		files := map[string][]byte{}
		kills := 0
		for i := range 16 {
			name := fmt.Sprintf("f%02d.bin", i)
			if rng.IntN(3) == 0 {
				name = fmt.Sprintf("sub%d/%s", rng.IntN(2), name)
			}
			data := randomBytes(rng.Uint64(), rng.IntN(3<<20))
			files[name] = data
			p := filepath.Join(drop, filepath.FromSlash(name))
			os.MkdirAll(filepath.Dir(p), 0o755)
			switch rng.IntN(3) {
			case 0: // at once
				writeFile(t, p, data, 0o644)
			case 1: // slowly, with pauses shorter than --settle
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(data); off += 256 << 10 {
					f.Write(data[off:min(off+256<<10, len(data))])
					time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
				}
				f.Close()
			case 2: // under a temporary name, then renamed in
				writeFile(t, p+".tmp", data, 0o644)
				if err := os.Rename(p+".tmp", p); err != nil {
					t.Fatal(err)
				}
			}
			if watch != nil && rng.IntN(4) == 0 {
				time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
				watch.signal(syscall.SIGKILL)
				watch.wait()
				watch = nil
				kills++
			} else if watch == nil && rng.IntN(2) == 0 {
				watch = c.start(args...)
			}
		}
		if watch == nil {
			watch = c.start(args...)
		}
		var r string
		done := map[string]int{}
		waitFor(t, 60*time.Second, "every file at the receiver", func() bool {
			b, _ := os.ReadFile(recv.out)
			r = string(b)
			clear(done)
			completions(r, done)
			return len(done) >= len(files)
		})
		time.Sleep(time.Second) // a second copy would arrive now
		b, _ := os.ReadFile(recv.out)
		clear(done)
		completions(string(b), done)
		for name, data := range files {
			if got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name))); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s differs from the file dropped (%v)", name, err)
			}
			if done[name] != 1 {
				t.Errorf("%s received %d times, want once", name, done[name])
			}
		}
		if remove {
			waitFor(t, 20*time.Second, "the drop folder to be emptied", func() bool {
				var left []string
				for _, p := range tree(t, drop) {
					if st, err := os.Stat(filepath.Join(drop, p)); err == nil && !st.IsDir() {
						left = append(left, p)
					}
				}
				return len(left) == 0
			})
		}
		waitFor(t, 20*time.Second, "every file to be released", func() bool {
			return len(fileKeys(c.srv, "cw")) == 0
		})
		t.Logf("%d files, %d watcher kills, remove-sent %v", len(files), kills, remove)
	})
}

// gaps describes which of lines 0..n-1 are missing or out of place.
func gaps(lines []int, n int) string {
	var b strings.Builder
	next := 0
	for _, l := range lines {
		if l != next {
			fmt.Fprintf(&b, "[%d where %d was due] ", l, next)
		}
		next = l + 1
	}
	if next != n {
		fmt.Fprintf(&b, "[ends at %d of %d]", next, n)
	}
	return b.String()
}

// describeLogs lists the files of a directory of logs: name, inode, size,
// modification time, and the first and last line numbers.
func describeLogs(dir string) string {
	var b strings.Builder
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		st, err := e.Info()
		if err != nil {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		ls := strings.Split(strings.TrimSpace(string(data)), "\n")
		first, last := "", ""
		if len(ls) > 0 && ls[0] != "" {
			first, last = strings.Fields(ls[0])[0], strings.Fields(ls[len(ls)-1])[0]
		}
		fmt.Fprintf(&b, "  %s ino %d, %d bytes, mtime %s, lines %s..%s\n", e.Name(), st.Sys().(*syscall.Stat_t).Ino, st.Size(),
			st.ModTime().Format("05.000"), first, last)
	}
	return b.String()
}

// A receiver's disk filled and freed at random moments while files arrive:
// the receiver blocks and goes on; every file arrives once, byte-identical;
// nothing is left in Redis or in the directory.
func TestChaosDiskFull(t *testing.T) {
	t.Parallel()
	chaosRun(t, 2, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		out := tmpfs(t, 48<<20)
		src, files := chaosFiles(t, rng, 24)
		joinGroups(t, c.url, "df", "g")
		recv := c.start("recv", "df", "--group", "g", "--member", "m", "--dir", out, "--until-eof", "--json")
		filler := filepath.Join(out, ".filler") // hidden: not one of the files
		fill := func() {
			f, err := os.Create(filler)
			if err != nil {
				return // full already
			}
			defer f.Close()
			buf := make([]byte, 16<<10)
			for {
				if _, err := f.Write(buf); err != nil {
					return
				}
			}
		}
		// The disk is full when the files start to come, and fills up again
		// at random moments.
		fill()
		send := c.start("send", "df", src, "--eof", "--max-bytes", "4MiB")
		fills := 1
		for i := range 3 {
			if i > 0 {
				fill()
				fills++
			}
			time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
			os.Remove(filler)
			time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		}
		expectOK(t, send.wait())
		r := recv.waitUpTo(90 * time.Second)
		expectOK(t, r)
		done := map[string]int{}
		completions(r.stdout, done)
		checkDelivered(t, c, "df", out, files, done, 0)
		if parts := partFiles(t, out); len(parts) != 0 {
			t.Errorf("partial files left: %q", parts)
		}
		t.Logf("%d fills, blocked %d times", fills, strings.Count(r.stdout, `"event":"blocked"`))
	})
}
