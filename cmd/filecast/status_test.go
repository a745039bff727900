package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// Typos are errors (exit 1) that say what there is, not an empty success.
func TestCLIStatusTypos(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	expectFail(t, c.run("status", "nosuch"), 1, `no such channel "nosuch"`, "no channel has been used")
	joinGroups(t, c.url, "ch", "g")
	expectFail(t, c.run("status", "nosuch"), 1, `no such channel "nosuch"`, "the channels there are: ch", "--prefix")
	expectFail(t, c.run("status", "ch", "--prefix", "other"), 1, "no such channel")
	expectFail(t, c.run("clean", "nochannel", "--stale", "1m"), 1, `no such channel "nochannel"`)
	expectFail(t, c.run("clean", "ch", "--drop-group", "nosuch"), 1, `has no group "nosuch"`, "its groups are: g")
	expectFail(t, c.run("retry", "nochannel", "--group", "g", "--all"), 1, `no such channel "nochannel"`)
	expectFail(t, c.run("retry", "ch", "--group", "nosuch", "--all"), 1, `has no group "nosuch"`, "its groups are: g")
	expectFail(t, c.run("status", "ch", "--interval", "1s"), 2, "--interval goes with --watch")
	if st := c.status("ch"); len(st.Dropped) != 0 || len(st.Groups) != 1 {
		t.Errorf("after the typos: groups %+v, dropped %+v; want g, and nothing dropped", st.Groups, st.Dropped)
	}
	expectOK(t, c.run("clean", "ch", "--drop-group", "g"))
	expectFail(t, c.run("clean", "ch", "--drop-group", "g"), 1, `has no group "g"`, "it was dropped")
}

// status of a real transfer: a sender waiting for budget that one group
// (no member ever ran) holds, a member killed mid-file shown as gone, the
// expected size and percentages; --json checked against docs/STATUS.md;
// --watch as JSON lines and as text snapshots, ended by a signal with exit 0.
func TestCLIStatusLive(t *testing.T) {
	t.Parallel()
	c := newCLI(t, redistest.Config{})
	src := filepath.Join(t.TempDir(), "big.bin")
	const size = 24 << 20
	writeFile(t, src, randomBytes(21, size), 0o644)
	joinGroups(t, c.url, "st", "w", "x")
	recv := c.start("recv", "st", "--group", "w", "--member", "m1", "--dir", t.TempDir(), "--lease", "1s")
	waitFor(t, 10*time.Second, "member m1 to take its lease", func() bool {
		return len(c.srv.Keys("fc:{st}:g:w:m:m1")) == 1
	})
	send, _ := startBlockedSend(t, c, "st", src) // group g, no member: the budget fills
	recv.signal(syscall.SIGKILL)
	recv.wait()
	expectOK(t, c.run("clean", "st", "--drop-group", "x"))

	var st filecast.ChannelStatus
	waitFor(t, 20*time.Second, "status to show the waiting sender and m1 gone", func() bool {
		st = c.status("st")
		gone := false
		for _, g := range st.Groups {
			for _, m := range g.Members {
				gone = gone || m.Name == "m1" && m.Gone
			}
		}
		return gone && len(st.Waiting) == 1
	})
	if len(st.Files) != 1 || st.Files[0].Expected != size {
		t.Fatalf("files %+v, want big.bin expected %d bytes", st.Files, size)
	}
	chunks, _ := st.Files[0].TotalChunks()

	r := c.run("status", "st", "--json")
	expectOK(t, r)
	var report map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	checkDocumented(t, report, []string{"", "redis", "channels[]", "channels[].redis", "channels[].files[]",
		"channels[].groups[]", "channels[].groups[].members[]", "channels[].dropped_groups[]", "channels[].waiting_senders[]"})

	r = c.run("status", "st")
	expectOK(t, r)
	for _, want := range []string{
		"big.bin (sender ", "for room in the budget; held by g ", // the waiting sender and who holds the budget
		"m1 (gone ", "(gone)", // the killed member, the group without members
		"24.0 MiB", fmt.Sprintf("/%d (", chunks), // the expected size, chunks committed of all
		"group x was dropped",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status does not show %q:\n%s", want, r.stdout)
		}
	}

	// --watch --json: one object per interval, one per line; SIGINT ends it with 0.
	w := c.start("status", "st", "--watch", "--json", "--interval", "100ms")
	waitFor(t, 20*time.Second, "three snapshots", func() bool { return strings.Count(readFile(t, w), "\n") >= 3 })
	w.signal(syscall.SIGINT)
	r = w.wait()
	expectOK(t, r)
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		var rep struct {
			Schema   int
			Channels []filecast.ChannelStatus
		}
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil || rep.Schema != filecast.StatusSchema ||
			len(rep.Channels) != 1 || rep.Channels[0].Channel != "st" {
			t.Errorf("--watch --json line %d is not a status object of channel st (%v): %s", lines, err, sc.Text())
		}
	}
	if lines < 3 {
		t.Errorf("--watch --json printed %d lines, want 3 or more:\n%s", lines, r.stdout)
	}

	// --watch off a terminal: snapshots after a blank line; SIGTERM ends it with 0.
	w = c.start("status", "st", "--watch", "--interval", "100ms")
	waitFor(t, 20*time.Second, "two snapshots", func() bool { return count(readFile(t, w), "filecast status, ") >= 2 })
	w.signal(syscall.SIGTERM)
	r = w.wait()
	expectOK(t, r)
	if n := strings.Count(r.stdout, "\n\nfilecast status, "); n < 1 || strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("--watch off a terminal: %d snapshots after a blank line (want 1 or more), and no escapes:\n%q", n, r.stdout)
	}
	send.signal(syscall.SIGKILL)
	send.wait()
}

// readFile returns what p has written to stdout so far.
func readFile(t *testing.T, p *proc) string {
	b, err := os.ReadFile(p.out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docField is a field of the status JSON as docs/STATUS.md lists it.
type docField struct {
	name     string
	optional bool
}

// statusDoc reads the field tables of docs/STATUS.md: for each object
// path (channels[].files[], "" for the top level), its fields.
func statusDoc(t *testing.T) map[string][]docField {
	t.Helper()
	b, err := os.ReadFile("../../docs/STATUS.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^### .*\\((.*)\\)$")
	path := regexp.MustCompile("`([^`]+)`")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|(.*)\\|$")
	doc := map[string][]docField{}
	var paths []string
	for _, line := range strings.Split(string(b), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			paths = nil
			for _, p := range path.FindAllStringSubmatch(m[1], -1) {
				paths = append(paths, p[1])
			}
			if len(paths) == 0 { // (top level)
				paths = []string{""}
			}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && paths != nil {
			for _, p := range paths {
				doc[p] = append(doc[p], docField{m[1], strings.Contains(m[2], "*optional*")})
			}
		}
	}
	if len(doc) < 10 {
		t.Fatalf("docs/STATUS.md: found the fields of %d objects, want 10 or more", len(doc))
	}
	return doc
}

// objectsAt returns the objects at path in v: "a[].b" is field b of each
// element of array a.
func objectsAt(v any, path string) []map[string]any {
	vs := []any{v}
	if path != "" {
		for _, seg := range strings.Split(path, ".") {
			name, isArray := strings.CutSuffix(seg, "[]")
			var next []any
			for _, x := range vs {
				m, _ := x.(map[string]any)
				f, ok := m[name]
				if !ok {
					continue
				}
				if arr, ok := f.([]any); ok && isArray {
					next = append(next, arr...)
				} else if !isArray {
					next = append(next, f)
				}
			}
			vs = next
		}
	}
	var out []map[string]any
	for _, x := range vs {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// checkDocumented checks report against docs/STATUS.md both ways: every
// field documented (and not optional) is there, every field there is
// documented. mustHave are the paths the report must hold objects at.
func checkDocumented(t *testing.T, report map[string]any, mustHave []string) {
	t.Helper()
	doc := statusDoc(t)
	if got := report["schema"]; got != float64(filecast.StatusSchema) {
		t.Errorf("schema = %v, want %d", got, filecast.StatusSchema)
	}
	for path, fields := range doc {
		objs := objectsAt(report, path)
		if len(objs) == 0 && slices.Contains(mustHave, path) {
			t.Errorf("status --json has no object at %q", path)
		}
		for _, obj := range objs {
			for _, f := range fields {
				if _, ok := obj[f.name]; !ok && !f.optional {
					t.Errorf("status --json: %q lacks field %q, which docs/STATUS.md says is always there", path, f.name)
				}
			}
			for k := range obj {
				if !slices.ContainsFunc(fields, func(f docField) bool { return f.name == k }) {
					t.Errorf("status --json: field %q of %q is not in docs/STATUS.md", k, path)
				}
			}
		}
	}
	for _, p := range mustHave {
		if _, ok := doc[p]; !ok {
			t.Errorf("docs/STATUS.md does not describe %q", p)
		}
	}
}
