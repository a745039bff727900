package main

// Helpers for the CLI integration tests in cli_test.go: TestMain builds the
// filecast binary once, and every test runs it as a real subprocess against
// its own private redis-server (internal/redistest), never port 6379.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/redistest"
)

// cliBin is the filecast binary built by TestMain.
var cliBin string

// cliTimeout bounds every foreground run and every wait for a background one.
const cliTimeout = 45 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "filecast-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli tests:", err)
		os.Exit(1)
	}
	cliBin = filepath.Join(dir, "filecast")
	build := exec.Command("go", "build", "-o", cliBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cli tests: building filecast:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := redistest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the filecast binary against one private Redis server.
type cli struct {
	t   *testing.T
	srv *redistest.Server
	url string // FILECAST_REDIS for every run
	// wrap, if set, runs filecast through this command (setpriv, unshare):
	// wrap[0] wrap[1:]... filecast args...
	wrap []string
}

// wrapped returns a cli that runs filecast through the command wrap.
func (c *cli) wrapped(wrap ...string) *cli {
	w := *c
	w.wrap = wrap
	return &w
}

// command returns the command that runs filecast with args.
func (c *cli) command(args ...string) *exec.Cmd {
	if len(c.wrap) == 0 {
		return exec.Command(cliBin, args...)
	}
	return exec.Command(c.wrap[0], append(append(c.wrap[1:len(c.wrap):len(c.wrap)], cliBin), args...)...)
}

// monitor records every command the Redis nodes of url run (redis-cli
// monitor) and keeps the records of a failed test in
// /tmp/mon-<test>-<port>. FILECAST_TEST_MONITOR=1 turns it on: it is how
// a journal entry finished by mistake was found (store.Collect).
func monitor(t *testing.T, url string) {
	for _, m := range regexp.MustCompile(`127\.0\.0\.1(?::|%3A)(\d+)`).FindAllStringSubmatch(url, -1) {
		f := filepath.Join(t.TempDir(), "mon")
		cmd := exec.Command("sh", "-c", "exec redis-cli -p "+m[1]+" monitor > "+f)
		if err := cmd.Start(); err != nil {
			t.Logf("monitor: %v", err)
			return
		}
		t.Cleanup(func() {
			if t.Failed() {
				time.Sleep(100 * time.Millisecond)
				b, _ := os.ReadFile(f)
				os.WriteFile(fmt.Sprintf("/tmp/mon-%s-%s", strings.ReplaceAll(t.Name(), "/", "_"), m[1]), b, 0o644)
			}
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	time.Sleep(50 * time.Millisecond) // the monitors are connected
}

// newCLI starts a private redis-server for t.
func newCLI(t *testing.T, cfg redistest.Config) *cli {
	t.Helper()
	srv := redistest.Start(t, cfg)
	c := &cli{t: t, srv: srv, url: srv.URL()}
	if os.Getenv("FILECAST_TEST_MONITOR") != "" {
		monitor(t, c.url)
	}
	return c
}

// cliResult is what one run of the binary produced.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int // -1 if killed by a signal
}

func (r cliResult) String() string {
	return fmt.Sprintf("filecast %s\n  exit %d\n  stderr: %s", quoteArgs(r.args), r.code,
		strings.ReplaceAll(strings.TrimRight(r.stderr, "\n"), "\n", "\n          "))
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$*?[]{}|&;<>()\\") || len(a) > 60 {
			if len(a) > 60 {
				a = a[:60] + "…"
			}
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// environ is the environment of a subprocess: ours without any Redis
// settings, then FILECAST_REDIS=url, then extra.
func environ(url string, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FILECAST_") || strings.HasPrefix(kv, "REDIS_URL=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "FILECAST_REDIS="+url)
	return append(env, extra...)
}

// run runs filecast with args and waits for it.
func (c *cli) run(args ...string) cliResult {
	c.t.Helper()
	return c.runWith(nil, nil, args...)
}

// runWith runs filecast with stdin and extra environment variables.
func (c *cli) runWith(stdin io.Reader, env []string, args ...string) cliResult {
	c.t.Helper()
	cmd := c.command(args...)
	cmd.Env = environ(c.url, env)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start filecast: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cliTimeout):
		dumpAndKill(cmd.Process, done)
		c.t.Fatalf("filecast %s did not exit within %v; stderr (with its goroutines):\n%s", quoteArgs(args), cliTimeout, errb.String())
	}
	return cliResult{args: args, stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// proc is filecast running in the background.
type proc struct {
	t         *testing.T
	args      []string
	cmd       *exec.Cmd
	out, errf string // files holding stdout and stderr
	done      chan struct{}
	stdin     io.WriteCloser // set by startPiped
}

// start runs filecast in the background. The test's cleanup kills it if it
// is still running.
func (c *cli) start(args ...string) *proc {
	c.t.Helper()
	return c.startWith(nil, false, args...)
}

// startPiped is start with a pipe on the process's stdin (proc.stdin).
func (c *cli) startPiped(args ...string) *proc {
	c.t.Helper()
	return c.startWith(nil, true, args...)
}

func (c *cli) startWith(env []string, piped bool, args ...string) *proc {
	c.t.Helper()
	dir := c.t.TempDir()
	p := &proc{t: c.t, args: args, out: filepath.Join(dir, "stdout"), errf: filepath.Join(dir, "stderr"), done: make(chan struct{})}
	stdout, err := os.Create(p.out)
	if err != nil {
		c.t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(p.errf)
	if err != nil {
		c.t.Fatal(err)
	}
	defer stderr.Close()
	p.cmd = c.command(args...)
	p.cmd.Env = environ(c.url, env)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	if piped {
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start filecast: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		if !p.exited() {
			if c.t.Failed() {
				dumpAndKill(p.cmd.Process, p.done) // its goroutines, for the report below
			} else {
				p.cmd.Process.Kill() // only the process this test started
				<-p.done
			}
		}
		if c.t.Failed() {
			// What every process of a failed test said, for the diagnosis.
			out := p.stderr()
			if len(out) > 64<<10 {
				out = out[:64<<10] + "…"
			}
			c.t.Logf("stderr of filecast %s:\n%s", quoteArgs(args), out)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stderr returns what the process has written to stderr so far.
func (p *proc) stderr() string {
	b, _ := os.ReadFile(p.errf)
	return string(b)
}

// signal sends sig to the process. A process that has just exited is not
// an error: what wait returns tells whether the signal arrived.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("signal %v to filecast %s: %v", sig, quoteArgs(p.args), err)
	}
}

// wait waits for the process to exit and returns its result.
func (p *proc) wait() cliResult {
	p.t.Helper()
	return p.waitUpTo(cliTimeout)
}

// waitUpTo is wait with a limit of its own, for long runs.
func (p *proc) waitUpTo(limit time.Duration) cliResult {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		dumpAndKill(p.cmd.Process, p.done)
		p.t.Fatalf("filecast %s did not exit within %v; stderr (with its goroutines):\n%s", quoteArgs(p.args), limit, p.stderr())
	}
	out, _ := os.ReadFile(p.out)
	return cliResult{args: p.args, stdout: string(out), stderr: p.stderr(), code: p.cmd.ProcessState.ExitCode()}
}

// dumpAndKill ends a process that hangs: SIGQUIT first, so the Go runtime
// writes every goroutine's stack to its stderr for the failure report.
func dumpAndKill(p *os.Process, done <-chan struct{}) {
	p.Signal(syscall.SIGQUIT)
	select {
	case <-done:
		return
	case <-time.After(3 * time.Second):
	}
	p.Kill()
	<-done
}

// errorLines returns the lines of stderr that report a command's error.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "filecast: ") {
			out = append(out, l)
		}
	}
	return out
}

// noCrash fails the test if stderr shows a panic or a Go stack trace.
func noCrash(t *testing.T, r cliResult) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine ", "runtime.", ".go:", "SIGSEGV", "fatal error"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr contains %q (crash or stack trace):\n%s", bad, r)
			return
		}
	}
}

// expectOK checks that a run succeeded without an error line.
func expectOK(t *testing.T, r cliResult) {
	t.Helper()
	noCrash(t, r)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	if el := errorLines(r.stderr); len(el) != 0 {
		t.Errorf("exit 0 but error lines %q:\n%s", el, r)
	}
}

// expectFail checks the exit code and that stderr ends with exactly one
// "filecast: …" line containing every one of want. It returns that line.
func expectFail(t *testing.T, r cliResult, code int, want ...string) string {
	t.Helper()
	noCrash(t, r)
	if r.code != code {
		t.Errorf("want exit %d:\n%s", code, r)
	}
	el := errorLines(r.stderr)
	if len(el) != 1 {
		t.Errorf("want exactly one \"filecast: \" error line, got %d:\n%s", len(el), r)
		if len(el) == 0 {
			return ""
		}
	}
	line := el[len(el)-1]
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("error line %q does not mention %q:\n%s", line, w, r)
		}
	}
	return line
}

// joinGroups creates receiver groups through the library, as a receiver
// would on its first start, so files sent afterwards wait for them.
func joinGroups(t *testing.T, url, channel string, groups ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := filecast.New(ctx, filecast.Options{URL: url, AllowEviction: true})
	if err != nil {
		t.Fatalf("connect to join groups: %v", err)
	}
	defer c.Close()
	for _, g := range groups {
		if err := c.Join(ctx, channel, g); err != nil {
			t.Fatalf("join %s/%s: %v", channel, g, err)
		}
	}
}

// waitFor polls cond every 5ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hasGroup reports whether group has joined channel (XINFO GROUPS).
func hasGroup(srv *redistest.Server, channel, group string) bool {
	out, err := srv.Do("XINFO", "GROUPS", "fc:{"+channel+"}:files")
	if err != nil {
		return false // the stream does not exist yet
	}
	lines := strings.Split(out, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if lines[i] == "name" && lines[i+1] == group {
			return true
		}
	}
	return false
}

// waitJoined waits until a background receiver has joined its group, so a
// file sent now reaches it. It fails early if the receiver exited.
func waitJoined(t *testing.T, srv *redistest.Server, channel, group string, p *proc) {
	t.Helper()
	waitFor(t, 10*time.Second, "group "+group+" to join "+channel, func() bool {
		if p != nil && p.exited() {
			t.Fatalf("receiver exited before joining:\n%s", p.wait())
		}
		return hasGroup(srv, channel, group)
	})
}

// liveIDs returns the ids of the channel's unreleased files, oldest first.
func liveIDs(t *testing.T, srv *redistest.Server, channel string) []string {
	t.Helper()
	out := srv.MustDo(t, "ZRANGE", "fc:{"+channel+"}:live", "0", "-1")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// fileField reads one field of a file record, "" if absent.
func fileField(srv *redistest.Server, channel, id, field string) string {
	v, _ := srv.Do("HGET", "fc:{"+channel+"}:f:"+id, field)
	return v
}

// fileKeys returns the keys of files still in Redis: records, indexes and
// chunks of either protocol, and deletions journaled but not done.
func fileKeys(srv *redistest.Server, channel string) []string {
	return append(append(srv.Keys("fc:{"+channel+"}:f:*"), srv.Keys("fc:{*}:c:"+channel+":*")...), srv.Keys("fc:{"+channel+"}:gc")...)
}

// expectReleased checks that every file of channel was released.
func expectReleased(t *testing.T, srv *redistest.Server, channel string) {
	t.Helper()
	if left := fileKeys(srv, channel); len(left) != 0 {
		t.Errorf("file keys left in redis after every group finished: %q", left)
	}
	if b, _ := srv.Do("GET", "fc:{"+channel+"}:bytes"); b != "" && b != "0" {
		t.Errorf("channel still accounts %s bytes after every file was released", b)
	}
}

// status runs "filecast status CHANNEL --json" and decodes it.
func (c *cli) status(channel string) filecast.ChannelStatus {
	c.t.Helper()
	r := c.run("status", channel, "--json")
	expectOK(c.t, r)
	var rep struct{ Channels []filecast.ChannelStatus }
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		c.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if len(rep.Channels) != 1 || rep.Channels[0].Channel != channel {
		c.t.Fatalf("status %s --json returned %d channels: %s", channel, len(rep.Channels), r.stdout)
	}
	return rep.Channels[0]
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// writeFile writes data at path (creating directories) with mode perm.
func writeFile(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // regardless of umask
		t.Fatal(err)
	}
}

// tree lists every entry below root (files, directories, symlinks, hidden
// ones included) as slash-separated relative paths.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// partFiles lists the hidden partial files below root.
func partFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, p := range tree(t, root) {
		if strings.HasPrefix(filepath.Base(p), ".filecast-") {
			out = append(out, p)
		}
	}
	return out
}

// sameFile checks that path holds exactly want.
func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read received file: %v", err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)", path, len(got), digest(got), len(want), digest(want))
	}
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// count returns how many lines of s contain sub.
func count(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// chunksOf returns the keys of chunk seq ("*": of every chunk) of every
// file of channel, of either protocol (docs/PROTOCOL.md §3): in the
// channel's slot, or spread over a cluster.
func chunksOf(srv *redistest.Server, channel, seq string) []string {
	return append(srv.Keys("fc:{"+channel+"}:f:*:c:"+seq), srv.Keys("fc:{*}:c:"+channel+":*:*:"+seq)...)
}

// plantFile writes a complete one-chunk file record straight into Redis,
// the way a sender would (see internal/store/scripts/begin.lua, commit.lua
// and complete.lua), with fields overriding the record's defaults, and
// announces it to groups. It returns the files-stream entry.
func plantFile(t *testing.T, srv *redistest.Server, channel, id, name string, content []byte, groups []string) string {
	t.Helper()
	base := "fc:{" + channel + "}:"
	fk := base + "f:" + id
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	size := strconv.Itoa(len(content))
	sum := chunk.Sum(content).String()
	srv.MustDo(t, "SET", fk+":c:1", string(content))
	srv.MustDo(t, "XADD", fk+":idx", "0-1", "n", size, "h", sum)
	srv.MustDo(t, "XADD", fk+":idx", "0-2", "eof", "1", "size", size, "h", sum)
	srv.MustDo(t, "HSET", fk,
		"state", "complete", "created", now, "hb", now, "n", "1", "lo", "1", "r", "1", "held", size,
		"v", "1", "kind", "file", "name", name, "mode", "644",
		"mtime", strconv.FormatInt(time.Now().UnixNano(), 10), "chunk", strconv.Itoa(filecast.DefaultChunkSize),
		"size", size, "alg", "xxh3-128", "sender", "planted/1/test", "digest", sum)
	srv.MustDo(t, append([]string{"SADD", fk + ":need"}, groups...)...)
	srv.MustDo(t, "INCRBY", base+"bytes", size)
	entry := srv.MustDo(t, "XADD", base+"files", "*", "f", id)
	srv.MustDo(t, "HSET", fk, "entry", entry)
	srv.MustDo(t, "ZADD", base+"live", now, id)
	return entry
}
