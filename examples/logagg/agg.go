package main

import (
	"bytes"
	"net/netip"

	"github.com/phuslu/iploc"
)

// Unknown is the country of addresses iploc does not place.
const Unknown = "ZZ"

// agg counts log lines by day and client country.
type agg struct {
	days  map[string]map[string]int64 // "2026-11-21" -> country -> lines
	lines int64                       // lines seen
	bad   int64                       // lines without a client address or timestamp

	lastRaw [11]byte         // "21/Nov/2026" of the previous line
	lastDay map[string]int64 // its counts
}

func newAgg() *agg { return &agg{days: make(map[string]map[string]int64)} }

// add counts one line of an Apache common or combined log:
//
//	203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 ...
//
// The day is the date as written in the timestamp (the server's local day,
// as in "Redis in Action" §6.6), whatever its UTC offset.
func (a *agg) add(line []byte) {
	a.lines++
	ip, day, ok := parseLine(line)
	if !ok {
		a.bad++
		return
	}
	if a.lastDay == nil || !bytes.Equal(a.lastRaw[:], day) {
		key, ok := dayKey(day)
		if !ok {
			a.bad++
			return
		}
		m := a.days[key]
		if m == nil {
			m = make(map[string]int64)
			a.days[key] = m
		}
		copy(a.lastRaw[:], day)
		a.lastDay = m
	}
	a.lastDay[country(ip)]++
}

// country returns the ISO 3166 code of ip, or Unknown.
func country(ip netip.Addr) string {
	c := iploc.IPCountry(ip.Unmap())
	if c == "" {
		return Unknown
	}
	return c
}

// parseLine returns the client address (the first field) and the raw day
// ("21/Nov/2026") of the timestamp of a log line.
func parseLine(line []byte) (netip.Addr, []byte, bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return netip.Addr{}, nil, false
	}
	ip, ok := parseIPv4(line[:sp])
	if !ok {
		var err error
		if ip, err = netip.ParseAddr(string(line[:sp])); err != nil {
			return netip.Addr{}, nil, false
		}
	}
	rest := line[sp:]
	br := bytes.IndexByte(rest, '[')
	if br < 0 || len(rest) < br+1+12 || rest[br+12] != ':' {
		return netip.Addr{}, nil, false
	}
	return ip, rest[br+1 : br+12], true
}

// parseIPv4 parses dotted-quad IPv4 without allocating.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	k, v, digits := 0, 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v*10 + int(c-'0')
			digits++
			if digits > 3 || v > 255 {
				return netip.Addr{}, false
			}
		case c == '.' && digits > 0 && k < 3:
			a[k] = byte(v)
			k++
			v, digits = 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if k != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	a[3] = byte(v)
	return netip.AddrFrom4(a), true
}

var months = map[string]string{
	"Jan": "01", "Feb": "02", "Mar": "03", "Apr": "04", "May": "05", "Jun": "06",
	"Jul": "07", "Aug": "08", "Sep": "09", "Oct": "10", "Nov": "11", "Dec": "12",
}

// dayKey turns "21/Nov/2026" into "2026-11-21".
func dayKey(raw []byte) (string, bool) {
	if len(raw) != 11 || raw[2] != '/' || raw[6] != '/' || !digits(raw[0:2]) || !digits(raw[7:11]) {
		return "", false
	}
	mm, ok := months[string(raw[3:6])]
	if !ok {
		return "", false
	}
	return string(raw[7:11]) + "-" + mm + "-" + string(raw[0:2]), true
}

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
