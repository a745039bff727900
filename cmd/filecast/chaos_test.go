package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// The fault-injection suite: real processes killed at seeded random
// points, a real redis-server killed and restarted. make test runs a few
// trials of each; make chaos runs many:
//
//	FILECAST_CHAOS_TRIALS=100 FILECAST_CHAOS_SEED=7 go test ./cmd/filecast -run Chaos
//
// Every scenario ends with the same checks (checkDelivered): every file
// byte-identical at every group, no key of a released file left in Redis,
// and, within a group, no file completed more often than the documented
// at-least-once redelivery of an interrupted file allows.

// chaosTrials is FILECAST_CHAOS_TRIALS, or short.
func chaosTrials(t *testing.T, short int) int {
	if v := os.Getenv("FILECAST_CHAOS_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FILECAST_CHAOS_TRIALS=%q: want a positive number", v)
		}
		return n
	}
	return short
}

// chaosRand returns the scenario's PRNG, seeded from FILECAST_CHAOS_SEED
// (default 1) and the scenario's name, and logs how to reproduce it.
func chaosRand(t *testing.T) *rand.Rand {
	seed := uint64(1)
	if v := os.Getenv("FILECAST_CHAOS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("FILECAST_CHAOS_SEED=%q: want a number", v)
		}
	}
	t.Logf("seed %d (FILECAST_CHAOS_SEED=%d reproduces this run)", seed, seed)
	var h uint64
	for _, c := range t.Name() {
		h = h*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, h))
}

// chaosRun runs trial as subtests, FILECAST_CHAOS_TRIALS times (else
// short), each with the scenario's seeded PRNG.
func chaosRun(t *testing.T, short int, trial func(t *testing.T, rng *rand.Rand)) {
	rng := chaosRand(t)
	for i := range chaosTrials(t, short) {
		t.Run(fmt.Sprint(i), func(t *testing.T) { trial(t, rng) })
	}
}

// chaosFiles writes files of seeded random sizes, from empty to a few
// chunks, into a new directory and returns it with their contents by name.
func chaosFiles(t *testing.T, rng *rand.Rand, n int) (string, map[string][]byte) {
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := range n {
		size := 0
		switch i % 4 {
		case 1:
			size = rng.IntN(4 << 10)
		case 2:
			size = rng.IntN(1 << 20)
		case 3:
			size = 1<<20 + rng.IntN(3<<20)
		}
		name := fmt.Sprintf("f%02d.bin", i)
		data := randomBytes(rng.Uint64(), size)
		writeFile(t, filepath.Join(dir, name), data, 0o644)
		files[name] = data
	}
	return dir, files
}

// dirReceiver joins group g to channel and starts the receiver most
// scenarios check: --dir into a new directory, until the end of the batch,
// reporting in JSON, with a 2 s lease.
func dirReceiver(t *testing.T, c *cli, channel string) (out string, recv *proc) {
	t.Helper()
	joinGroups(t, c.url, channel, "g")
	out = filepath.Join(t.TempDir(), "out")
	return out, c.start("recv", channel, "--group", "g", "--dir", out, "--until-eof", "--json", "--lease", "2s")
}

// completions counts the files a receiver reported as done (recv --json).
func completions(stdout string, into map[string]int) {
	for _, l := range strings.Split(stdout, "\n") {
		var o struct {
			Name string
			OK   bool
		}
		if json.Unmarshal([]byte(l), &o) == nil && o.OK {
			into[o.Name]++
		}
	}
}

// checkDelivered makes the checks every scenario ends with. out is the
// group's target directory, done the completions it reported, and
// interrupted how many times its receivers were killed (each may have
// completed one file whose acknowledgement it never sent).
func checkDelivered(t *testing.T, c *cli, channel, out string, files map[string][]byte, done map[string]int, interrupted int) {
	t.Helper()
	got := tree(t, out)
	var want []string
	for name := range files {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("target directory holds %q, want %q", got, want)
	}
	for name, data := range files {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s differs from the file sent (%v)", name, err)
		}
	}
	if left := fileKeys(c.srv, channel); len(left) != 0 {
		t.Errorf("keys of released files left in redis: %q", left)
	}
	extra := 0
	for name, n := range done {
		if n > 1 {
			extra += n - 1
		}
		if _, ok := files[name]; !ok {
			t.Errorf("a file that was never sent completed: %q", name)
		}
	}
	if extra > interrupted {
		t.Errorf("files completed %d times more than once, after only %d interruptions: %v", extra, interrupted, done)
	}
}

// receiverDelivered waits for a receiver that must finish the batch and
// makes the final checks on what it delivered.
func receiverDelivered(t *testing.T, c *cli, channel, out string, files map[string][]byte, recv *proc, interrupted int) {
	t.Helper()
	r := recv.wait()
	expectOK(t, r)
	done := map[string]int{}
	completions(r.stdout, done)
	checkDelivered(t, c, channel, out, files, done, interrupted)
}

// Receivers SIGKILLed at random points, then restarted, until one finishes
// the batch.
func TestChaosReceiverKilled(t *testing.T) {
	t.Parallel()
	chaosRun(t, 3, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		src, files := chaosFiles(t, rng, 12)
		joinGroups(t, c.url, "ck", "g")
		expectOK(t, c.run("send", "ck", src, "--eof"))
		out := filepath.Join(t.TempDir(), "out")
		done := map[string]int{}
		kills := 0
		args := []string{"recv", "ck", "--group", "g", "--member", "m", "--dir", out, "--until-eof", "--json", "--lease", "2s"}
		for attempt := 0; ; attempt++ {
			p := c.start(args...)
			if attempt < 4 {
				time.Sleep(time.Duration(rng.IntN(120)) * time.Millisecond)
				if !p.exited() {
					p.signal(syscall.SIGKILL)
				}
			}
			r := p.wait()
			completions(r.stdout, done)
			if r.code == -1 {
				kills++
				if v, _ := c.srv.Do("HGET", "fc:{ck}:g:g", "mark"); v != "" {
					// Killed after the group finished the batch: a receiver
					// started now would wait for the next one.
					break
				}
				continue
			}
			expectOK(t, r)
			break
		}
		t.Logf("%d kills", kills)
		checkDelivered(t, c, "ck", out, files, done, kills)
	})
}

// A sender SIGKILLed at a random point in a file larger than the budget,
// then run again with the same input, until it finishes: the receiver sees
// the file once, whole. The input is a pipe the test writes, so every kill
// lands before the end of the file.
func TestChaosSenderKilled(t *testing.T) {
	t.Parallel()
	chaosRun(t, 3, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		data := randomBytes(rng.Uint64(), 2<<20+rng.IntN(6<<20))
		files := map[string][]byte{"big.bin": data}
		out, recv := dirReceiver(t, c, "cs")
		sendArgs := []string{"send", "cs", "-", "--name", "big.bin", "--eof", "--max-bytes", "2MiB", "--lease", "2s"}
		kills := 1 + rng.IntN(4)
		for range kills {
			p := c.startPiped(sendArgs...)
			p.stdin.Write(data[:rng.IntN(len(data))])
			time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
			p.signal(syscall.SIGKILL)
			if r := p.wait(); r.code != -1 {
				t.Fatalf("the sender ended before the end of its input:\n%s", r)
			}
		}
		expectOK(t, c.runWith(bytes.NewReader(data), nil, sendArgs...))
		receiverDelivered(t, c, "cs", out, files, recv, 0)
	})
}

// send DIR SIGKILLed in the middle of a file or at a random moment, then
// run again with the same arguments, until a run finishes: the receiver
// gets every file once. The reruns skip the files earlier runs completed
// and resume the interrupted one.
func TestChaosSenderKilledDirectory(t *testing.T) {
	t.Parallel()
	chaosRun(t, 3, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		src, files := chaosFiles(t, rng, 12)
		out, recv := dirReceiver(t, c, "cd")
		sendArgs := []string{"send", "cd", src, "--eof", "--max-bytes", "2MiB", "--lease", "2s"}
		kills, finished := 0, false
		for range 1 + rng.IntN(4) {
			p := c.start(sendArgs...)
			if rng.IntN(2) == 0 {
				// While one of the large files before the last is uploading.
				target := fmt.Sprintf("f%02d.bin", []int{3, 7}[rng.IntN(2)])
				waitFor(t, 20*time.Second, target+" to be uploading", func() bool {
					v, _ := c.srv.Do("HGET", "fc:{cd}:up", target)
					return v != "" || p.exited()
				})
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
			} else {
				time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			}
			p.signal(syscall.SIGKILL)
			if r := p.wait(); r.code != -1 { // it finished before the signal
				expectOK(t, r)
				finished = true
				break
			}
			kills++
			// Killed after its last step, which forgets the batch: the run
			// had finished (a rerun would send everything again, as after
			// any finished run). Only that step deletes a batch record
			// that a file completed (and printed) created.
			stderr := p.stderr()
			if len(c.srv.Keys("fc:{cd}:batch:*")) == 0 && (strings.Contains(stderr, "sent ") || strings.Contains(stderr, "skipped ")) {
				t.Logf("killed after it finished:\n%s", stderr)
				finished = true
				break
			}
		}
		if !finished {
			expectOK(t, c.run(sendArgs...))
		}
		t.Logf("%d kills", kills)
		receiverDelivered(t, c, "cd", out, files, recv, 0)
		if left := c.srv.Keys("fc:{cd}:batch:*"); len(left) != 0 {
			t.Errorf("the finished send left its batch record: %q", left)
		}
	})
}

// redis-server killed and restarted mid-transfer with AOF (appendfsync
// always): the sender and the receiver ride through the restart.
func TestChaosRedisRestartWithAOF(t *testing.T) {
	t.Parallel()
	chaosRun(t, 2, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{AOF: true})
		src, files := chaosFiles(t, rng, 12)
		out, recv := dirReceiver(t, c, "ca")
		send := c.start("send", "ca", src, "--eof", "--max-bytes", "2MiB", "--lease", "2s")
		// Mid-transfer: once the first file is announced (a sender that
		// finds no server at all fails at once, by design).
		waitFor(t, 20*time.Second, "the first file to be announced", func() bool {
			n, _ := c.srv.Do("XLEN", "fc:{ca}:files")
			return n != "" && n != "0"
		})
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		c.srv.Kill()
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		c.srv.Restart()
		expectOK(t, send.wait())
		receiverDelivered(t, c, "ca", out, files, recv, 1)
	})
}

// redis-server killed and restarted without persistence mid-transfer: the
// data is gone. Sender and receiver stop with an error that says so, and
// no file is presented as complete unless it is: whatever the target
// directory shows under a file's name is that file, whole.
func TestChaosRedisRestartWithoutPersistence(t *testing.T) {
	t.Parallel()
	chaosRun(t, 2, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		src, files := chaosFiles(t, rng, 12)
		joinGroups(t, c.url, "cn", "g")
		out := filepath.Join(t.TempDir(), "out")
		recv := c.start("recv", "cn", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
		expectOK(t, c.run("send", "cn", src, "--max-bytes", "2MiB"))
		// A file still arriving on a pipe when the server goes.
		live := randomBytes(rng.Uint64(), 3<<20)
		send := c.startPiped("send", "cn", "-", "--name", "live.bin", "--eof", "--lease", "2s")
		if _, err := send.stdin.Write(live[:1<<20]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "live.bin to be uploading", func() bool {
			id, _ := c.srv.Do("HGET", "fc:{cn}:up", "live.bin")
			return id != ""
		})
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		c.srv.Kill()
		c.srv.Restart()
		send.stdin.Write(live[1<<20:])
		send.stdin.Close()
		files["live.bin"] = live
		expectFail(t, send.wait(), 1, "no longer in redis")
		expectFail(t, recv.wait(), 1, "lost its data", "run the receiver again")
		for _, name := range tree(t, out) {
			if slices.Contains(partFiles(t, out), name) {
				continue // hidden, and kept for a resume (the data is gone from Redis, though)
			}
			want, ok := files[name]
			got, err := os.ReadFile(filepath.Join(out, name))
			if !ok || err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is in the target directory but is not the file sent", name)
			}
		}
	})
}

// Connections cut, delayed and black-holed through a TCP proxy while a
// file larger than the budget streams from sender to receiver: the
// clients reconnect and retry, and the transfer completes.
func TestChaosNetworkFaults(t *testing.T) {
	t.Parallel()
	chaosRun(t, 2, func(t *testing.T, rng *rand.Rand) {
		srv := redistest.Start(t, redistest.Config{TCP: true})
		proxy := redistest.NewProxy(t, srv.Addr())
		c := &cli{t: t, srv: srv, url: proxy.URL()}
		src, files := chaosFiles(t, rng, 8)
		live := randomBytes(rng.Uint64(), 6<<20)
		files["live.bin"] = live
		out, recv := dirReceiver(t, c, "cf")
		expectOK(t, c.run("send", "cf", src, "--max-bytes", "2MiB"))
		send := c.startPiped("send", "cf", "-", "--name", "live.bin", "--eof", "--max-bytes", "2MiB", "--lease", "2s")
		feed := make(chan error, 1)
		go func() {
			for i := 0; i < len(live); i += 256 << 10 {
				if _, err := send.stdin.Write(live[i:min(i+256<<10, len(live))]); err != nil {
					feed <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			feed <- send.stdin.Close()
		}()
		faults := []func(){
			proxy.Cut,
			func() { proxy.SetDelay(30 * time.Millisecond); time.Sleep(150 * time.Millisecond); proxy.SetDelay(0) },
			func() { proxy.Blackhole(true); time.Sleep(300 * time.Millisecond); proxy.Blackhole(false) },
		}
		for range 4 {
			time.Sleep(time.Duration(rng.IntN(80)) * time.Millisecond)
			faults[rng.IntN(len(faults))]()
		}
		if err := <-feed; err != nil {
			t.Fatalf("feeding the sender: %v\n%s", err, send.wait())
		}
		expectOK(t, send.wait())
		receiverDelivered(t, c, "cf", out, files, recv, 0)
	})
}

// A work-sharing member frozen (SIGSTOP) mid-file for longer than its
// lease: the other member takes the file over and delivers it. When the
// frozen one wakes it neither acknowledges the file nor publishes its
// copy.
func TestChaosFrozenMember(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	joinGroups(t, c.url, "cz", "g")
	out := filepath.Join(t.TempDir(), "out")
	args := func(member string) []string {
		return []string{"recv", "cz", "--group", "g", "--member", member, "--dir", out, "--until-eof", "--json", "--lease", "2s"}
	}
	frozen := c.start(args("frozen")...)
	waitJoined(t, c.srv, "cz", "g", frozen)
	data := randomBytes(21, 4<<20)
	send := c.startPiped("send", "cz", "-", "--name", "f.bin", "--eof", "--lease", "2s")
	if _, err := send.stdin.Write(data[:1<<20]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first member to start writing f.bin", func() bool { return len(partFiles(t, out)) == 1 })
	frozen.signal(syscall.SIGSTOP)
	other := c.start(args("other")...)
	// The other member takes the file over once it has been idle for the
	// lease, and can finish it only once the rest arrives.
	time.Sleep(3500 * time.Millisecond)
	send.stdin.Write(data[1<<20:])
	send.stdin.Close()
	expectOK(t, send.wait())
	ro := other.wait()
	expectOK(t, ro)
	frozen.signal(syscall.SIGCONT)
	rf := frozen.wait()
	expectOK(t, rf)
	done := map[string]int{}
	completions(ro.stdout, done)
	if done["f.bin"] != 1 {
		t.Errorf("the member that took over reported f.bin done %d times, want 1:\n%s", done["f.bin"], ro)
	}
	woke := map[string]int{}
	completions(rf.stdout, woke)
	if woke["f.bin"] != 0 {
		t.Errorf("the member that was frozen also reported f.bin done:\n%s", rf)
	}
	if !strings.Contains(rf.stdout+rf.stderr, "lost") && !strings.Contains(rf.stdout+rf.stderr, "Lost") {
		t.Errorf("the member that was frozen does not say it lost the file:\n%s", rf)
	}
	checkDelivered(t, c, "cz", out, map[string][]byte{"f.bin": data}, done, 0)
	if parts := partFiles(t, out); len(parts) != 0 {
		t.Errorf("partial files left: %q", parts)
	}
}

// A soak: many files, from empty to larger than the budget, sent to several
// groups at once through a small budget. Every group gets every file whole,
// the budget holds throughout, and at the end Redis holds no file and its
// memory is back near where it started. make test sends 60 files to 3
// groups; make chaos sends FILECAST_CHAOS_TRIALS×20 (2000) to 8.
func TestChaosSoak(t *testing.T) {
	t.Parallel()
	rng := chaosRand(t)
	nfiles, ngroups := 60, 3
	if n := chaosTrials(t, 0); n > 0 {
		nfiles, ngroups = 20*n, 8
	}
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	files := map[string][]byte{}
	for i := range nfiles {
		size := rng.IntN(64 << 10)
		if i%10 == 0 {
			size = rng.IntN(3 << 20) // some larger than the budget
		}
		name := fmt.Sprintf("s%04d.bin", i)
		files[name] = randomBytes(rng.Uint64(), size)
		writeFile(t, filepath.Join(src, name), files[name], 0o644)
	}
	groups := make([]string, ngroups)
	for i := range groups {
		groups[i] = fmt.Sprintf("g%d", i)
	}
	joinGroups(t, c.url, "soak", groups...)
	base := usedMemory(t, c.srv)
	var recvs []*proc
	for _, g := range groups {
		recvs = append(recvs, c.start("recv", "soak", "--group", g, "--dir", filepath.Join(src+"-out", g), "--until-eof", "--json", "--lease", "5s"))
	}
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() { // the bytes the channel holds, against its budget
		var p int64
		for {
			select {
			case <-stop:
				peak <- p
				return
			case <-time.After(2 * time.Millisecond):
			}
			v, _ := c.srv.Do("GET", "fc:{soak}:bytes")
			n, _ := strconv.ParseInt(v, 10, 64)
			p = max(p, n)
		}
	}()
	limit := cliTimeout + time.Duration(nfiles)*100*time.Millisecond
	expectOK(t, c.start("send", "soak", src, "--eof", "--max-bytes", "1MiB", "--lease", "5s").waitUpTo(limit))
	var results []cliResult
	for _, p := range recvs {
		results = append(results, p.waitUpTo(limit))
	}
	for i, r := range results {
		expectOK(t, r)
		done := map[string]int{}
		completions(r.stdout, done)
		checkDelivered(t, c, "soak", filepath.Join(src+"-out", groups[i]), files, done, 0)
	}
	close(stop)
	if p := <-peak; p > 1<<20+filecastChunk {
		t.Errorf("the channel held %d bytes, over its budget of 1 MiB (one chunk may exceed it into an empty channel)", p)
	}
	if v, _ := c.srv.Do("GET", "fc:{soak}:bytes"); v != "0" {
		t.Errorf("the channel still counts %s bytes held", v)
	}
	if grew := usedMemory(t, c.srv) - base; grew > 4<<20 {
		t.Errorf("redis used_memory grew by %d bytes over the soak and stayed so", grew)
	}
}

// filecastChunk is the default chunk size, for bounds in tests.
const filecastChunk = 1<<20 - 64

// usedMemory returns redis's used_memory.
func usedMemory(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	info := srv.MustDo(t, "INFO", "memory")
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}

// send DIR killed in the middle of a file larger than the budget, after
// files that each fill much of it, then run again after one of those was
// touched: the rerun finishes the interrupted file first, so it does not
// wait for budget behind the changed file it sends again while the receiver
// waits for it, and it skips the unchanged one.
func TestChaosSenderKilledDirectoryFinishes(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	files := map[string][]byte{
		"a.bin": randomBytes(31, 1536<<10),
		"b.bin": randomBytes(32, 1536<<10),
		"c.bin": randomBytes(33, 6<<20),
	}
	for name, data := range files {
		writeFile(t, filepath.Join(src, name), data, 0o644)
	}
	out, recv := dirReceiver(t, c, "cr")
	sendArgs := []string{"send", "cr", src, "--eof", "--max-bytes", "2MiB", "--lease", "2s"}
	p := c.start(sendArgs...)
	waitFor(t, 20*time.Second, "c.bin to be uploading", func() bool {
		v, _ := c.srv.Do("HGET", "fc:{cr}:up", "c.bin")
		return v != "" && fileField(c.srv, "cr", v, "n") >= "1"
	})
	p.signal(syscall.SIGKILL)
	if r := p.wait(); r.code != -1 {
		t.Fatalf("the sender was not killed mid-file:\n%s", r)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(src, "a.bin"), later, later); err != nil {
		t.Fatal(err)
	}
	r := c.run(sendArgs...)
	expectOK(t, r)
	if !strings.HasPrefix(r.stderr, "sent c.bin") || !strings.Contains(r.stderr, "(resumed)") {
		t.Errorf("the rerun did not resume c.bin first:\n%s", r)
	}
	if !strings.Contains(r.stderr, "sent a.bin") || !strings.Contains(r.stderr, "skipped 1 unchanged file ") {
		t.Errorf("the rerun did not send the touched a.bin again and skip b.bin:\n%s", r)
	}
	// a.bin changed: its second version is a second delivery.
	receiverDelivered(t, c, "cr", out, files, recv, 1)
}

// Real latency and packet loss: redis-server runs in a network namespace of
// its own, reached over a veth pair with netem (20 ms delay and 1 % loss
// each way), while files stream through a small budget. Where the kernel
// has no netem the link is a slow token bucket instead; where there are no
// network namespaces the test says so and skips.
func TestChaosNetem(t *testing.T) {
	id := os.Getpid() % 200
	ns, host, peer := fmt.Sprintf("fcnet%d", id), fmt.Sprintf("fch%d", id), fmt.Sprintf("fcp%d", id)
	hostIP, peerIP := fmt.Sprintf("10.213.%d.1", id), fmt.Sprintf("10.213.%d.2", id)
	run := func(args ...string) error {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2) for network namespaces; latency is covered by TestChaosNetworkFaults' proxy")
	}
	if err := run("ip", "netns", "add", ns); err != nil {
		t.Skipf("network namespaces are not available here (%v); latency is covered by TestChaosNetworkFaults' proxy", err)
	}
	t.Cleanup(func() { run("ip", "netns", "del", ns) })
	for _, step := range [][]string{
		{"ip", "link", "add", host, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", ns},
		{"ip", "addr", "add", hostIP + "/24", "dev", host},
		{"ip", "link", "set", host, "up"},
		{"ip", "netns", "exec", ns, "ip", "addr", "add", peerIP + "/24", "dev", peer},
		{"ip", "netns", "exec", ns, "ip", "link", "set", peer, "up"},
		{"ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"},
	} {
		if err := run(step...); err != nil {
			t.Skipf("cannot set up a veth pair into a network namespace (%v)", err)
		}
	}
	t.Cleanup(func() { run("ip", "link", "del", host) })
	netem := [][]string{
		{"tc", "qdisc", "add", "dev", host, "root", "netem", "delay", "20ms", "loss", "1%"},
		{"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", peer, "root", "netem", "delay", "20ms", "loss", "1%"},
	}
	if err := run(netem[0]...); err == nil {
		if err := run(netem[1]...); err != nil {
			t.Fatal(err)
		}
	} else {
		// Without netem, a slow real link still exercises the set-up:
		// a 200 Mbit/s token bucket queueing up to 50 ms.
		t.Logf("the kernel has no netem qdisc (sch_netem) for latency and loss (%v); using a 200 Mbit/s token bucket instead (TestChaosNetworkFaults' proxy covers delays and black holes)", err)
		if err := run("tc", "qdisc", "add", "dev", host, "root", "tbf", "rate", "200mbit", "burst", "64kb", "latency", "50ms"); err != nil {
			t.Skipf("neither netem nor tbf qdiscs are available (%v)", err)
		}
	}
	srv := redistest.Start(t, redistest.Config{TCP: true, Netns: ns, BindAddr: peerIP})
	c := &cli{t: t, srv: srv, url: srv.TCPURL()}
	rng := chaosRand(t)
	src, files := chaosFiles(t, rng, 8)
	joinGroups(t, c.url, "nm", "g")
	out := filepath.Join(t.TempDir(), "out")
	recv := c.start("recv", "nm", "--group", "g", "--dir", out, "--until-eof", "--json")
	expectOK(t, c.start("send", "nm", src, "--eof", "--max-bytes", "1MiB").waitUpTo(5*time.Minute))
	receiverDelivered(t, c, "nm", out, files, recv, 0)
}

// A receiver run as a service, stopped with SIGTERM at random moments (as
// systemctl stop and restart do) while its --exec command handles a file,
// then started again, until the batch is done: every stop exits 130
// within stopBound, leaves no command running, and every file arrives
// whole, none completed twice.
func TestChaosReceiverStopped(t *testing.T) {
	t.Parallel()
	chaosRun(t, 3, func(t *testing.T, rng *rand.Rand) {
		c := newCLI(t, redistest.Config{})
		src, files := chaosFiles(t, rng, 12)
		joinGroups(t, c.url, "cq", "g")
		expectOK(t, c.run("send", "cq", src, "--eof"))
		out := t.TempDir()
		// The marker names this trial's commands, to find any left running.
		marker := fmt.Sprintf("chaos-stop-%d", rng.Uint64())
		command := fmt.Sprintf(`: %s; sleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) %% 5 )); `+
			`cat > "%s/.tmp-$FILECAST_ID" && mv "%s/.tmp-$FILECAST_ID" "%s/$FILECAST_NAME"`, marker, out, out, out)
		done := map[string]int{}
		stops := 0
		args := []string{"recv", "cq", "--group", "g", "--member", "m", "--exec", command, "--until-eof", "--json", "--lease", "2s"}
		for attempt := 0; ; attempt++ {
			p := c.start(args...)
			if attempt < 5 {
				time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
				if !p.exited() {
					start := time.Now()
					p.signal(syscall.SIGTERM)
					r := p.waitUpTo(stopBound)
					completions(r.stdout, done)
					if r.code != 130 && r.code != 0 {
						t.Fatalf("stopped after %v: want exit 130 (or 0 if it had just finished):\n%s", time.Since(start), r)
					}
					if out, _ := exec.Command("pgrep", "-f", marker).Output(); len(out) > 0 {
						t.Fatalf("the receiver stopped but its --exec command still runs (pids %s)", strings.Fields(string(out)))
					}
					if r.code == 130 {
						stops++
						if v, _ := c.srv.Do("HGET", "fc:{cq}:g:g", "mark"); v == "" {
							continue
						}
					}
					break
				}
			}
			r := p.wait()
			completions(r.stdout, done)
			expectOK(t, r)
			break
		}
		t.Logf("%d stops", stops)
		// A stop never loses an acknowledgement: nothing completes twice.
		checkDelivered(t, c, "cq", out, files, done, 0)
	})
}
