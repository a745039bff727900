package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// sampleLog returns n lines of a day from a fixed set of clients.
func sampleLog(day string, n int) []byte {
	clients := []string{"24.0.1.2", "79.192.3.4", "126.0.5.6", "2003:e0::7", "10.0.0.1", "90.0.1.1"}
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "%s - - [%s:%02d:%02d:00 +0000] \"GET /%d HTTP/1.1\" 200 %d \"-\" \"test\"\n",
			clients[i*i%len(clients)], day, i/60%24, i%60, i, i)
	}
	return b.Bytes()
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func TestCommitOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	ctx := context.Background()
	rc, err := dialResults(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	a := newAgg()
	for _, l := range strings.Split(strings.TrimSpace(string(sampleLog("21/Nov/2026", 50))), "\n") {
		a.add([]byte(l))
	}
	fs := fileStats{token: "logs/abc", member: "w1", counts: a, logBytes: 100, wireBytes: 50,
		start: time.Now(), end: time.Now()}
	for i, want := range []bool{true, false, false} {
		added, err := commit(ctx, rc, "p:", fs)
		if err != nil {
			t.Fatal(err)
		}
		if added != want {
			t.Errorf("commit #%d added = %v, want %v", i+1, added, want)
		}
	}
	got, err := readCounts(ctx, rc, "p:")
	if err != nil {
		t.Fatal(err)
	}
	if d := compare(a.days, got); d != "" {
		t.Errorf("counts after three commits of one file: %s", d)
	}
	if n := srv.MustDo(t, "HGET", "p:daily:stats", "files"); n != "1" {
		t.Errorf("stats files = %s, want 1", n)
	}
	if keys := srv.Keys("daily:*"); len(keys) != 0 {
		t.Errorf("keys outside the prefix: %v", keys)
	}
}

// TestReceive runs the logagg handler in two groups, one with two members
// sharing the files, and checks both count every line exactly once.
func TestReceive(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(60*time.Second, cancel)
	c, err := filecast.New(ctx, filecast.Options{URL: srv.URL(), ChunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := dialResults(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for _, g := range []string{"solo", "shared"} {
		if err := c.Join(ctx, "logs", g); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	want := newAgg()
	for i, day := range []string{"21/Nov/2026", "22/Nov/2026", "23/Nov/2026", "24/Nov/2026"} {
		data := sampleLog(day, 2000+i)
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			want.add([]byte(l))
		}
		name := fmt.Sprintf("access-%d.log", i)
		if i%2 == 0 {
			data, name = gzipped(data), name+".gz"
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, m := range []struct{ group, member, prefix string }{
		{"solo", "w1", "solo:"}, {"shared", "w1", "shared:"}, {"shared", "w2", "shared:"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{channel: "logs", member: m.member, prefix: m.prefix, rc: rc, log: io.Discard, who: m.group + "/" + m.member}
			errs <- c.Receive(ctx, "logs", w.handle, filecast.ReceiveOptions{Group: m.group, Member: m.member, UntilEOF: true})
		}()
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, err := c.SendFile(ctx, "logs", filepath.Join(dir, e.Name()), "", filecast.SendOptions{MaxBytes: 16 << 10}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendEOF(ctx, "logs"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
	}
	for _, p := range []string{"solo:", "shared:"} {
		got, err := readCounts(ctx, rc, p)
		if err != nil {
			t.Fatal(err)
		}
		if d := compare(want.days, got); d != "" {
			t.Errorf("%s counts differ from the input: %s", p, d)
		}
		if n := srv.MustDo(t, "SCARD", p+"daily:done"); n != "4" {
			t.Errorf("%s: %s files recorded as done, want 4", p, n)
		}
	}
	var out bytes.Buffer
	if err := report(ctx, &out, rc, []string{"solo:", "shared:"}, 5, ""); err != nil {
		t.Errorf("report: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "agree: all 2 result sets are identical") {
		t.Errorf("report does not say the groups agree:\n%s", out.String())
	}
}
