package main

// Integration tests of the filecast command. TestMain (cli_helpers_test.go)
// builds the binary once; each test starts a private redis-server and runs
// the binary as subprocesses, checking exit codes, the one-line error
// messages, and that no file is lost, duplicated, or written where it must
// not be.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// 1. A directory with nested files goes to a --dir receiver that is running
// while it is sent: bytes, mode and mtime arrive, no partial file is left,
// and every file is released from Redis.
func TestCLISendDirToDir(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src, out := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "out")
	type want struct {
		data  []byte
		mode  os.FileMode
		mtime time.Time
	}
	files := map[string]want{
		"top.txt":                {[]byte("hello, filecast\n"), 0o644, time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)},
		"empty":                  {[]byte{}, 0o644, time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)},
		"sub/data.bin":           {randomBytes(1, 300_000), 0o640, time.Date(2015, 6, 7, 8, 9, 10, 0, time.UTC)},
		"sub/deeper/secret.conf": {[]byte("password = hunter2\n"), 0o600, time.Date(1999, 12, 31, 23, 59, 59, 500, time.UTC)},
	}
	for name, w := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		writeFile(t, p, w.data, w.mode)
		if err := os.Chtimes(p, w.mtime, w.mtime); err != nil {
			t.Fatal(err)
		}
	}

	recv := c.start("recv", "tree", "--group", "g1", "--dir", out, "--until-eof", "--lease", "2s")
	waitJoined(t, c.srv, "tree", "g1", recv)
	r := c.run("send", "tree", src, "--eof", "--lease", "2s")
	expectOK(t, r)
	for name := range files {
		if count(r.stderr, "sent "+name+" ") != 1 {
			t.Errorf("send did not report %s once:\n%s", name, r)
		}
	}
	if !strings.Contains(r.stderr, "marked end of batch on tree") {
		t.Errorf("send --eof did not report the end-of-batch mark:\n%s", r)
	}

	rr := recv.wait()
	expectOK(t, rr)
	if !strings.Contains(rr.stderr, "end of batch on tree for group g1") {
		t.Errorf("recv did not report the end of the batch:\n%s", rr)
	}
	for name, w := range files {
		if n := count(rr.stderr, "received "+name+" "); n != 1 {
			t.Errorf("recv reported %s %d times, want once:\n%s", name, n, rr)
		}
		p := filepath.Join(out, filepath.FromSlash(name))
		sameFile(t, p, w.data)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.Mode().Perm() != w.mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), w.mode)
		}
		if !st.ModTime().Equal(w.mtime) {
			t.Errorf("%s: mtime %v, want %v", name, st.ModTime().UTC(), w.mtime)
		}
	}
	wantTree := []string{"empty", "sub", "sub/data.bin", "sub/deeper", "sub/deeper/secret.conf", "top.txt"}
	if got := tree(t, out); !slices.Equal(got, wantTree) {
		t.Errorf("target directory holds %q, want %q (no partial files)", got, wantTree)
	}
	expectReleased(t, c.srv, "tree")
}

// 2a. --exec runs the command once per file with the bytes on stdin and the
// FILECAST_* variables set.
func TestCLIExec(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src, out := t.TempDir(), t.TempDir()
	files := map[string][]byte{"a.txt": []byte("line one\nline two\n"), "b.bin": randomBytes(2, 150_000), "c.empty": {}}
	var paths []string
	for name, data := range files {
		writeFile(t, filepath.Join(src, name), data, 0o644)
		paths = append(paths, filepath.Join(src, name))
	}
	joinGroups(t, c.url, "ex", "runner")
	expectOK(t, c.run(append(append([]string{"send", "ex"}, paths...), "--eof")...))

	cmd := `cat > "$OUTDIR/$FILECAST_NAME.out" && ` +
		`printf '%s\n' "$FILECAST_NAME" "$FILECAST_SIZE" "$FILECAST_CHANNEL" "$FILECAST_GROUP" "$FILECAST_ID" > "$OUTDIR/$FILECAST_NAME.env"`
	r := c.runWith(nil, []string{"OUTDIR=" + out}, "recv", "ex", "--group", "runner", "--exec", cmd, "--until-eof", "--lease", "2s")
	expectOK(t, r)
	for name, data := range files {
		sameFile(t, filepath.Join(out, name+".out"), data)
		env, err := os.ReadFile(filepath.Join(out, name+".env"))
		if err != nil {
			t.Errorf("%s: command did not record its environment: %v", name, err)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(env), "\n"), "\n")
		want := []string{name, fmt.Sprint(len(data)), "ex", "runner"}
		if len(lines) != 5 || !slices.Equal(lines[:4], want) || len(lines[4]) != 16 {
			t.Errorf("%s: FILECAST_NAME, _SIZE, _CHANNEL, _GROUP, _ID = %q, want %q and a 16-digit id", name, lines, want)
		}
		if n := count(r.stderr, "received "+name+" "); n != 1 {
			t.Errorf("recv reported %s %d times, want once:\n%s", name, n, r)
		}
	}
	expectReleased(t, c.srv, "ex")
}

// 2b. A command that fails on a file: after --retries more attempts the file
// is FAILED and recorded in status, the next file is still handled, and
// recv --until-eof exits 1.
func TestCLIExecFailure(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src, out := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "bad.txt"), []byte("this one fails\n"), 0o644)
	writeFile(t, filepath.Join(src, "good.txt"), []byte("this one works\n"), 0o644)
	joinGroups(t, c.url, "exf", "runner")
	expectOK(t, c.run("send", "exf", filepath.Join(src, "bad.txt"), filepath.Join(src, "good.txt"), "--eof"))

	cmd := `echo attempt >> "$OUTDIR/$FILECAST_NAME.attempts"; ` +
		`case "$FILECAST_NAME" in bad*) exit 1;; esac; cat > "$OUTDIR/$FILECAST_NAME"`
	r := c.runWith(nil, []string{"OUTDIR=" + out}, "recv", "exf", "--group", "runner", "--exec", cmd,
		"--retries", "1", "--until-eof", "--lease", "2s")
	expectFail(t, r, 1, "file failed", "filecast status exf")
	if !strings.Contains(r.stderr, "FAILED bad.txt after 2 attempt(s)") || !strings.Contains(r.stderr, "exited with status 1") {
		t.Errorf("recv did not report bad.txt as FAILED after 2 attempts with the exit status:\n%s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "bad.txt.attempts")); strings.Count(string(b), "attempt") != 2 {
		t.Errorf("command ran %d times on bad.txt, want 2 (1 + --retries 1)", strings.Count(string(b), "attempt"))
	}
	if count(r.stderr, "received good.txt ") != 1 {
		t.Errorf("the file after the failed one was not handled:\n%s", r)
	}
	sameFile(t, filepath.Join(out, "good.txt"), []byte("this one works\n"))

	st := c.status("exf")
	var failed []string
	for _, g := range st.Groups {
		if g.Name != "runner" {
			continue
		}
		for _, f := range g.Failed {
			failed = append(failed, f.Name)
			if !strings.Contains(f.Reason, "exited with status 1") {
				t.Errorf("status: failure reason %q does not say why", f.Reason)
			}
		}
	}
	if !slices.Equal(failed, []string{"bad.txt"}) {
		t.Errorf("status --json: group runner failed = %q, want [bad.txt]", failed)
	}
	// The failed file is kept for the group (a dead letter), data and all,
	// until clean --failed lets it go.
	if len(st.Files) != 1 || st.Files[0].Name != "bad.txt" || st.Groups[0].Failed[0].State != "kept" {
		t.Errorf("after the failure: files %+v, failed %+v; want bad.txt kept for the group", st.Files, st.Groups[0].Failed)
	}
	r = c.run("clean", "exf", "--failed")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "released 1 failed file") {
		t.Errorf("clean --failed does not say what it released:\n%s", r)
	}
	expectReleased(t, c.srv, "exf")
	if st := c.status("exf"); st.Groups[0].Failed[0].State != "dropped" {
		t.Errorf("after clean --failed the record says %q, want dropped", st.Groups[0].Failed[0].State)
	}
}

// 2c. --retries 0 means no retry: the command runs once.
func TestCLIExecRetriesZero(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src, out := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "bad.txt"), []byte("x"), 0o644)
	joinGroups(t, c.url, "ex0", "runner")
	expectOK(t, c.run("send", "ex0", filepath.Join(src, "bad.txt"), "--eof"))
	r := c.runWith(nil, []string{"OUTDIR=" + out}, "recv", "ex0", "--group", "runner",
		"--exec", `echo attempt >> "$OUTDIR/attempts"; exit 1`, "--retries", "0", "--until-eof", "--lease", "2s")
	expectFail(t, r, 1, "file failed")
	if !strings.Contains(r.stderr, "FAILED bad.txt after 1 attempt(s)") {
		t.Errorf("want bad.txt FAILED after 1 attempt with --retries 0:\n%s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "attempts")); strings.Count(string(b), "attempt") != 1 {
		t.Errorf("command ran %d times with --retries 0, want 1", strings.Count(string(b), "attempt"))
	}
}

// 3. stdin to --stdout, and gzip content to --stdout --decompress and to
// --dir --decompress.
func TestCLIStdinStdoutDecompress(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})

	t.Run("stdin to stdout", func(t *testing.T) {
		content := append([]byte("first line\nsecond line\x00\xff\xfe\n"), randomBytes(3, 70_000)...)
		joinGroups(t, c.url, "pipe", "g")
		r := c.runWith(bytes.NewReader(content), nil, "send", "pipe", "-", "--name", "x.txt", "--eof")
		expectOK(t, r)
		if !strings.Contains(r.stderr, "sent x.txt ") {
			t.Errorf("send did not report x.txt:\n%s", r)
		}
		rr := c.run("recv", "pipe", "--group", "g", "--stdout", "--until-eof", "--lease", "2s")
		expectOK(t, rr)
		if !bytes.Equal([]byte(rr.stdout), content) {
			t.Errorf("stdout: got %d bytes (%s), want %d bytes (%s)", len(rr.stdout), digest([]byte(rr.stdout)), len(content), digest(content))
		}
		if !strings.Contains(rr.stderr, "received x.txt ") {
			t.Errorf("recv --stdout did not report x.txt on stderr:\n%s", rr)
		}
		expectReleased(t, c.srv, "pipe")
	})

	t.Run("gzip", func(t *testing.T) {
		var plain bytes.Buffer
		for i := range 20_000 {
			fmt.Fprintf(&plain, "log line %d: something happened\n", i)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(plain.Bytes())
		zw.Close()
		src, out := t.TempDir(), t.TempDir()
		writeFile(t, filepath.Join(src, "data.txt.gz"), gz.Bytes(), 0o644)
		joinGroups(t, c.url, "gz", "tostdout", "todir")
		expectOK(t, c.run("send", "gz", filepath.Join(src, "data.txt.gz"), "--eof"))

		r := c.run("recv", "gz", "--group", "tostdout", "--stdout", "--decompress", "--until-eof", "--lease", "2s")
		expectOK(t, r)
		if !bytes.Equal([]byte(r.stdout), plain.Bytes()) {
			t.Errorf("--stdout --decompress: got %d bytes, want the %d plain bytes", len(r.stdout), plain.Len())
		}
		r = c.run("recv", "gz", "--group", "todir", "--dir", out, "--decompress", "--until-eof", "--lease", "2s")
		expectOK(t, r)
		sameFile(t, filepath.Join(out, "data.txt"), plain.Bytes())
		if got := tree(t, out); !slices.Equal(got, []string{"data.txt"}) {
			t.Errorf("--dir --decompress wrote %q, want [data.txt]", got)
		}
		expectReleased(t, c.srv, "gz")
	})
}

// 4. Two fan-out groups each get every file once; the two members of a
// work-sharing group get each file exactly once between them.
func TestCLIFanOutAndSharedGroup(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := filepath.Join(t.TempDir(), "src")
	files := map[string][]byte{}
	for i := range 12 {
		name := fmt.Sprintf("f%02d.dat", i)
		files[name] = randomBytes(uint64(100+i), 10_000+i*7_000)
		writeFile(t, filepath.Join(src, name), files[name], 0o644)
	}
	joinGroups(t, c.url, "fan", "alpha", "beta", "shared")
	dirs := map[string]string{}
	procs := map[string]*proc{}
	for _, m := range []string{"alpha", "beta", "w1", "w2"} {
		dirs[m] = filepath.Join(t.TempDir(), m)
		args := []string{"recv", "fan", "--dir", dirs[m], "--until-eof", "--lease", "2s"}
		switch m {
		case "w1", "w2":
			args = append(args, "--group", "shared", "--member", m)
		case "beta":
			args = append(args, "--group", m, "--concurrency", "4")
		default:
			args = append(args, "--group", m)
		}
		procs[m] = c.start(args...)
	}
	expectOK(t, c.run("send", "fan", src, "--eof"))
	results := map[string]cliResult{}
	for m, p := range procs {
		results[m] = p.wait()
		expectOK(t, results[m])
	}

	for _, g := range []string{"alpha", "beta"} {
		for name, data := range files {
			sameFile(t, filepath.Join(dirs[g], name), data)
			if n := count(results[g].stderr, "received "+name+" "); n != 1 {
				t.Errorf("group %s received %s %d times, want once", g, name, n)
			}
		}
		if got := tree(t, dirs[g]); len(got) != len(files) {
			t.Errorf("group %s wrote %d entries, want %d: %q", g, len(got), len(files), got)
		}
	}
	perMember := map[string]int{}
	for name, data := range files {
		n := 0
		for _, m := range []string{"w1", "w2"} {
			k := count(results[m].stderr, "received "+name+" ")
			n += k
			perMember[m] += k
			if _, err := os.Stat(filepath.Join(dirs[m], name)); err == nil {
				sameFile(t, filepath.Join(dirs[m], name), data)
			} else if k > 0 {
				t.Errorf("member %s reported %s but it is not in its directory", m, name)
			}
		}
		if n != 1 {
			t.Errorf("shared group received %s %d times between its members, want exactly once", name, n)
		}
	}
	if got := len(tree(t, dirs["w1"])) + len(tree(t, dirs["w2"])); got != len(files) {
		t.Errorf("shared group's members wrote %d entries between them, want %d", got, len(files))
	}
	t.Logf("shared group: w1 got %d files, w2 got %d", perMember["w1"], perMember["w2"])
	expectReleased(t, c.srv, "fan")
}

// 5. Mistakes on the command line and unusable servers: exit code and one
// clear line each.
func TestCLIBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	writeFile(t, file, []byte("content\n"), 0o644)
	emptyDir := filepath.Join(dir, "empty")
	if err := os.MkdirAll(filepath.Join(emptyDir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	usage := []struct {
		name string
		args []string
		want []string
	}{
		{"missing path", []string{"send", "ch", filepath.Join(dir, "no", "such-file")}, []string{filepath.Join(dir, "no", "such-file"), "no such file"}},
		{"send without args", []string{"send"}, []string{"CHANNEL"}},
		{"send without path", []string{"send", "ch"}, []string{"PATH"}},
		{"stdin without name", []string{"send", "ch", "-"}, []string{"--name"}},
		{"name without stdin", []string{"send", "ch", file, "--name", "x"}, []string{"--name"}},
		{"bad max-bytes", []string{"send", "ch", file, "--max-bytes", "lots"}, []string{"--max-bytes", "lots"}},
		{"unknown global flag", []string{"--bogus", "status"}, []string{"unknown flag: --bogus"}},
		{"unknown send flag", []string{"send", "--nope", "ch", file}, []string{"unknown flag: --nope"}},
		{"recv without args", []string{"recv"}, []string{"CHANNEL"}},
		{"recv without group", []string{"recv", "ch", "--dir", dir}, []string{"--group"}},
		{"recv with two outputs", []string{"recv", "ch", "--group", "g", "--dir", dir, "--stdout"}, []string{"exactly one of --dir"}},
		{"recv without output", []string{"recv", "ch", "--group", "g"}, []string{"exactly one of --dir"}},
		{"status with two channels", []string{"status", "a", "b"}, []string{"at most one CHANNEL"}},
		{"clean without action", []string{"clean", "ch"}, []string{"--stale"}},
		{"budget below one chunk", []string{"send", "ch", file, "--max-bytes", "1KiB"}, []string{"--max-bytes 1KiB: the budget must hold at least one chunk"}},
		{"bad chunk size", []string{"send", "ch", file, "--chunk-size", "10"}, []string{"--chunk-size 10: must be between"}},
		{"lease too short", []string{"status", "--lease", "100ms"}, []string{"--lease 100ms"}},
		{"max-bytes zero", []string{"send", "ch", file, "--max-bytes", "0"}, []string{"--max-bytes 0", "must be positive"}},
		{"nothing to send", []string{"send", "ch", emptyDir}, []string{"nothing to send", emptyDir}},
		{"bad channel name", []string{"send", "a{b}", file}, []string{"channel name"}},
		{"bad group name", []string{"recv", "ch", "--group", "a:b", "--stdout"}, []string{"group name"}},
		{"bad concurrency", []string{"recv", "ch", "--group", "g", "--stdout", "--concurrency", "0"}, []string{"--concurrency"}},
	}
	for _, tc := range usage {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(tc.args...)
			expectFail(t, r, 2, tc.want...)
			for _, library := range []string{"filecast: filecast", "Options.", "invalid usage: invalid"} {
				if strings.Contains(r.stderr, library) {
					t.Errorf("stderr has %q:\n%s", library, r)
				}
			}
		})
	}

	t.Run("unreadable file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root, which can read a file with mode 000")
		}
		p := filepath.Join(t.TempDir(), "secret")
		writeFile(t, p, []byte("x"), 0o000)
		expectFail(t, c.run("send", "ch", p), 2, p, "permission denied")
	})

	urlForm := "redis://[user:password@]host:port/db"
	for bad, part := range map[string]string{
		"redis://[::1":   "missing ']' in host",
		"ftp://x":        `the scheme "ftp" is none of redis, rediss, unix`,
		"localhost:6379": `it has no scheme: write redis://localhost:6379`,
		"redis://h/x":    `invalid database number: "x"`,
	} {
		t.Run("malformed URL "+bad, func(t *testing.T) {
			r := c.run("--redis", bad, "status")
			expectFail(t, r, 2, urlForm, part)
			if n := strings.Count(r.stderr, urlForm); n != 1 || strings.Contains(r.stderr, "invalid usage: invalid") {
				t.Errorf("the accepted forms are shown %d times (want once), or a word is doubled:\n%s", n, r)
			}
			if bad == "redis://[::1" && strings.Contains(r.stderr, "[::1") {
				t.Errorf("an unparsable URL (which may hold a password) is quoted:\n%s", r)
			}
		})
	}

	t.Run("not redis", func(t *testing.T) {
		web := httptest.NewServer(http.NotFoundHandler())
		defer web.Close()
		addr := strings.TrimPrefix(web.URL, "http://")
		r := c.run("--redis", "redis://"+addr+"/0", "status")
		expectFail(t, r, 4, addr+" does not speak the Redis protocol (is it the right port?)")
		if strings.Contains(r.stderr, "unknown message type") {
			t.Errorf("stderr shows the client library's words:\n%s", r)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		expectFail(t, c.run("--redis", "redis://127.0.0.1:1/0", "status"), 4, "redis unavailable", "127.0.0.1:1")
		expectFail(t, c.run("--redis", "redis://127.0.0.1:1/0", "send", "ch", file), 4, "redis unavailable")
	})

	t.Run("wrong password", func(t *testing.T) {
		const good, wrong = "right-horse-battery", "wrong-staple-xyzzy"
		srv := redistest.Start(t, redistest.Config{RequirePass: good, TCP: true})
		unixURL := url.URL{Scheme: "unix", User: url.UserPassword("", wrong), Path: srv.Socket()}
		tcpURL := url.URL{Scheme: "redis", User: url.UserPassword("", wrong), Host: srv.Addr(), Path: "/0"}
		for _, u := range []string{unixURL.String(), tcpURL.String()} {
			r := c.run("--redis", u, "status")
			expectFail(t, r, 4, "refused the credentials")
			for _, secret := range []string{wrong, good} {
				if strings.Contains(r.stderr, secret) {
					t.Errorf("stderr shows a password:\n%s", r)
				}
			}
		}
		// Through the environment as well, and without a password at all.
		pc := &cli{t: t, srv: srv, url: tcpURL.String()}
		r := pc.run("status")
		expectFail(t, r, 4, "refused the credentials")
		if strings.Contains(r.stderr, wrong) {
			t.Errorf("stderr shows the password from FILECAST_REDIS:\n%s", r)
		}
		expectFail(t, c.run("--redis", "unix://"+srv.Socket(), "status"), 4, "refused the credentials")
		expectOK(t, c.run("--redis", srv.URL(), "status"))
	})

	t.Run("eviction policy", func(t *testing.T) {
		ec := newCLI(t, redistest.Config{Policy: "allkeys-lru", MaxMemory: 64 << 20})
		expectFail(t, ec.run("send", "ev", file), 4, "maxmemory-policy allkeys-lru", "--allow-eviction")
		expectFail(t, ec.run("status"), 4, "maxmemory-policy", "--allow-eviction")
		joinGroups(t, ec.url, "ev", "g")
		expectOK(t, ec.run("send", "ev", file, "--eof", "--allow-eviction"))
		r := ec.run("recv", "ev", "--group", "g", "--stdout", "--until-eof", "--allow-eviction", "--lease", "2s")
		expectOK(t, r)
		if r.stdout != "content\n" {
			t.Errorf("with --allow-eviction: received %q, want %q", r.stdout, "content\n")
		}
	})

	t.Run("no group joined", func(t *testing.T) {
		expectFail(t, c.run("send", "lonely", file), 1, "no receiver group", "start a receiver first (filecast recv lonely --group NAME)")
		if ids := liveIDs(t, c.srv, "lonely"); len(ids) != 0 {
			t.Errorf("a file nobody can receive was stored: %q", ids)
		}
	})
}

// 6. Redis at maxmemory (noeviction) with a budget larger than its memory:
// the sender fails with an out-of-memory message, the upload stays
// resumable, and a receiver presents no partial file under the file's name.
// Once memory is available, the same command resumes and completes.
func TestCLIRedisOutOfMemory(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{MaxMemory: 3 << 20})
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	data := randomBytes(6, 16<<20)
	path := filepath.Join(src, "big.bin")
	writeFile(t, path, data, 0o644)
	joinGroups(t, c.url, "oom", "g")

	r := c.run("send", "oom", path, "--max-bytes", "64MiB", "--lease", "1m")
	line := expectFail(t, r, 1, "big.bin")
	if l := strings.ToLower(line); !strings.Contains(l, "out of memory") && !(strings.Contains(l, "oom") && strings.Contains(l, "maxmemory")) {
		t.Errorf("error line %q does not say Redis is out of memory", line)
	}

	st := c.status("oom")
	if len(st.Files) != 1 || st.Files[0].Name != "big.bin" || st.Files[0].State != "uploading" {
		t.Fatalf("status after the failed send: files %+v, want big.bin uploading (resumable)", st.Files)
	}

	recv := c.start("recv", "oom", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
	waitFor(t, 10*time.Second, "the receiver to start on big.bin", func() bool {
		if recv.exited() {
			t.Fatalf("receiver exited:\n%s", recv.wait())
		}
		return len(partFiles(t, out)) == 1
	})
	if _, err := os.Stat(filepath.Join(out, "big.bin")); err == nil {
		t.Fatal("big.bin is visible in the target directory while its upload is stuck")
	}

	c.srv.MustDo(t, "CONFIG", "SET", "maxmemory", "0")
	r = c.run("send", "oom", path, "--max-bytes", "64MiB", "--eof", "--lease", "1m")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "(resumed)") {
		t.Errorf("second send did not resume the upload:\n%s", r)
	}
	expectOK(t, recv.wait())
	sameFile(t, filepath.Join(out, "big.bin"), data)
	if got := tree(t, out); !slices.Equal(got, []string{"big.bin"}) {
		t.Errorf("target directory holds %q, want [big.bin]", got)
	}
	expectReleased(t, c.srv, "oom")
}

// startBlockedSend starts sending a 64 MiB file to a channel whose group is
// joined but not running, with a 4 MiB budget, and waits until the sender
// committed some chunks and is waiting for budget.
func startBlockedSend(t *testing.T, c *cli, channel, path string) (*proc, []string) {
	t.Helper()
	args := []string{"send", channel, path, "--max-bytes", "4MiB", "--lease", "1m"}
	return startBlocked(t, c, channel, filepath.Base(path), args...), args
}

// startBlocked joins group g to channel (no receiver runs), starts the
// send args, and waits until the upload of name has committed 3 chunks:
// with a budget of 4 MiB, the sender is then waiting for budget.
func startBlocked(t *testing.T, c *cli, channel, name string, args ...string) *proc {
	t.Helper()
	joinGroups(t, c.url, channel, "g")
	p := c.start(args...)
	waitFor(t, 20*time.Second, "the sender to fill the budget with "+name, func() bool {
		if p.exited() {
			t.Fatalf("sender exited early:\n%s", p.wait())
		}
		id, _ := c.srv.Do("HGET", "fc:{"+channel+"}:up", name)
		if id == "" {
			return false
		}
		n, _ := strconv.Atoi(fileField(c.srv, channel, id, "n"))
		return n >= 3
	})
	return p
}

// 7. SIGINT while the sender waits for budget: exit 130 and a message that
// the command can be run again; running it again resumes the upload, and
// the receiver gets the file once.
func TestCLISendInterruptResume(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	data := randomBytes(7, 64<<20)
	path := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, path, data, 0o644)
	out := filepath.Join(t.TempDir(), "out")

	p, args := startBlockedSend(t, c, "intr", path)
	p.signal(syscall.SIGINT)
	expectFail(t, p.wait(), 130, "interrupted", "run the same command again to resume")
	if st := c.status("intr"); len(st.Files) != 1 || st.Files[0].State != "uploading" {
		t.Fatalf("after SIGINT: files %+v, want one upload still uploading", st.Files)
	}

	recv := c.start("recv", "intr", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
	r := c.run(append(args, "--eof")...)
	expectOK(t, r)
	if !strings.Contains(r.stderr, "sent big.bin ") || !strings.Contains(r.stderr, "(resumed)") {
		t.Errorf("second send did not report a resumed upload:\n%s", r)
	}
	// Its size and rate count what this run moved, not what was stored before.
	if m := regexp.MustCompile(`\(resumed\): ([0-9.]+) MiB moved in`).FindStringSubmatch(r.stderr); m == nil {
		t.Errorf("second send does not say how much it moved:\n%s", r)
	} else if moved, _ := strconv.ParseFloat(m[1], 64); moved >= 64 || moved <= 0 {
		t.Errorf("second send says it moved %s MiB of 64 MiB, of which the first run had stored 3 chunks:\n%s", m[1], r)
	}
	rr := recv.wait()
	expectOK(t, rr)
	if n := count(rr.stderr, "received big.bin "); n != 1 {
		t.Errorf("receiver got big.bin %d times, want once:\n%s", n, rr)
	}
	sameFile(t, filepath.Join(out, "big.bin"), data)
	if got := tree(t, out); !slices.Equal(got, []string{"big.bin"}) {
		t.Errorf("target directory holds %q, want [big.bin]", got)
	}
	expectReleased(t, c.srv, "intr")
}

// 7b. SIGINT on a send from stdin: stdin cannot be read again, so the upload
// is aborted at once (not left for a resume that cannot come), the message
// says so, and a waiting receiver learns it without waiting for a lease.
func TestCLISendStdinInterrupted(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := filepath.Join(t.TempDir(), "out")
	recv := c.start("recv", "sin", "--group", "g", "--dir", out)
	waitJoined(t, c.srv, "sin", "g", recv)
	send := c.startPiped("send", "sin", "-", "--name", "app.log")
	if _, err := send.stdin.Write([]byte("line 1\nline 2\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the first lines to be stored", func() bool {
		id, _ := c.srv.Do("HGET", "fc:{sin}:up", "app.log")
		return id != "" && fileField(c.srv, "sin", id, "n") != "0"
	})
	send.signal(syscall.SIGINT)
	expectFail(t, send.wait(), 130, "interrupted", "app.log", "aborted after 14 B", "--follow")
	waitFor(t, 20*time.Second, "the receiver to learn the upload was aborted", func() bool {
		return strings.Contains(recv.stderr(), "aborted")
	})
	if st := c.status("sin"); len(st.Files) != 0 {
		t.Errorf("after the abort: files %+v, want none held", st.Files)
	}
	if parts := partFiles(t, out); len(parts) != 0 {
		t.Errorf("partial files left: %q", parts)
	}
	expectReleased(t, c.srv, "sin")
}

// 8a. A sender killed with SIGKILL mid-file: the same command run again (its
// lease is a minute, so only the dead-pid check lets it take over) resumes
// the upload, and the receiver sees one file.
func TestCLISendKilledResume(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	data := randomBytes(8, 64<<20)
	path := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, path, data, 0o644)
	out := filepath.Join(t.TempDir(), "out")

	p, args := startBlockedSend(t, c, "kill", path)
	p.signal(syscall.SIGKILL)
	if r := p.wait(); r.code != -1 {
		t.Fatalf("sender was not killed:\n%s", r)
	}

	recv := c.start("recv", "kill", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
	r := c.run(append(args, "--eof")...)
	expectOK(t, r)
	if !strings.Contains(r.stderr, "(resumed)") {
		t.Errorf("the rerun did not resume the killed sender's upload:\n%s", r)
	}
	rr := recv.wait()
	expectOK(t, rr)
	if n := count(rr.stderr, "received big.bin "); n != 1 {
		t.Errorf("receiver got big.bin %d times, want once:\n%s", n, rr)
	}
	sameFile(t, filepath.Join(out, "big.bin"), data)
	if got := tree(t, out); !slices.Equal(got, []string{"big.bin"}) {
		t.Errorf("target directory holds %q, want [big.bin]", got)
	}
	expectReleased(t, c.srv, "kill")
}

// send DIR killed mid-file and run again: the rerun skips the file the
// killed run had sent (and says so in --json), a run after one that
// finished sends everything again, and --resend sends again what an
// interrupted run had sent.
func TestCLISendRerunSkipsWhatWasSent(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	small, big := randomBytes(41, 10<<10), randomBytes(42, 12<<20)
	writeFile(t, filepath.Join(src, "a.small"), small, 0o644)
	writeFile(t, filepath.Join(src, "b.big"), big, 0o644)
	sendArgs := func(channel string) []string {
		return []string{"send", channel, src, "--max-bytes", "4MiB", "--lease", "1m", "--json"}
	}
	// killed starts a send on channel, which has a group but no receiver,
	// and kills it once b.big has filled the budget.
	killed := func(channel string, extra ...string) {
		t.Helper()
		p := startBlocked(t, c, channel, "b.big", append(sendArgs(channel), extra...)...)
		p.signal(syscall.SIGKILL)
		p.wait()
	}
	type report struct{ skipped, resumed bool }
	reports := func(r cliResult) map[string]report {
		t.Helper()
		expectOK(t, r)
		m := map[string]report{}
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var o struct {
				Name             string
				Skipped, Resumed bool
			}
			if err := json.Unmarshal([]byte(l), &o); err != nil {
				t.Fatalf("send --json printed %q: %v", l, err)
			}
			m[o.Name] = report{o.Skipped, o.Resumed}
		}
		return m
	}
	delivered := func(recv *proc, want map[string]int) {
		t.Helper()
		waitFor(t, 20*time.Second, fmt.Sprintf("the receiver to complete %v", want), func() bool {
			done := map[string]int{}
			out, _ := os.ReadFile(recv.out)
			completions(string(out), done)
			return maps.Equal(done, want)
		})
	}

	killed("rr")
	out := filepath.Join(t.TempDir(), "rr")
	recv := c.start("recv", "rr", "--group", "g", "--dir", out, "--json")
	if got, want := reports(c.run(sendArgs("rr")...)), map[string]report{"a.small": {skipped: true}, "b.big": {resumed: true}}; !maps.Equal(got, want) {
		t.Errorf("the rerun reported %v, want %v", got, want)
	}
	delivered(recv, map[string]int{"a.small": 1, "b.big": 1})
	if got, want := reports(c.run(sendArgs("rr")...)), map[string]report{"a.small": {}, "b.big": {}}; !maps.Equal(got, want) {
		t.Errorf("a run after a finished one reported %v, want %v", got, want)
	}
	delivered(recv, map[string]int{"a.small": 2, "b.big": 2})
	sameFile(t, filepath.Join(out, "a.small"), small)
	sameFile(t, filepath.Join(out, "b.big"), big)

	killed("rs")
	recv = c.start("recv", "rs", "--group", "g", "--dir", filepath.Join(t.TempDir(), "rs"), "--json")
	if got, want := reports(c.run(append(sendArgs("rs"), "--resend")...)), map[string]report{"a.small": {}, "b.big": {resumed: true}}; !maps.Equal(got, want) {
		t.Errorf("--resend reported %v, want %v", got, want)
	}
	delivered(recv, map[string]int{"a.small": 2, "b.big": 1})

	// --batch names the run: a rerun naming the files one by one (another
	// derived name) still skips what the killed run sent.
	killed("rb", "--batch", "nightly")
	recv = c.start("recv", "rb", "--group", "g", "--dir", filepath.Join(t.TempDir(), "rb"), "--json")
	byFile := []string{"send", "rb", filepath.Join(src, "a.small"), filepath.Join(src, "b.big"), "--lease", "1m", "--json", "--batch", "nightly"}
	if got, want := reports(c.run(byFile...)), map[string]report{"a.small": {skipped: true}, "b.big": {resumed: true}}; !maps.Equal(got, want) {
		t.Errorf("the rerun with --batch reported %v, want %v", got, want)
	}
	delivered(recv, map[string]int{"a.small": 1, "b.big": 1})
	if keys := c.srv.Keys("fc:*:batch:*"); len(keys) != 0 {
		t.Errorf("finished sends left batch records %q", keys)
	}
}

// Two files sent under one name in one run: a warning, and both are sent
// (the batch record does not mistake the second for the first).
func TestCLISendSameNameTwice(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	d1, d2 := t.TempDir(), t.TempDir()
	when := time.Unix(1700000000, 0)
	for _, d := range []struct{ dir, data string }{{d1, "AAAA"}, {d2, "BBBB"}} {
		p := filepath.Join(d.dir, "x")
		writeFile(t, p, []byte(d.data), 0o644)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	joinGroups(t, c.url, "twin", "g")
	r := c.run("send", "twin", d1, d2, "--json")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "warning: "+filepath.Join(d1, "x")+" and "+filepath.Join(d2, "x")+" are both sent as x") {
		t.Errorf("no warning about the shared name:\n%s", r)
	}
	if n := strings.Count(r.stdout, `"skipped":false`); n != 2 {
		t.Errorf("%d files sent, want 2:\n%s", n, r)
	}
}

// 8b. A --dir receiver killed with SIGKILL mid-file and restarted with the
// same --member finishes the file from its partial copy: one final file,
// byte-identical, although chunks it had already written were released
// from Redis (64 MiB through an 8 MiB budget).
func TestCLIReceiverKilledResume(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	data := randomBytes(9, 64<<20)
	half := 24 << 20
	out := filepath.Join(t.TempDir(), "out")
	joinGroups(t, c.url, "rk", "g")
	recvArgs := []string{"recv", "rk", "--group", "g", "--member", "r1", "--dir", out, "--until-eof", "--lease", "2s"}
	recv := c.start(recvArgs...)

	// The sender reads stdin; the test decides how much of the file exists,
	// so the receiver cannot finish before it is killed.
	send := c.startPiped("send", "rk", "-", "--name", "big.bin", "--max-bytes", "8MiB", "--eof", "--lease", "2s")
	more := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		if _, err := send.stdin.Write(data[:half]); err != nil {
			wrote <- err
			return
		}
		<-more
		_, err := send.stdin.Write(data[half:])
		if cerr := send.stdin.Close(); err == nil {
			err = cerr
		}
		wrote <- err
	}()
	t.Cleanup(func() {
		select {
		case <-more:
		default:
			close(more)
		}
	})

	var part string
	waitFor(t, 20*time.Second, "the receiver's partial file to exceed 12 MiB", func() bool {
		if recv.exited() {
			t.Fatalf("receiver exited early:\n%s", recv.wait())
		}
		parts := partFiles(t, out)
		if len(parts) != 1 {
			return false
		}
		part = filepath.Join(out, parts[0])
		st, err := os.Stat(part)
		return err == nil && st.Size() > 12<<20
	})
	// Chunks the receiver wrote were released from Redis (the budget is
	// full), so only resuming from the partial file can complete it.
	ids := liveIDs(t, c.srv, "rk")
	if len(ids) == 0 || fileField(c.srv, "rk", ids[0], "lo") == "1" {
		t.Fatalf("no chunk of big.bin was released before the kill (ids %q); the test would not show a resume", ids)
	}
	recv.signal(syscall.SIGKILL)
	if r := recv.wait(); r.code != -1 {
		t.Fatalf("receiver was not killed:\n%s", r)
	}
	if _, err := os.Stat(part); err != nil {
		t.Fatalf("the killed receiver's partial file is gone: %v", err)
	}

	recv = c.start(recvArgs...)
	close(more)
	expectOK(t, send.wait())
	if err := <-wrote; err != nil {
		t.Fatalf("feeding the sender: %v", err)
	}
	rr := recv.wait()
	expectOK(t, rr)
	if n := count(rr.stderr, "received big.bin "); n != 1 {
		t.Errorf("restarted receiver reported big.bin %d times, want once:\n%s", n, rr)
	}
	sameFile(t, filepath.Join(out, "big.bin"), data)
	if got := tree(t, out); !slices.Equal(got, []string{"big.bin"}) {
		t.Errorf("target directory holds %q, want only big.bin", got)
	}
	expectReleased(t, c.srv, "rk")
}

// 9a. File records with hostile names written straight into Redis: the
// receiver writes nothing outside its directory, reports each as failed,
// keeps going, and exits 3 at the end of the batch.
func TestCLIHostileNames(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	sandbox := t.TempDir()
	out := filepath.Join(sandbox, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat("/etc/passwd-x"); err == nil {
		t.Fatal("/etc/passwd-x exists before the test; refusing to run")
	}
	t.Cleanup(func() { os.Remove("/etc/passwd-x") })

	joinGroups(t, c.url, "evil", "g")
	hostile := []string{
		"../escape",
		"../../escape2",
		"sub/../../escape3",
		"/etc/passwd-x",
		filepath.Join(sandbox, "absolute-escape"),
		"a\x00b",
		"tab\tname",
		strings.Repeat("n", 5000),
		strings.Repeat("d/", 100) + strings.Repeat("x", 300),
	}
	for i, name := range hostile {
		plantFile(t, c.srv, "evil", fmt.Sprintf("bad%013d", i), name, []byte("pwned\n"), []string{"g"})
	}
	// A well-formed planted record proves the planted format is right, so
	// the hostile ones fail for their names.
	plantFile(t, c.srv, "evil", "0000000000planted", "planted.txt", []byte("planted ok\n"), []string{"g"})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "normal.txt"), []byte("normal\n"), 0o644)
	expectOK(t, c.run("send", "evil", filepath.Join(src, "normal.txt"), "--eof"))

	r := c.run("recv", "evil", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
	t.Logf("%s", r)
	expectFail(t, r, 3, "integrity check failed", fmt.Sprintf("%d file(s)", len(hostile)))
	if n := count(r.stderr, "FAILED"); n != len(hostile) {
		t.Errorf("recv reported %d failures, want %d (one per hostile name):\n%s", n, len(hostile), r)
	}
	for _, name := range []string{"planted.txt", "normal.txt"} {
		if count(r.stderr, "received "+name+" ") != 1 {
			t.Errorf("recv did not keep going and receive %s:\n%s", name, r)
		}
	}
	sameFile(t, filepath.Join(out, "planted.txt"), []byte("planted ok\n"))
	sameFile(t, filepath.Join(out, "normal.txt"), []byte("normal\n"))
	if got := tree(t, out); !slices.Equal(got, []string{"normal.txt", "planted.txt"}) {
		t.Errorf("target directory holds %q, want [normal.txt planted.txt]", got)
	}
	if got := tree(t, sandbox); !slices.Equal(got, []string{"out", "out/normal.txt", "out/planted.txt"}) {
		t.Errorf("something was written outside the target directory: %q", got)
	}
	for _, p := range []string{"/etc/passwd-x", filepath.Join(filepath.Dir(sandbox), "escape2")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written outside the target directory", p)
		}
	}
	expectReleased(t, c.srv, "evil")
}

// 9b. A symlink planted in the target directory that points outside it:
// a file sent as "sub/x" is not written through it.
func TestCLISymlinkInTargetDir(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	sandbox := t.TempDir()
	out, outside := filepath.Join(sandbox, "out"), filepath.Join(sandbox, "outside")
	for _, d := range []string{out, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(out, "sub")); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "sub", "x"), []byte("must stay inside\n"), 0o644)
	writeFile(t, filepath.Join(src, "ok.txt"), []byte("fine\n"), 0o644)
	joinGroups(t, c.url, "link", "g")
	expectOK(t, c.run("send", "link", src, "--eof"))

	r := c.run("recv", "link", "--group", "g", "--dir", out, "--until-eof", "--retries", "1", "--lease", "2s")
	expectFail(t, r, 1, "file failed")
	if !strings.Contains(r.stderr, "FAILED sub/x") {
		t.Errorf("recv did not report sub/x as failed:\n%s", r)
	}
	if got := tree(t, outside); len(got) != 0 {
		t.Errorf("written outside the target directory through the symlink: %q", got)
	}
	sameFile(t, filepath.Join(out, "ok.txt"), []byte("fine\n"))
	if st, err := os.Lstat(filepath.Join(out, "sub")); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted symlink was replaced: %v", err)
	}
	// The group keeps the failed file for a retry until it is let go.
	expectOK(t, c.run("clean", "link", "--failed"))
	expectReleased(t, c.srv, "link")
}

// 10. A chunk altered in Redis: the receiver exits 3 with an integrity
// message, and neither the file nor a partial file is left in its directory.
func TestCLICorruptChunk(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	data := randomBytes(10, 3<<20)
	writeFile(t, filepath.Join(src, "three.bin"), data, 0o644)
	joinGroups(t, c.url, "rot", "g")
	expectOK(t, c.run("send", "rot", filepath.Join(src, "three.bin"), "--chunk-size", "1MiB", "--eof"))

	keys := chunksOf(c.srv, "rot", "2")
	if len(keys) != 1 {
		t.Fatalf("chunk 2 keys: %q, want one", keys)
	}
	// 3 MiB: ramp chunks of 64 KiB and 256 KiB (less 64 bytes), then 1 MiB ones.
	if got := len(chunksOf(c.srv, "rot", "*")); got != 5 {
		t.Fatalf("%d chunks stored, want 5 with --chunk-size 1MiB", got)
	}
	old := c.srv.MustDo(t, "GETRANGE", keys[0], "100", "100")
	flip := "X"
	if old == "X" {
		flip = "Y"
	}
	c.srv.MustDo(t, "SETRANGE", keys[0], "100", flip)

	r := c.run("recv", "rot", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
	expectFail(t, r, 3, "integrity check failed")
	if !strings.Contains(r.stderr, "FAILED three.bin") || !strings.Contains(r.stderr, "chunk 2") {
		t.Errorf("recv did not report which file and chunk failed:\n%s", r)
	}
	if got := tree(t, out); len(got) != 0 {
		t.Errorf("target directory holds %q after a failed integrity check, want nothing", got)
	}
	st := c.status("rot")
	if len(st.Groups) != 1 || len(st.Groups[0].Failed) != 1 || st.Groups[0].Failed[0].Name != "three.bin" ||
		st.Groups[0].Failed[0].State != "kept" {
		t.Fatalf("status --json groups %+v, want three.bin failed for g, and kept", st.Groups)
	}
	// The file is kept: once the chunk is repaired, a retry reads it again.
	c.srv.MustDo(t, "SETRANGE", keys[0], "100", old)
	expectOK(t, c.run("retry", "rot", "--group", "g", "three.bin"))
	expectOK(t, c.run("send", "rot", writeTemp(t, "after.txt", "after\n"), "--eof"))
	expectOK(t, c.run("recv", "rot", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s"))
	sameFile(t, filepath.Join(out, "three.bin"), data)
	expectReleased(t, c.srv, "rot")
}

// clean --stale aborts the upload of a dead sender (receivers skip it and
// leave nothing behind), and clean --drop-group releases what only a
// dropped group still held.
func TestCLIClean(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	big := filepath.Join(src, "big.bin")
	writeFile(t, big, randomBytes(11, 64<<20), 0o644)
	small := filepath.Join(src, "small.txt")
	writeFile(t, small, []byte("small\n"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	joinGroups(t, c.url, "cl", "gone")

	p, _ := startBlockedSend(t, c, "cl", big) // also joins group g
	p.signal(syscall.SIGKILL)
	p.wait()
	r := c.run("clean", "cl", "--stale", "1ms")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "aborted stale upload big.bin") {
		t.Errorf("clean --stale did not report the aborted upload:\n%s", r)
	}
	if st := c.status("cl"); len(st.Files) != 1 || st.Files[0].State != "aborted" {
		t.Errorf("after clean --stale: files %+v, want big.bin aborted", st.Files)
	}

	expectOK(t, c.run("send", "cl", small, "--eof"))
	r = c.run("recv", "cl", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "big.bin") || !strings.Contains(r.stderr, "upload aborted") {
		t.Errorf("recv did not report big.bin as aborted:\n%s", r)
	}
	if got := tree(t, out); !slices.Equal(got, []string{"small.txt"}) {
		t.Errorf("target directory holds %q, want [small.txt]", got)
	}
	if left := liveIDs(t, c.srv, "cl"); len(left) != 3 {
		t.Errorf("%d files held before dropping the other group, want 3 (big.bin, small.txt, mark)", len(left))
	}
	r = c.run("clean", "cl", "--drop-group", "gone")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "dropped group gone; 3 file(s) released") {
		t.Errorf("clean --drop-group did not report 3 files released:\n%s", r)
	}
	expectReleased(t, c.srv, "cl")
	for _, g := range c.status("cl").Groups {
		if g.Name == "gone" {
			t.Errorf("dropped group still listed")
		}
	}
}

// SIGINT and SIGTERM stop a waiting receiver with exit 130, and free its
// member name for an immediate restart.
func TestCLIRecvSignals(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	out := t.TempDir()
	args := []string{"recv", "sig", "--group", "g", "--member", "m1", "--dir", out, "--lease", "10s"}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		p := c.start(args...)
		waitJoined(t, c.srv, "sig", "g", p)
		waitFor(t, 10*time.Second, "member m1 to hold its lease", func() bool {
			v, _ := c.srv.Do("EXISTS", "fc:{sig}:g:g:m:m1")
			return v == "1"
		})
		p.signal(sig)
		expectFail(t, p.wait(), 130, "stopped")
	}
	src := filepath.Join(t.TempDir(), "after.txt")
	writeFile(t, src, []byte("after\n"), 0o644)
	expectOK(t, c.run("send", "sig", src, "--eof"))
	expectOK(t, c.run(append(args, "--until-eof")...))
	sameFile(t, filepath.Join(out, "after.txt"), []byte("after\n"))
}

// --json: send prints one object per file on stdout; recv prints one per
// outcome on stdout, or on stderr with --stdout.
func TestCLIJSON(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("aaa\n"), 0o644)
	writeFile(t, filepath.Join(src, "b.txt"), []byte("bbbb\n"), 0o644)
	joinGroups(t, c.url, "js", "d", "s")
	r := c.run("send", "js", filepath.Join(src, "a.txt"), filepath.Join(src, "b.txt"), "--eof", "--json")
	expectOK(t, r)
	type sent struct {
		Channel, ID, Name, Digest, Time string
		Size                            int64
		Resumed                         bool
	}
	// Every object the CLI writes says when: RFC 3339, UTC, milliseconds.
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	var got []sent
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var s sent
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("send --json line %q: %v", l, err)
		}
		got = append(got, s)
	}
	if len(got) != 2 || got[0].Name != "a.txt" || got[0].Size != 4 || got[1].Name != "b.txt" || got[1].Size != 5 ||
		got[0].Channel != "js" || len(got[0].Digest) != 32 || got[0].ID == "" || got[0].Resumed || !stamp.MatchString(got[1].Time) {
		t.Errorf("send --json printed %+v", got)
	}

	type outcome struct {
		Event                    string // "file" for a file outcome
		Time                     string
		Channel, Group, ID, Name string
		Size                     int64
		OK                       bool
		Attempts                 int
	}
	parse := func(s string) []outcome {
		var res []outcome
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			var o outcome
			if err := json.Unmarshal([]byte(l), &o); err != nil {
				t.Fatalf("recv --json line %q: %v", l, err)
			}
			if !stamp.MatchString(o.Time) {
				t.Errorf("recv --json line %q: no \"time\" in RFC 3339 with milliseconds, UTC", l)
			}
			if o.Event == "file" {
				res = append(res, o)
			}
		}
		return res
	}
	r = c.run("recv", "js", "--group", "d", "--dir", t.TempDir(), "--until-eof", "--json", "--lease", "2s")
	expectOK(t, r)
	if st := c.run("status"); st.code != 0 || !strings.Contains(st.stdout, "channel js: ") {
		t.Errorf("status without a channel does not list js:\n%s\n%s", st, st.stdout)
	}
	if o := parse(r.stdout); len(o) != 2 || o[0].Name != "a.txt" || !o[0].OK || o[0].Group != "d" || o[1].Name != "b.txt" || o[1].Size != 5 {
		t.Errorf("recv --dir --json printed %+v on stdout", o)
	}
	r = c.run("recv", "js", "--group", "s", "--stdout", "--until-eof", "--json", "--lease", "2s")
	expectOK(t, r)
	if r.stdout != "aaa\nbbbb\n" {
		t.Errorf("recv --stdout --json: stdout %q, want only the files' bytes", r.stdout)
	}
	if o := parse(r.stderr); len(o) != 2 || !o[1].OK {
		t.Errorf("recv --stdout --json printed %+v on stderr", o)
	}
}

// A compressed file named just ".gz" keeps its name with --dir --decompress
// (dropping the suffix would leave no name).
func TestCLIDecompressBareSuffix(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("hello\n"))
	zw.Close()
	src, out := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, ".gz"), gz.Bytes(), 0o644)
	joinGroups(t, c.url, "bare", "g")
	expectOK(t, c.run("send", "bare", filepath.Join(src, ".gz"), "--eof"))
	r := c.run("recv", "bare", "--group", "g", "--dir", out, "--decompress", "--retries", "1", "--until-eof", "--lease", "2s")
	expectOK(t, r)
	sameFile(t, filepath.Join(out, ".gz"), []byte("hello\n"))
}

// A sender killed mid-file whose source then changed: the rerun aborts the
// old upload and sends the new content; the receiver ends up with the new
// content only.
func TestCLISendKilledSourceChanged(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	path := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, path, randomBytes(12, 64<<20), 0o644)
	out := filepath.Join(t.TempDir(), "out")

	p, args := startBlockedSend(t, c, "chg", path)
	p.signal(syscall.SIGKILL)
	p.wait()
	changed := randomBytes(13, 5<<20)
	writeFile(t, path, changed, 0o644)

	recv := c.start("recv", "chg", "--group", "g", "--dir", out, "--until-eof", "--lease", "2s")
	r := c.run(append(args, "--eof")...)
	expectOK(t, r)
	if strings.Contains(r.stderr, "(resumed)") {
		t.Errorf("a changed source was resumed instead of sent anew:\n%s", r)
	}
	rr := recv.wait()
	expectOK(t, rr)
	if count(rr.stderr, "received big.bin ") != 1 || !strings.Contains(rr.stderr, "upload aborted") {
		t.Errorf("receiver should report the old upload aborted and the new one received once:\n%s", rr)
	}
	sameFile(t, filepath.Join(out, "big.bin"), changed)
	if got := tree(t, out); !slices.Equal(got, []string{"big.bin"}) {
		t.Errorf("target directory holds %q, want [big.bin]", got)
	}
	expectReleased(t, c.srv, "chg")
}

// TLS with a CA and a client certificate given on the command line, and
// the password from a file or the environment instead of the URL: each
// works, each missing piece gets an error that names the flag to use, and
// no password is ever printed.
func TestCLITLSAndPasswordSources(t *testing.T) {
	t.Parallel()
	const good, wrong = "tls-horse-battery", "tls-wrong-staple"
	srv := redistest.Start(t, redistest.Config{TLS: true, ClientCerts: true, RequirePass: good})
	files := srv.TLSFiles()
	noPass := strings.Replace(srv.TLSURL(), ":"+good+"@", "", 1)
	c := &cli{t: t, srv: srv, url: noPass}
	tlsFlags := []string{"--ca-file", files.CA, "--cert-file", files.ClientCert, "--key-file", files.ClientKey}

	expectFail(t, c.run("status"), 4, "--ca-file")
	expectFail(t, c.run("status", "--ca-file", files.CA), 4, "--cert-file")
	expectFail(t, c.run(append([]string{"status"}, tlsFlags...)...), 4, "refused the credentials")
	expectFail(t, c.run("status", "--cert-file", files.ClientCert), 2, "both") // checked before connecting
	expectFail(t, c.run("--redis", "redis://127.0.0.1:1/0", "status", "--ca-file", files.CA), 2, "rediss://")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	writeFile(t, pwFile, []byte(good+"\n"), 0o600)
	badFile := filepath.Join(dir, "bad")
	writeFile(t, badFile, []byte(wrong+"\n"), 0o600)

	expectOK(t, c.run(append([]string{"status", "--password-file", pwFile}, tlsFlags...)...))
	expectOK(t, c.runWith(nil, []string{"FILECAST_PASSWORD=" + good}, append([]string{"status"}, tlsFlags...)...))
	for _, r := range []cliResult{
		c.run(append([]string{"status", "--password-file", badFile}, tlsFlags...)...),
		c.runWith(nil, []string{"FILECAST_PASSWORD=" + wrong}, append([]string{"status"}, tlsFlags...)...),
	} {
		expectFail(t, r, 4, "refused the credentials")
		if strings.Contains(r.stderr, wrong) || strings.Contains(r.stderr, good) {
			t.Errorf("stderr shows a password:\n%s", r)
		}
	}
	expectFail(t, c.run("status", "--password-file", filepath.Join(dir, "missing")), 2, "--password-file")
	// Logs at the most verbose level and status output, plain and JSON,
	// show no password either, from the URL or the environment.
	withPass := append([]string{"--redis", srv.TLSURL(), "-vv"}, tlsFlags...)
	for _, r := range []cliResult{
		c.run(append(withPass, "status")...),
		c.run(append(withPass, "status", "--json")...),
		c.runWith(nil, []string{"FILECAST_PASSWORD=" + good}, append([]string{"-vv", "status"}, tlsFlags...)...),
	} {
		expectOK(t, r)
		if strings.Contains(r.stdout+r.stderr, good) {
			t.Errorf("output shows the password:\n%s", r)
		}
	}

	// A whole transfer over TLS with a client certificate.
	src := filepath.Join(dir, "f.bin")
	data := randomBytes(12, 2<<20)
	writeFile(t, src, data, 0o644)
	env := []string{"FILECAST_PASSWORD=" + good}
	out := filepath.Join(dir, "out")
	joinArgs := append([]string{"recv", "t", "--group", "g", "--dir", out, "--until-eof"}, tlsFlags...)
	p := c.startWith(env, false, joinArgs...)
	waitJoined(t, srv, "t", "g", p)
	expectOK(t, c.runWith(nil, env, append([]string{"send", "t", src, "--eof"}, tlsFlags...)...))
	expectOK(t, p.wait())
	if got, err := os.ReadFile(filepath.Join(out, "f.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("file received over TLS differs (%v)", err)
	}
}
