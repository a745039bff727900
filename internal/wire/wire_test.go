package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckName(t *testing.T) {
	good := []string{"a", "a/b/c.log", "résumé.txt", "..hidden", "a..b", strings.Repeat("x", 255)}
	bad := []string{"", "/etc/passwd", "../x", "a/../b", "a/./b", ".", "..", "a//b", "a/", "a\\b",
		"a\x00b", "a\nb", "\x7f", "\u0085", strings.Repeat("x", 256), strings.Repeat("a/", 2049) + "a", "\xff"}
	for _, n := range good {
		if err := CheckName(n); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckName(n); !errors.Is(err, ErrMalformed) {
			t.Errorf("CheckName(%q) = %v, want ErrMalformed", n, err)
		}
	}
}

func TestCheckChannel(t *testing.T) {
	for _, s := range []string{"logs", "a.b-c_d/e"} {
		if err := CheckChannel("channel", s); err != nil {
			t.Errorf("CheckChannel(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "a b", "a{b", "a}b", "a:b", "a*", strings.Repeat("x", 201)} {
		if err := CheckChannel("channel", s); err == nil {
			t.Errorf("CheckChannel(%q) = nil, want an error", s)
		}
	}
}

func TestFileRoundTrip(t *testing.T) {
	in := File{Kind: KindFile, Name: "a/b", Mode: 0o640, ModTime: time.Unix(0, 1700000000123456789), ChunkSize: 4096, Sender: "h/1", Expect: 123456}
	f := in.Fields()
	h := map[string]string{"state": "uploading"}
	for i := 0; i < len(f); i += 2 {
		h[f[i]] = f[i+1]
	}
	out, err := ParseFile(h)
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != in.Name || out.Mode != in.Mode || !out.ModTime.Equal(in.ModTime) || out.ChunkSize != in.ChunkSize || out.Size != -1 ||
		out.Expect != in.Expect {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

// The expected size is informative: a record without it, or with one this
// version cannot read, is still read (Expect 0: unknown).
func TestParseFileExpectOptional(t *testing.T) {
	for _, v := range []string{"", "-7", "x", "99999999999999999999"} {
		h := map[string]string{"v": "1", "kind": "file", "name": "x", "chunk": "4096", "state": "uploading", "alg": Algorithm}
		if v != "" {
			h["expect"] = v
		}
		f, err := ParseFile(h)
		if err != nil {
			t.Errorf("expect=%q: ParseFile: %v, want the record read", v, err)
			continue
		}
		if f.Expect != 0 {
			t.Errorf("expect=%q: Expect = %d, want 0 (unknown)", v, f.Expect)
		}
	}
}

func TestParseFileRejects(t *testing.T) {
	base := map[string]string{"v": "1", "kind": "file", "name": "x", "chunk": "4096", "state": "uploading", "alg": Algorithm}
	cases := map[string][2]string{
		"version":    {"v", "3"},
		"kind":       {"kind", "dir"},
		"name":       {"name", "../x"},
		"state":      {"state", "weird"},
		"chunk":      {"chunk", "999999999999"},
		"chunk zero": {"chunk", "0"},
		"alg":        {"alg", "md5"},
		"size":       {"size", "-5"},
		"mode":       {"mode", "9z"},
		"digest":     {"digest", "zz"},
	}
	for name, kv := range cases {
		h := map[string]string{}
		for k, v := range base {
			h[k] = v
		}
		h[kv[0]] = kv[1]
		if _, err := ParseFile(h); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseFile = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := ParseFile(base); err != nil {
		t.Errorf("base record: %v", err)
	}
}

func TestParseEntry(t *testing.T) {
	d := Digest{1, 2, 3}
	e, err := ParseEntry("0-7", map[string]string{"n": "100", "h": d.String()}, 4096)
	if err != nil || e.Kind != ChunkEntry || e.Seq != 7 || e.Len != 100 || e.Digest != d {
		t.Errorf("chunk entry: %+v, %v", e, err)
	}
	e, err = ParseEntry("0-8", map[string]string{"eof": "1", "size": "700", "h": d.String()}, 4096)
	if err != nil || e.Kind != EOFEntry || e.Size != 700 {
		t.Errorf("eof entry: %+v, %v", e, err)
	}
	bad := []struct {
		id string
		f  map[string]string
	}{
		{"1-1", map[string]string{"n": "1", "h": d.String()}},
		{"0-0", map[string]string{"n": "1", "h": d.String()}},
		{"0-1", map[string]string{"n": "5000", "h": d.String()}},
		{"0-1", map[string]string{"n": "0", "h": d.String()}},
		{"0-1", map[string]string{"n": "10", "h": "short"}},
		{"0-1", map[string]string{"eof": "1", "size": "-1", "h": d.String()}},
	}
	for _, b := range bad {
		if _, err := ParseEntry(b.id, b.f, 4096); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseEntry(%s, %v) = %v, want ErrMalformed", b.id, b.f, err)
		}
	}
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/abs", "a\x00b", "ok.txt", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") || strings.Contains(name, "\\") {
			t.Fatalf("accepted unsafe name %q", name)
		}
		for _, p := range strings.Split(name, "/") {
			if p == ".." || p == "." || p == "" {
				t.Fatalf("accepted name %q with component %q", name, p)
			}
		}
	})
}

func FuzzParseEntry(f *testing.F) {
	f.Add("0-1", "n", "10", "h", strings.Repeat("a", 32))
	f.Add("0-2", "eof", "1", "size", "-3")
	f.Add("x", "abort", "why", "", "")
	f.Fuzz(func(t *testing.T, id, k1, v1, k2, v2 string) {
		e, err := ParseEntry(id, map[string]string{k1: v1, k2: v2}, 4096)
		if err == nil && e.Kind == ChunkEntry && (e.Len < 1 || e.Len > 4096) {
			t.Fatalf("accepted chunk length %d", e.Len)
		}
	})
}

func FuzzParseFile(f *testing.F) {
	f.Add("1", "file", "a/b", "4096", "uploading", "644", "-1")
	f.Add("1", "mark", "", "0", "complete", "", "")
	f.Fuzz(func(t *testing.T, v, kind, name, chunk, state, mode, size string) {
		rec, err := ParseFile(map[string]string{"v": v, "kind": kind, "name": name, "chunk": chunk,
			"state": state, "mode": mode, "size": size, "alg": Algorithm})
		if err != nil {
			return
		}
		if rec.Kind == KindFile && (CheckName(rec.Name) != nil || rec.ChunkSize < 1 || rec.ChunkSize > MaxChunkSize) {
			t.Fatalf("accepted bad record %+v", rec)
		}
	})
}

func TestSentRoundTrip(t *testing.T) {
	for _, src := range []string{"/data/a file", ""} {
		in := Sent{Size: 12345, ModTime: time.Unix(0, 1700000000123456789), Mode: 0o640, Digest: Digest{1, 2, 3}, ID: "abc123", Source: src}
		out, err := ParseSent(in.String())
		if err != nil {
			t.Fatal(err)
		}
		if out != (Sent{Size: in.Size, ModTime: out.ModTime, Mode: in.Mode, Digest: in.Digest, ID: in.ID, Source: in.Source}) || !out.ModTime.Equal(in.ModTime) {
			t.Errorf("round trip: got %+v, want %+v", out, in)
		}
	}
	d := Digest{}.String()
	for _, bad := range []string{"", "1 2 644 " + d + " x", "1 2 644 " + d + "  /p", "-1 2 644 " + d + " x /p",
		"1 2 9 " + d + " x /p", "1 2 644 zz x /p", "1 x 644 " + d + " x /p"} {
		if _, err := ParseSent(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSent(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzParseSent(f *testing.F) {
	f.Add("12 1700000000123456789 644 " + strings.Repeat("a", 32) + " id /a b")
	f.Add("0 0 0 x y ")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseSent(v)
		if err != nil {
			return
		}
		if s.Size < 0 || s.Mode&^0o777 != 0 || s.ID == "" {
			t.Fatalf("accepted bad record %+v", s)
		}
		if again, err := ParseSent(s.String()); err != nil || again.Source != s.Source || again.ID != s.ID {
			t.Fatalf("record %q does not survive a round trip: %+v, %v", v, again, err)
		}
	})
}
