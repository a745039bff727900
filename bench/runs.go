package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/filecast/filecast"
)

const channel = "bench"

// proc is one filecast command started by the bench.
type proc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	hwm    atomic.Int64 // peak RSS, polled from /proc
	done   chan struct{}
	cpu    time.Duration // user + system time, once it exited
}

// start runs the filecast binary with args against the bench's server.
func (e *env) start(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) (*proc, error) {
	p := &proc{cmd: exec.CommandContext(ctx, e.bin, args...)}
	p.cmd.Env = append(os.Environ(), "FILECAST_REDIS="+e.url)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdin, stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.done = make(chan struct{})
	go p.poll()
	return p, nil
}

// poll follows the process's peak RSS (VmHWM) until it exits. The kernel's
// own figure, ru_maxrss from wait4, is no use here: it includes the RSS of
// the bench process that forked the command.
func (p *proc) poll() {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					p.hwm.Store(max(p.hwm.Load(), kb<<10))
				}
			}
		}
		select {
		case <-t.C:
		case <-p.done:
			return
		}
	}
}

// wait waits for the command and returns its peak RSS in bytes, as last
// seen (at most 2 ms before it exited).
func (p *proc) wait() (int64, error) {
	err := p.cmd.Wait()
	close(p.done)
	if p.cmd.ProcessState != nil {
		p.cmd.ProcessState.SysUsage()
		p.cpu = p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", strings.Join(p.cmd.Args[1:], " "), err, lastLines(p.stderr.String(), 5))
	}
	return p.hwm.Load(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// client connects the library to the bench's server.
func (e *env) client(ctx context.Context) (*filecast.Client, error) {
	return filecast.New(ctx, filecast.Options{URL: e.url})
}

// join makes the groups receivers of the bench channel.
func (e *env) join(ctx context.Context, groups ...string) error {
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, g := range groups {
		if err := c.Join(ctx, channel, g); err != nil {
			return err
		}
	}
	return nil
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i+1)
	}
	return out
}

// uploadAndDeliver uploads the dataset once, to every group the delivery
// and line runs need, then lets each set of groups receive it.
//
// On a cluster (e.cluster set) the figures are named "cluster: …", the
// ceilings are the cluster's, the deliveries are to 1 and 4 groups,
// discarded, and the share of the chunk bytes each primary holds is
// reported after the upload.
func (e *env) uploadAndDeliver(ctx context.Context, rep *report) error {
	if err := e.flush(); err != nil {
		return err
	}
	type delivery struct {
		name   string
		groups []string
		dir    bool
	}
	var runs []delivery
	for _, n := range e.cfg.Groups {
		if e.cluster == nil || n <= 4 {
			runs = append(runs, delivery{fmt.Sprintf("deliver to %d group(s), discard", n), names(fmt.Sprintf("d%d-", n), n), false})
		}
	}
	for _, n := range e.cfg.Groups {
		if e.cluster == nil && n <= 4 {
			runs = append(runs, delivery{fmt.Sprintf("deliver to %d group(s), --dir", n), names(fmt.Sprintf("w%d-", n), n), true})
		}
	}
	label, conn := "", e.cfg.Conn
	if e.cluster != nil {
		label, conn = "cluster: ", "cluster"
	}
	all := []string{"lines"}
	for _, r := range runs {
		all = append(all, r.groups...)
	}
	if err := e.join(ctx, all...); err != nil {
		return err
	}

	// Upload: the wall time of filecast send, budget large enough to hold it all.
	args := append([]string{"send", channel, "--eof", "--max-bytes", strconv.FormatInt(2*e.data.bytes+(1<<30), 10)}, e.data.files...)
	m := e.meter(ctx)
	t0 := time.Now()
	p, err := e.start(ctx, nil, nil, args...)
	if err != nil {
		return err
	}
	rss, err := p.wait()
	if err != nil {
		return err
	}
	el := time.Since(t0)
	c := rep.ceiling(conn)
	rep.add(label+"upload (filecast send)", float64(e.data.bytes)/el.Seconds(), c.set, "SET")
	rep.cpu(label+"upload (filecast send)", m.stop(ctx, el, p))
	rep.add(label+"sender peak RSS, upload", float64(rss), 64<<20, "")
	e.log("%supload: %s in %v", label, rate(float64(e.data.bytes)/el.Seconds()), el.Round(time.Millisecond))
	if e.cluster != nil {
		// How evenly the chunk bytes spread: the largest primary's share
		// against an even one.
		var total, largest int64
		for _, kb := range e.cluster.KeysPerPrimary("fc:*:c:*") { // either protocol's chunk keys
			total += kb[1]
			largest = max(largest, kb[1])
		}
		primaries := float64(len(e.cluster.Primaries()))
		rep.addUnit(label+"largest primary's share of the chunk bytes", "%", 100*float64(largest)/float64(total), 100/primaries, "an even share")
	}

	for _, r := range runs {
		agg, rss, use, err := e.deliver(ctx, r.groups, r.dir)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		ceil, cname := c.get4, "GET, 4 readers"
		if len(r.groups) == 1 {
			ceil, cname = c.get1, "GET, 1 reader"
		}
		rep.add(label+r.name, agg, ceil, cname)
		rep.cpu(label+r.name, use)
		rep.add(label+"receiver peak RSS, "+strings.TrimPrefix(r.name, "deliver to "), float64(rss), 64<<20, "")
		e.log("%s%s: %s aggregate", label, r.name, rate(agg))
	}
	if e.cluster != nil {
		return nil
	}
	return e.lines(ctx, rep)
}

// deliver runs one receiver per group until the end-of-batch mark and
// returns the aggregate bytes per second, the largest peak RSS and the CPU
// used.
func (e *env) deliver(ctx context.Context, groups []string, toDir bool) (float64, int64, cpuUse, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, 0, cpuUse{}, err
	}
	defer devnull.Close()
	var ps []*proc
	m := e.meter(ctx)
	t0 := time.Now()
	for _, g := range groups {
		args := []string{"recv", channel, "--group", g, "--until-eof"}
		var out io.Writer
		if toDir {
			args = append(args, "--dir", filepath.Join(e.work, "out", g))
		} else {
			args = append(args, "--stdout")
			out = devnull
		}
		p, err := e.start(ctx, nil, out, args...)
		if err != nil {
			return 0, 0, cpuUse{}, err
		}
		ps = append(ps, p)
	}
	var peak int64
	var errs []error
	for _, p := range ps {
		rss, err := p.wait()
		errs = append(errs, err)
		peak = max(peak, rss)
	}
	el := time.Since(t0)
	use := m.stop(ctx, el, ps...)
	if err := errors.Join(errs...); err != nil {
		return 0, 0, use, err
	}
	if toDir {
		for _, g := range groups {
			if err := e.checkDir(filepath.Join(e.work, "out", g)); err != nil {
				return 0, 0, use, err
			}
		}
		os.RemoveAll(filepath.Join(e.work, "out"))
	}
	return float64(len(groups)) * float64(e.data.bytes) / el.Seconds(), peak, use, nil
}

// checkDir checks that dir holds every file of the dataset, whole.
func (e *env) checkDir(dir string) error {
	for _, f := range e.data.files {
		want, err1 := os.ReadFile(f)
		got, err2 := os.ReadFile(filepath.Join(dir, filepath.Base(f)))
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs from the file sent", filepath.Join(dir, filepath.Base(f)))
		}
	}
	return nil
}

// endToEnd starts 4 receiving groups and then the sender, under the
// budget, and times the sender's start to the last receiver's end.
func (e *env) endToEnd(ctx context.Context, rep *report) error {
	if err := e.flush(); err != nil {
		return err
	}
	groups := names("e", 4)
	if err := e.join(ctx, groups...); err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	var ps []*proc
	for _, g := range groups {
		p, err := e.start(ctx, nil, devnull, "recv", channel, "--group", g, "--until-eof", "--stdout")
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	args := append([]string{"send", channel, "--eof", "--max-bytes", strconv.FormatInt(e.cfg.Budget, 10)}, e.data.files...)
	m := e.meter(ctx)
	t0 := time.Now()
	sender, err := e.start(ctx, nil, nil, args...)
	if err != nil {
		return err
	}
	_, err = sender.wait()
	errs := []error{err}
	for _, p := range ps {
		if err != nil {
			p.cmd.Process.Kill() // it would wait for the end of the batch forever
		}
		_, err := p.wait()
		errs = append(errs, err)
	}
	el := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c := rep.ceiling(e.cfg.Conn)
	b := float64(e.data.bytes)
	ideal := max(b/c.set, 4*b/c.get4)
	rep.addLower("end to end, sender + 4 groups", el.Seconds(), ideal, "ideal: max(upload alone, 4-reader delivery alone)")
	// Redis runs commands on one thread: it cannot store and serve at once.
	rep.addLower("end to end, against Redis's one thread", el.Seconds(), b/c.set+4*b/c.get4, "upload alone + 4-reader delivery alone")
	rep.cpu("end to end, sender + 4 groups", m.stop(ctx, el, append(ps, sender)...))
	e.log("end to end: %v (ideal %.3fs)", el.Round(time.Millisecond), ideal)
	return nil
}

// firstByte times the start of a send to the first byte a waiting
// receiving group reads: through the library (Client.SendFile called), and
// as a user sees it (a filecast send process started). The receiver is
// this process's library in both, so the times are read on one clock.
func (e *env) firstByte(ctx context.Context, rep *report) error {
	if err := e.flush(); err != nil {
		return err
	}
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Join(ctx, channel, "fb"); err != nil {
		return err
	}
	var mu sync.Mutex
	var t0 time.Time
	first := make(chan time.Duration, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	received := make(chan error, 1)
	handled := make(chan filecast.Result, 1)
	go func() {
		received <- c.Receive(rctx, channel, func(ctx context.Context, f *filecast.File) error {
			var b [1]byte
			if _, err := io.ReadFull(f, b[:]); err != nil {
				return err
			}
			mu.Lock()
			first <- time.Since(t0)
			mu.Unlock()
			return nil
		}, filecast.ReceiveOptions{Group: "fb", OnResult: func(r filecast.Result) { handled <- r }})
	}()
	path := e.data.largest()
	measure := func(name string, send func() error) error {
		for range 5 {
			mu.Lock()
			t0 = time.Now()
			mu.Unlock()
			if err := send(); err != nil {
				return err
			}
			select {
			case d := <-first:
				rep.addLower(name, d.Seconds()*1000, 20, "target (ms)")
			case err := <-received:
				return fmt.Errorf("receiver stopped: %w", err)
			case <-time.After(time.Minute):
				return errors.New("no byte arrived within a minute")
			}
			// The next send starts once the receiver is idle again.
			if r := <-handled; r.Err != nil {
				return r.Err
			}
		}
		return nil
	}
	if err := measure("first byte at a receiver, from SendFile", func() error {
		_, err := c.SendFile(ctx, channel, path, "", filecast.SendOptions{})
		return err
	}); err != nil {
		return err
	}
	return measure("first byte at a receiver, from the start of filecast send", func() error {
		p, err := e.start(ctx, nil, nil, "send", channel, path)
		if err != nil {
			return err
		}
		if _, err := p.wait(); err != nil {
			return fmt.Errorf("filecast send: %w: %s", err, p.stderr.String())
		}
		return nil
	})
}

// lines counts lines per file, gzip decoded, through the library (the
// dataset was uploaded to group "lines") and over the local files.
func (e *env) lines(ctx context.Context, rep *report) error {
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var mu sync.Mutex
	var viaLib int64
	m := e.meter(ctx)
	t0 := time.Now()
	err = c.Receive(ctx, channel, func(ctx context.Context, f *filecast.File) error {
		n, err := countLines(f)
		mu.Lock()
		viaLib += n
		mu.Unlock()
		return err
	}, filecast.ReceiveOptions{Group: "lines", UntilEOF: true})
	lib := time.Since(t0)
	use := m.stop(ctx, lib)
	if err != nil {
		return err
	}
	t0 = time.Now()
	var local int64
	for _, path := range e.data.files {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		n, err := countLines(f)
		f.Close()
		if err != nil {
			return err
		}
		local += n
	}
	loc := time.Since(t0)
	if viaLib != e.data.lines || local != e.data.lines {
		return fmt.Errorf("counted %d lines through the library and %d locally; the dataset has %d", viaLib, local, e.data.lines)
	}
	b := float64(e.data.logBytes)
	rep.add("count lines through the library", b/lib.Seconds(), b/loc.Seconds(), "plain Go count of the local files")
	rep.cpu("count lines through the library", use)
	return nil
}

// countLines counts the lines of r, decoded if it is compressed: the same
// code for the library's files and the local ones.
func countLines(r io.Reader) (int64, error) {
	dr, done, err := filecast.Decompress(r)
	if err != nil {
		return 0, err
	}
	defer done()
	var n int64
	for _, err := range filecast.Lines(dr) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// memory streams a generated stream of cfg.Big bytes through a channel of
// budget cfg.Budget to one group, sampling Redis's memory meanwhile.
func (e *env) memory(ctx context.Context, rep *report) error {
	if e.cfg.Big == 0 {
		return nil
	}
	if err := e.flush(); err != nil {
		return err
	}
	if err := e.join(ctx, "m"); err != nil {
		return err
	}
	s, err := startSampler(ctx, e.srv.URL())
	if err != nil {
		return err
	}
	base := s.now(ctx)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	recv, err := e.start(ctx, nil, devnull, "recv", channel, "--group", "m", "--until-eof", "--stdout")
	if err != nil {
		return err
	}
	// A real pipe, written in chunk-sized blocks, so the producer is not
	// what limits the sender (exec's own copying goroutine writes 32 KiB
	// at a time).
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	m := e.meter(ctx)
	t0 := time.Now()
	send, err := e.start(ctx, pr, nil, "send", channel, "-", "--name", "big.log", "--eof", "--max-bytes", strconv.FormatInt(e.cfg.Budget, 10))
	pr.Close() // the child has its own copy
	if err != nil {
		pw.Close()
		return err
	}
	go func() {
		e.data.stream(pw, e.cfg.Big)
		pw.Close()
	}()
	sendRSS, err1 := send.wait()
	if err1 != nil {
		recv.cmd.Process.Kill() // it would wait for the end of the batch forever
	}
	recvRSS, err2 := recv.wait()
	el := time.Since(t0)
	use := m.stop(ctx, el, send, recv)
	peak := s.stop()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	limit := 1.05*float64(e.cfg.Budget) + 16<<20
	big := fmt.Sprintf("%s stream", strings.ReplaceAll(fmtBytes(e.cfg.Big), " ", ""))
	rep.add("Redis memory growth, "+big, float64(peak-base), limit, "1.05 × budget + 16 MiB")
	rep.add("sender peak RSS, "+big, float64(sendRSS), 64<<20, "")
	rep.add("receiver peak RSS, "+big, float64(recvRSS), 64<<20, "")
	// Streaming through a full budget, Redis's one thread stores, serves
	// and frees every chunk: the bound is both rates in series.
	c := rep.ceiling(e.cfg.Conn)
	rep.add("throughput, "+big+" through the budget", float64(e.cfg.Big)/el.Seconds(), 1/(1/c.set+1/c.get1), "1/(1/SET + 1/GET 1 reader)")
	rep.cpu("throughput, "+big+" through the budget", use)
	e.log("memory: %s in %v, Redis grew %s (budget %s), RSS sender %s receiver %s", big, el.Round(time.Millisecond),
		fmtBytes(peak-base), fmtBytes(e.cfg.Budget), fmtBytes(sendRSS), fmtBytes(recvRSS))
	return nil
}

// largest returns the path of the largest uncompressed file.
func (d *dataset) largest() string {
	best, size := d.files[0], int64(-1)
	for _, f := range d.files {
		if st, err := os.Stat(f); err == nil && st.Size() > size && !strings.HasSuffix(f, ".gz") {
			best, size = f, st.Size()
		}
	}
	return best
}

// stream writes n bytes of the dataset, over and over, to w.
func (d *dataset) stream(w io.Writer, n int64) error {
	for n > 0 {
		for _, c := range d.chunks {
			c = c[:min(int64(len(c)), n)]
			if _, err := w.Write(c); err != nil {
				return err
			}
			n -= int64(len(c))
			if n == 0 {
				return nil
			}
		}
	}
	return nil
}

// sampler polls Redis's used_memory and keeps the peak.
type sampler struct {
	rc     rueidis.Client
	cancel context.CancelFunc
	done   chan struct{}
	peak   int64
}

func startSampler(ctx context.Context, url string) (*sampler, error) {
	rc, err := newRaw(url, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{rc: rc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			s.peak = max(s.peak, s.now(ctx))
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s, nil
}

// now returns the server's used_memory.
func (s *sampler) now(ctx context.Context) int64 {
	info, err := s.rc.Do(ctx, s.rc.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		return 0
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// stop ends sampling and returns the peak.
func (s *sampler) stop() int64 {
	s.cancel()
	<-s.done
	s.rc.Close()
	return s.peak
}

// cpuUse is the CPU a measurement used, in cores (CPU seconds per second
// of wall time): what says whether it was bound by the machine's 2 cores.
type cpuUse struct {
	Redis, Filecast float64
}

// meter measures the CPU Redis, the bench process itself and commands
// started by it use over one measurement.
type meter struct {
	e           *env
	redis, self time.Duration
}

func (e *env) meter(ctx context.Context) meter {
	return meter{e: e, redis: e.redisCPU(ctx), self: selfCPU()}
}

// stop returns the CPU used since meter, over wall, by Redis and by the
// bench process plus ps (which must have exited).
func (m meter) stop(ctx context.Context, wall time.Duration, ps ...*proc) cpuUse {
	client := selfCPU() - m.self
	for _, p := range ps {
		client += p.cpu
	}
	return cpuUse{
		Redis:    (m.e.redisCPU(ctx) - m.redis).Seconds() / wall.Seconds(),
		Filecast: client.Seconds() / wall.Seconds(),
	}
}

// redisCPU returns the CPU time the server has used (INFO cpu).
func (e *env) redisCPU(ctx context.Context) time.Duration {
	info, err := e.srv.Do("INFO", "cpu")
	if err != nil {
		return 0
	}
	var total float64
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// smallFiles measures the per-file cost: Small files of 4 KiB sent as one
// directory to one group, then received (--stdout and --dir), in files per
// second, against a raw client storing the same values one SET at a time
// (one round trip per file, the least any protocol that waits for Redis
// can do).
func (e *env) smallFiles(ctx context.Context, rep *report) error {
	if err := e.flush(); err != nil {
		return err
	}
	n := e.cfg.Small
	dir, err := os.MkdirTemp("", "filecast-bench-small")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return err
	}
	value := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%05d", i)), value, 0o644); err != nil {
			return err
		}
	}

	// The raw reference: one SET per file, each waiting for its reply.
	rc, err := newRaw(e.url, true)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for i := range n {
		if err := rc.Do(ctx, rc.B().Set().Key(fmt.Sprintf("raw:%d", i)).Value(rueidis.BinaryString(value)).Build()).Error(); err != nil {
			rc.Close()
			return err
		}
	}
	raw := float64(n) / time.Since(t0).Seconds()
	rc.Close()
	if err := e.flush(); err != nil {
		return err
	}

	for i, sink := range [][]string{{"--stdout"}, {"--dir", filepath.Join(dir, "out")}} {
		group := fmt.Sprintf("small%d", i)
		if err := e.join(ctx, group); err != nil {
			return err
		}
		m := e.meter(ctx)
		t0 := time.Now()
		sender, err := e.start(ctx, nil, nil, "send", channel, src, "--eof")
		if err != nil {
			return err
		}
		if _, err := sender.wait(); err != nil {
			return err
		}
		sent := time.Since(t0)
		if i == 0 {
			rep.addUnit(fmt.Sprintf("send %d files of 4 KiB", n), "files/s", float64(n)/sent.Seconds(), raw, "one SET per file, one at a time")
			rep.cpu(fmt.Sprintf("send %d files of 4 KiB", n), m.stop(ctx, sent, sender))
		}
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		m = e.meter(ctx)
		t0 = time.Now()
		p, err := e.start(ctx, nil, devnull, append([]string{"recv", channel, "--group", group, "--until-eof"}, sink...)...)
		if err != nil {
			devnull.Close()
			return err
		}
		_, err = p.wait()
		devnull.Close()
		if err != nil {
			return err
		}
		el := time.Since(t0)
		if sink[0] == "--dir" {
			if got, err := os.ReadDir(sink[1]); err != nil || len(got) != n {
				return fmt.Errorf("--dir holds %d files, want %d (%v)", len(got), n, err)
			}
		}
		name := fmt.Sprintf("receive %d files of 4 KiB, %s", n, sink[0])
		rep.addUnit(name, "files/s", float64(n)/el.Seconds(), raw, "one SET per file, one at a time")
		rep.cpu(name, m.stop(ctx, el, p))
		e.log("%s: %v", name, el.Round(time.Millisecond))
		if err := e.flush(); err != nil {
			return err
		}
	}
	return nil
}
