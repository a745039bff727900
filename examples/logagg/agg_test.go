package main

import (
	"net/netip"
	"testing"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line, ip, day string
		ok            bool
	}{
		{`24.0.1.2 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8"`, "24.0.1.2", "21/Nov/2026", true},
		{`2003:e0::1 - frank [01/Jan/2027:00:00:01 -0700] "GET / HTTP/1.0" 200 2326`, "2003:e0::1", "01/Jan/2027", true},
		{`::ffff:1.128.0.1 - - [05/Feb/2026:23:59:59 +1000] "GET /x HTTP/1.1" 404 -`, "::ffff:1.128.0.1", "05/Feb/2026", true},
		{`256.1.1.1 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1`, "", "", false},
		{`1.2.3 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1`, "", "", false},
		{`1.2.3.4 - - 21/Nov/2026:10:00:00 +0000 "GET / HTTP/1.1" 200 1`, "", "", false},
		{`1.2.3.4 - - [21/Nov/2026]`, "", "", false},
		{``, "", "", false},
		{`garbage`, "", "", false},
	}
	for _, tt := range tests {
		ip, day, ok := parseLine([]byte(tt.line))
		if ok != tt.ok {
			t.Errorf("parseLine(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if ip != netip.MustParseAddr(tt.ip) || string(day) != tt.day {
			t.Errorf("parseLine(%q) = %v %q, want %s %q", tt.line, ip, day, tt.ip, tt.day)
		}
	}
}

func TestDayKey(t *testing.T) {
	for raw, want := range map[string]string{
		"21/Nov/2026": "2026-11-21", "01/Jan/2027": "2027-01-01", "31/Dec/1999": "1999-12-31",
		"21/Foo/2026": "", "2x/Nov/2026": "", "21-Nov-2026": "", "21/Nov/202": "",
	} {
		got, ok := dayKey([]byte(raw))
		if ok != (want != "") || got != want {
			t.Errorf("dayKey(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

func TestAgg(t *testing.T) {
	a := newAgg()
	for _, l := range []string{
		`24.0.1.2 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1`,
		`73.0.9.9 - - [21/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1`,
		`79.192.3.4 - - [21/Nov/2026:10:00:02 +0000] "GET / HTTP/1.1" 200 1`,
		`2003:e0::7 - - [22/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1`,
		`10.0.0.1 - - [22/Nov/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1`,
		`24.0.1.2 - - [21/Nov/2026:23:59:59 +0000] "GET / HTTP/1.1" 200 1`,
		`not a log line`,
	} {
		a.add([]byte(l))
	}
	want := map[string]map[string]int64{
		"2026-11-21": {"US": 3, "DE": 1},
		"2026-11-22": {"DE": 1, "ZZ": 1},
	}
	if a.lines != 7 || a.bad != 1 {
		t.Errorf("lines %d bad %d, want 7 and 1", a.lines, a.bad)
	}
	if d := compare(want, a.days); d != "" {
		t.Errorf("counts differ from expected: %s (got %v)", d, a.days)
	}
}

func BenchmarkAgg(b *testing.B) {
	line := []byte(`114.240.147.155 - - [22/Nov/2026:00:00:00 +0000] "GET /users/65537 HTTP/1.1" 301 16571 "https://www.bing.com/" "Prometheus/2.55.0"`)
	a := newAgg()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		a.add(line)
	}
}
