package main

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/phuslu/iploc"
)

func small(seed uint64) Params {
	return Params{Days: 3, Size: 600 << 10, Gzip: 2, Seed: seed, Start: "2026-11-21"}
}

func mustGenerate(t *testing.T, dir string, p Params) (*Manifest, bool) {
	t.Helper()
	m, generated, err := Generate(dir, p)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return m, generated
}

// readAll returns the files of m in dir, keyed by name, as stored.
func readAll(t *testing.T, dir string, m *Manifest) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

// logLines returns the decompressed lines of a stored file.
func logLines(t *testing.T, name string, b []byte) []string {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r = zr
	}
	var lines []string
	s := bufio.NewScanner(r)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return lines
}

func TestDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	ma, _ := mustGenerate(t, a, small(7))
	mb, _ := mustGenerate(t, b, small(7))
	mc, _ := mustGenerate(t, c, small(8))
	fa, fb, fc := readAll(t, a, ma), readAll(t, b, mb), readAll(t, c, mc)
	if len(fa) != 3 {
		t.Fatalf("got %d files, want 3", len(fa))
	}
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if bytes.Equal(data, fc[name]) {
			t.Errorf("%s is the same with seeds 7 and 8", name)
		}
	}
	if ma.Lines != mb.Lines || ma.Bytes != mb.Bytes {
		t.Errorf("manifests differ: %d lines %d bytes vs %d lines %d bytes", ma.Lines, ma.Bytes, mb.Lines, mb.Bytes)
	}
}

func TestFilesAndLines(t *testing.T) {
	dir := t.TempDir()
	p := small(1)
	m, _ := mustGenerate(t, dir, p)
	want := []string{"access-2026-11-21.log.gz", "access-2026-11-22.log", "access-2026-11-23.log.gz"}
	var total int64
	for i, f := range m.Files {
		if f.Name != want[i] {
			t.Errorf("file %d is %s, want %s", i, f.Name, want[i])
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		lines := logLines(t, f.Name, b)
		if int64(len(lines)) != f.Lines {
			t.Errorf("%s: %d lines, manifest says %d", f.Name, len(lines), f.Lines)
		}
		total += f.LogBytes
		day, _ := time.Parse("2006-01-02", f.Day)
		stamp := "[" + day.Format("02/Jan/2006") + ":"
		for _, l := range lines {
			if !strings.Contains(l, stamp) || !strings.Contains(l, " +0000] \"") {
				t.Fatalf("%s: line outside its day: %s", f.Name, l)
			}
		}
		if first, last := lines[0], lines[len(lines)-1]; !strings.Contains(first, ":00:00:") || !strings.Contains(last, ":23:") {
			t.Errorf("%s: timestamps do not span the day: first %q, last %q", f.Name, first, last)
		}
	}
	if total < p.Size || total > p.Size+int64(len(m.Files))*1024 {
		t.Errorf("%d bytes of logs, want about %d", total, p.Size)
	}
}

// TestCountries checks that the client addresses of the generated lines
// map to many countries with iploc, and that the manifest's tally agrees.
func TestCountries(t *testing.T) {
	dir := t.TempDir()
	m, _ := mustGenerate(t, dir, small(3))
	for name, data := range readAll(t, dir, m) {
		day := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "access-"), ".gz"), ".log")
		got := map[string]int64{}
		for _, l := range logLines(t, name, data) {
			ip, err := netip.ParseAddr(l[:strings.IndexByte(l, ' ')])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			c := iploc.IPCountry(ip)
			if c == "" {
				c = "ZZ"
			}
			got[c]++
		}
		known := 0
		for c := range got {
			if c != "ZZ" {
				known++
			}
		}
		if known < 5 {
			t.Errorf("%s: clients from %d known countries (%v), want at least 5", name, known, got)
		}
		want := m.Counts[day]
		if len(want) != len(got) {
			t.Errorf("%s: manifest counts %v, lines give %v", name, want, got)
		}
		for c, n := range got {
			if want[c] != n {
				t.Errorf("%s: %s: manifest says %d lines, file has %d", name, c, want[c], n)
			}
		}
	}
}

// TestPrefixesMapToTheirCountry checks the address table against iploc's
// database, over the same random draws the generator makes.
func TestPrefixesMapToTheirCountry(t *testing.T) {
	g := newGen(1, 0, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	seen := map[string]bool{}
	for range 200000 {
		a, c := g.addr()
		var want string
		for _, p := range prefixes {
			if p.block.Contains(a) {
				want = p.country
			}
		}
		if want == "" {
			t.Fatalf("%v is in no prefix", a)
		}
		if c != want {
			t.Fatalf("%v maps to %s, its prefix is listed as %s", a, c, want)
		}
		seen[c] = true
	}
	if len(seen) != len(countryWeight) {
		t.Errorf("drew %d countries, want all %d", len(seen), len(countryWeight))
	}
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	p := small(5)
	if _, generated := mustGenerate(t, dir, p); !generated {
		t.Fatal("first run did not generate")
	}
	st1, err := os.Stat(filepath.Join(dir, "access-2026-11-22.log"))
	if err != nil {
		t.Fatal(err)
	}
	if _, generated := mustGenerate(t, dir, p); generated {
		t.Error("second run with the same parameters regenerated")
	}
	st2, _ := os.Stat(filepath.Join(dir, "access-2026-11-22.log"))
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Error("cached file was rewritten")
	}

	// A damaged file is regenerated.
	if err := os.Truncate(filepath.Join(dir, "access-2026-11-22.log"), 10); err != nil {
		t.Fatal(err)
	}
	if _, generated := mustGenerate(t, dir, p); !generated {
		t.Error("truncated file not regenerated")
	}

	// Other parameters regenerate and remove the files that no longer belong.
	p.Days, p.Gzip = 2, 0
	m, generated := mustGenerate(t, dir, p)
	if !generated {
		t.Fatal("different parameters did not regenerate")
	}
	names, _ := filepath.Glob(filepath.Join(dir, "access-*"))
	if len(names) != 2 || len(m.Files) != 2 {
		t.Errorf("after regenerating for 2 days the directory holds %v", names)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".gz") {
			t.Errorf("stale gzip file left: %s", n)
		}
	}
}

// BenchmarkGenerate measures the generator (tests never assert speed).
func BenchmarkGenerate(b *testing.B) {
	p := Params{Days: 3, Size: 96 << 20, Gzip: 3, Seed: 1, Start: "2026-11-21"}
	b.SetBytes(p.Size)
	for b.Loop() {
		if _, _, err := Generate(b.TempDir(), p); err != nil {
			b.Fatal(err)
		}
	}
}
