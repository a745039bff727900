package main

import (
	"cmp"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// A send that fails because no group joined leaves the channel off the
// channel list (status would list it forever); one that sends lists it.
func TestCLIFailedSendListsNoChannel(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	file := filepath.Join(t.TempDir(), "data.txt")
	writeFile(t, file, []byte("hello"), 0o644)
	big := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, big, randomBytes(61, 3<<20), 0o644)
	for _, args := range [][]string{{"send", "nochan", file}, {"send", "nochan", big}, {"send", "nochan", "--eof"}} {
		expectFail(t, c.run(args...), 1, "no receiver group")
	}
	listed := func() []string { return strings.Fields(c.srv.MustDo(t, "SMEMBERS", "fc:channels")) }
	if slices.Contains(listed(), "nochan") {
		t.Fatalf("a send that sent nothing listed its channel: fc:channels = %q", listed())
	}
	if r := c.run("status"); strings.Contains(r.stdout+r.stderr, "nochan") {
		t.Errorf("status lists the channel nothing was sent to:\n%s", r)
	}
	joinGroups(t, c.url, "nochan", "g")
	expectOK(t, c.run("send", "nochan", file))
	if !slices.Contains(listed(), "nochan") {
		t.Errorf("a channel with a group and a file sent is not listed: fc:channels = %q", listed())
	}
}

// The same path given twice is sent once, without a same-name warning or a
// word about an interrupted run there never was.
func TestCLISendSamePathTwice(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "data.txt")
	writeFile(t, file, []byte("hello"), 0o644)
	joinGroups(t, c.url, "logs", "g")
	r := c.run("send", "logs", file, filepath.Join(dir, ".", "data.txt"))
	expectOK(t, r)
	if strings.Contains(r.stderr, "warning") || strings.Contains(r.stderr, "skipped") || count(r.stderr, "sent data.txt") != 1 {
		t.Errorf("want data.txt sent once, silently:\n%s", r)
	}
	if n := c.srv.MustDo(t, "XLEN", "fc:{logs}:files"); n != "1" {
		t.Errorf("the files stream has %s entries, want 1", n)
	}
}

// "send CHANNEL --eof" with no PATH marks the end of a batch that earlier
// runs sent: an --until-eof receiver returns once it has them.
func TestCLISendEOFAlone(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "one"), []byte("1"), 0o644)
	writeFile(t, filepath.Join(src, "two"), []byte("22"), 0o644)
	joinGroups(t, c.url, "parts", "g")
	expectOK(t, c.run("send", "parts", filepath.Join(src, "one")))
	expectOK(t, c.run("send", "parts", filepath.Join(src, "two")))
	out := filepath.Join(t.TempDir(), "out")
	p := c.start("recv", "parts", "--group", "g", "--until-eof", "--dir", out)
	r := c.run("send", "parts", "--eof")
	expectOK(t, r)
	if !strings.Contains(r.stderr, "marked end of batch on parts") {
		t.Errorf("send --eof does not say it marked the end:\n%s", r)
	}
	expectOK(t, p.waitUpTo(30*time.Second))
	if got := tree(t, out); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("the receiver has %q, want one and two", got)
	}
	expectFail(t, c.run("send", "parts"), 2, "at least one PATH", "--eof")
}

// A source that is neither a regular file nor a directory is refused at
// once (opening a named pipe would wait forever); inside a directory such
// entries are named in one warning.
func TestCLISendNotRegular(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	joinGroups(t, c.url, "wd", "g")
	p := c.start("send", "wd", fifo)
	expectFail(t, p.waitUpTo(20*time.Second), 2, "cannot send "+fifo, "named pipe")

	tr := filepath.Join(dir, "tree")
	writeFile(t, filepath.Join(tr, "a.txt"), []byte("a"), 0o644)
	if err := syscall.Mkfifo(filepath.Join(tr, "p"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(tr, "dangling")); err != nil {
		t.Fatal(err)
	}
	r := c.run("send", "wd", tr)
	expectOK(t, r)
	if want := "warning: skipped 2 entries of " + tr + " that are not regular files: dangling, p\n"; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r)
	}
	if !strings.Contains(r.stderr, "sent a.txt") {
		t.Errorf("a.txt was not sent:\n%s", r)
	}
}

// Messages a new user met, in the words they should read.
func TestCLISendWording(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	file := filepath.Join(t.TempDir(), "data.txt")
	writeFile(t, file, []byte("x"), 0o644)
	missing := filepath.Join(t.TempDir(), "nosuchfile")
	for _, tc := range []struct {
		args    []string
		want    string
		notWant string
	}{
		{[]string{"send", "ch", missing}, "filecast: cannot send " + missing + ": no such file or directory", "send files"},
		{[]string{"send", "ch", file, "--max-bytes", "1MB"}, "--max-bytes 1MB: the budget must hold at least one chunk (1048512 bytes; see --chunk-size)", "invalid usage"},
		{[]string{"send", "ch", "--watch", missing}, "cannot watch", "invalid usage"},
		// Refused before connecting: a Redis that is not there is not the problem.
		{[]string{"--redis", "redis://127.0.0.1:1/0", "send", "ch", "--watch", missing}, "filecast: cannot watch " + missing + ": no such file or directory", "watch " + missing + ": cannot watch"},
		{[]string{"send", "ch", "--watch", file}, "cannot watch " + file + ": not a directory", ""},
		{[]string{"status", "a", "b"}, "status takes at most one CHANNEL, got 2 arguments", "argument(s)"},
		{[]string{"version", "x"}, "version takes no arguments", "argument(s)"},
		{[]string{"send", "ch", file, "--metrics-addr", "9465"}, "write :9465", ""},
		{[]string{"receive"}, "did you mean recv?", ""},
		{[]string{"recieve"}, "did you mean recv?", ""},
		{[]string{"push"}, "did you mean send?", ""},
		{[]string{"send", "ch", file, "--maxbytes", "3"}, "unknown flag: --maxbytes (see filecast send --help)", ""},
	} {
		r := c.run(tc.args...)
		expectFail(t, r, 2, tc.want)
		if tc.notWant != "" && strings.Contains(r.stderr, tc.notWant) {
			t.Errorf("stderr has %q:\n%s", tc.notWant, r)
		}
	}
}

// A metrics port in use is refused before recv creates its --dir.
func TestCLIRecvMetricsPortBeforeDir(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "incoming2")
	r := c.run("recv", "ch", "--group", "g", "--dir", dir, "--metrics-addr", ln.Addr().String())
	expectFail(t, r, 1, "address already in use")
	if strings.Contains(r.stderr, "created") {
		t.Errorf("recv said it created the directory before refusing:\n%s", r)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("recv created %s before refusing the metrics port (stat: %v)", dir, err)
	}
}

// Redis URLs that are nearly right: the message says what to write.
func TestCLIRedisURLHints(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{TCP: true})
	hp := c.srv.HostPort()
	cases := []struct{ url, want string }{
		{hp, "it has no scheme: write redis://" + hp + ";"},
		{"redis:/" + hp, "it is malformed (no host after redis://): write redis://" + hp + ";"},
	}
	// A cluster has one database and no address of its own here: the
	// database number is a standalone server's business.
	if os.Getenv("FILECAST_TEST_CLUSTER") == "" {
		cases = append(cases, struct{ url, want string }{"redis://" + hp + "/99", "database 99 does not exist on that server (it has 16 databases: 0 to 15)"})
	}
	for _, tc := range cases {
		expectFail(t, c.run("--redis", tc.url, "status"), 2, tc.want)
	}
}

// Durations under a millisecond are shown to the microsecond, not as 0s.
func TestTook(t *testing.T) {
	for d, want := range map[time.Duration]string{
		412345 * time.Nanosecond:  "412µs",
		1234567 * time.Nanosecond: "1ms",
		1500 * time.Millisecond:   "1.5s",
	} {
		if got := took(d).String(); got != want {
			t.Errorf("took(%v) = %s, want %s", d, got, want)
		}
	}
}

// "version --json" leaves "modified" out when the toolchain recorded no
// VCS state (-buildvcs=false) rather than claim a clean tree.
func TestBuildInfoJSONModified(t *testing.T) {
	for _, tc := range []struct {
		b    buildInfo
		want string
	}{
		{buildInfo{Version: "devel"}, ""},
		{buildInfo{Version: "devel", Modified: ptr(false)}, `"modified":false`},
		{buildInfo{Version: "devel", Modified: ptr(true)}, `"modified":true`},
	} {
		out, err := json.Marshal(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(out), `"modified"`); has != (tc.want != "") || !strings.Contains(string(out), tc.want) {
			t.Errorf("json of %+v = %s, want %q", tc.b, out, cmp.Or(tc.want, "no modified field"))
		}
	}
}
