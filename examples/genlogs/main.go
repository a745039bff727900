// Command genlogs writes synthetic web access logs for the filecast demo: one
// file per day in Apache combined log format, some of them gzipped.
//
//	genlogs -dir /tmp/logs -days 3 -size 96MiB -gzip 3 -seed 1
//
// Client addresses are drawn from a seeded PRNG over real, allocated address
// blocks of major access ISPs in about fifteen countries (see prefixes), so
// github.com/phuslu/iploc maps them to those countries; a small share comes
// from a private range (iploc: "ZZ", unknown). Each line's timestamp lies in
// its file's day and the timestamps grow through the file.
//
// The output depends only on the flags: the same flags write the same bytes.
// The directory gets a manifest (.genlogs.json) naming the flags, the files
// and the expected line count per day and country (computed with iploc while
// generating); when it already matches the flags and the files are there,
// genlogs does nothing (so the demo regenerates its logs only when asked for
// different ones). Stale access-*.log[.gz] files are removed on regeneration.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/phuslu/iploc"

	"github.com/filecast/filecast/internal/units"
)

// ManifestName is the file in the output directory describing its contents.
const ManifestName = ".genlogs.json"

// formatVersion changes whenever the generator would write different bytes
// for the same flags, so a cache from an older generator is not reused.
const formatVersion = 1

// Params are what the output depends on.
type Params struct {
	Days  int    `json:"days"`
	Size  int64  `json:"size"`  // total uncompressed bytes over all files
	Gzip  int    `json:"gzip"`  // every Nth file is gzipped (0: none)
	Seed  uint64 `json:"seed"`  // PRNG seed
	Start string `json:"start"` // first day, YYYY-MM-DD
}

// FileInfo describes one generated file.
type FileInfo struct {
	Name     string `json:"name"`
	Day      string `json:"day"`
	Bytes    int64  `json:"bytes"`     // size on disk
	LogBytes int64  `json:"log_bytes"` // uncompressed size
	Lines    int64  `json:"lines"`
}

// Manifest is the content of ManifestName.
type Manifest struct {
	Version int                         `json:"version"`
	IPLoc   string                      `json:"iploc"` // iploc database version used for Counts
	Params  Params                      `json:"params"`
	Files   []FileInfo                  `json:"files"`
	Lines   int64                       `json:"lines"`
	Bytes   int64                       `json:"bytes"`     // on disk
	Counts  map[string]map[string]int64 `json:"counts"`    // day -> country -> lines
	Elapsed float64                     `json:"elapsed_s"` // generation time
}

func main() {
	var (
		dir   = flag.String("dir", "logs", "output directory")
		days  = flag.Int("days", 3, "number of days, one file per day")
		size  = units.Bytes(96 << 20)
		gz    = flag.Int("gzip", 3, "gzip one file of every N (1: all, 0: none)")
		seed  = flag.Uint64("seed", 1, "PRNG seed")
		day0  = flag.String("start", "2026-11-21", "first day (YYYY-MM-DD)")
		quiet = flag.Bool("q", false, "print nothing but errors")
	)
	flag.Var(&size, "size", "total uncompressed size of all files (e.g. 96MiB, 500MB)")
	flag.Parse()
	p := Params{Days: *days, Size: int64(size), Gzip: *gz, Seed: *seed, Start: *day0}
	m, generated, err := Generate(*dir, p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genlogs:", err)
		os.Exit(1)
	}
	if *quiet {
		return
	}
	if generated {
		fmt.Fprintf(os.Stderr, "genlogs: wrote %d files to %s: %s of logs (%d lines), %s on disk, in %.2fs\n",
			len(m.Files), *dir, units.FormatBytes(sumLogBytes(m)), m.Lines, units.FormatBytes(m.Bytes), m.Elapsed)
	} else {
		fmt.Fprintf(os.Stderr, "genlogs: %s already holds these logs (%d files, %s on disk); not regenerating\n",
			*dir, len(m.Files), units.FormatBytes(m.Bytes))
	}
}

func sumLogBytes(m *Manifest) int64 {
	var n int64
	for _, f := range m.Files {
		n += f.LogBytes
	}
	return n
}

func (p Params) validate() (time.Time, error) {
	start, err := time.Parse("2006-01-02", p.Start)
	switch {
	case err != nil:
		return start, fmt.Errorf("-start %q: want YYYY-MM-DD", p.Start)
	case p.Days < 1 || p.Days > 3660:
		return start, fmt.Errorf("-days %d: want 1 to 3660", p.Days)
	case p.Size < int64(p.Days)*1024:
		return start, fmt.Errorf("-size %d: want at least 1 KiB per day", p.Size)
	case p.Gzip < 0:
		return start, fmt.Errorf("-gzip %d: must not be negative", p.Gzip)
	}
	return start, nil
}

// Generate writes the logs for p into dir, or reports generated=false if
// dir already holds them.
func Generate(dir string, p Params) (m *Manifest, generated bool, err error) {
	start, err := p.validate()
	if err != nil {
		return nil, false, err
	}
	if m, ok := cached(dir, p); ok {
		return m, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, err
	}
	os.Remove(filepath.Join(dir, ManifestName)) // invalid from here on
	began := time.Now()

	m = &Manifest{Version: formatVersion, IPLoc: iploc.Version, Params: p, Files: make([]FileInfo, p.Days),
		Counts: make(map[string]map[string]int64)}
	counts := make([]map[string]int64, p.Days)
	errs := make([]error, p.Days)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range p.Days {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			day := start.AddDate(0, 0, i)
			target := p.Size / int64(p.Days)
			if i == p.Days-1 {
				target = p.Size - target*int64(p.Days-1)
			}
			gzipped := p.Gzip > 0 && i%p.Gzip == 0
			m.Files[i], counts[i], errs[i] = writeDay(dir, day, target, gzipped, p.Seed, uint64(i))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, false, err
	}
	keep := map[string]bool{}
	for i, f := range m.Files {
		keep[f.Name] = true
		m.Lines += f.Lines
		m.Bytes += f.Bytes
		m.Counts[f.Day] = counts[i]
	}
	removeStale(dir, keep)
	m.Elapsed = time.Since(began).Seconds()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(filepath.Join(dir, ManifestName), append(b, '\n')); err != nil {
		return nil, false, err
	}
	return m, true, nil
}

// ReadManifest reads the manifest in dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	return &m, nil
}

// cached reports whether dir already holds the files for p.
func cached(dir string, p Params) (*Manifest, bool) {
	m, err := ReadManifest(dir)
	if err != nil || m.Version != formatVersion || m.IPLoc != iploc.Version || m.Params != p || len(m.Files) != p.Days {
		return nil, false
	}
	for _, f := range m.Files {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil || !st.Mode().IsRegular() || st.Size() != f.Bytes {
			return nil, false
		}
	}
	return m, true
}

// removeStale deletes generated log files of other parameters.
func removeStale(dir string, keep map[string]bool) {
	for _, pat := range []string{"access-*.log", "access-*.log.gz"} {
		old, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, p := range old {
			if !keep[filepath.Base(p)] {
				os.Remove(p)
			}
		}
	}
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	f.Chmod(0o644)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeDay writes the log of one day: target uncompressed bytes (rounded up
// to a whole line). Its content depends only on its arguments.
func writeDay(dir string, day time.Time, target int64, gzipped bool, seed, index uint64) (FileInfo, map[string]int64, error) {
	name := "access-" + day.Format("2006-01-02") + ".log"
	if gzipped {
		name += ".gz"
	}
	info := FileInfo{Name: name, Day: day.Format("2006-01-02")}
	path := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return info, nil, err
	}
	tmp := f.Name()
	f.Chmod(0o644)       // CreateTemp makes it 0600
	defer os.Remove(tmp) // after a successful rename this does nothing
	defer f.Close()
	disk := &countingWriter{w: f}
	var out io.Writer = disk
	var zw *gzip.Writer
	if gzipped {
		// No name or time in the header: the bytes depend on the flags only.
		zw, err = gzip.NewWriterLevel(disk, gzip.DefaultCompression)
		if err != nil {
			return info, nil, err
		}
		out = zw
	}
	bw := bufio.NewWriterSize(out, 1<<20)

	g := newGen(seed, index, day)
	line := make([]byte, 0, 512)
	for info.LogBytes < target {
		// Time runs through the day as the file fills.
		sec := info.LogBytes * 86400 / target
		var country string
		line, country = g.line(line[:0], sec)
		if _, err := bw.Write(line); err != nil {
			return info, nil, err
		}
		g.counts[country]++
		info.LogBytes += int64(len(line))
		info.Lines++
	}
	if err := bw.Flush(); err != nil {
		return info, nil, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return info, nil, err
		}
	}
	if err := f.Close(); err != nil {
		return info, nil, err
	}
	info.Bytes = disk.n
	if err := os.Rename(tmp, path); err != nil {
		return info, nil, err
	}
	return info, g.counts, nil
}

// A prefix is an address block of an access ISP; weight is its share of
// its country's traffic.
type prefix struct {
	country string
	block   netip.Prefix
}

// prefixes are well-known, long-allocated blocks (IPv4 /16s, IPv6 /32s) of
// large access networks; TestPrefixesMapToTheirCountry checks each against
// iploc. 10.0.0.0/16 stands for internal monitoring traffic (unknown: ZZ).
var prefixes = []prefix{
	{"US", netip.MustParsePrefix("24.0.0.0/16")},    // Comcast
	{"US", netip.MustParsePrefix("73.0.0.0/16")},    // Comcast
	{"US", netip.MustParsePrefix("98.0.0.0/16")},    // Charter
	{"CN", netip.MustParsePrefix("114.240.0.0/16")}, // China Unicom Beijing
	{"CN", netip.MustParsePrefix("123.112.0.0/16")}, // China Unicom Beijing
	{"CN", netip.MustParsePrefix("221.216.0.0/16")}, // China Unicom Beijing
	{"IN", netip.MustParsePrefix("117.192.0.0/16")}, // BSNL
	{"IN", netip.MustParsePrefix("59.88.0.0/16")},   // BSNL
	{"IN", netip.MustParsePrefix("49.32.0.0/16")},   // Reliance Jio
	{"DE", netip.MustParsePrefix("79.192.0.0/16")},  // Deutsche Telekom
	{"DE", netip.MustParsePrefix("84.128.0.0/16")},  // Deutsche Telekom
	{"DE", netip.MustParsePrefix("93.192.0.0/16")},  // Deutsche Telekom
	{"DE", netip.MustParsePrefix("2003:e0::/32")},   // Deutsche Telekom
	{"GB", netip.MustParsePrefix("81.96.0.0/16")},   // Virgin Media
	{"GB", netip.MustParsePrefix("86.128.0.0/16")},  // BT
	{"GB", netip.MustParsePrefix("2.96.0.0/16")},    // Sky
	{"GB", netip.MustParsePrefix("2a02:c7c::/32")},  // Sky
	{"JP", netip.MustParsePrefix("126.0.0.0/16")},   // SoftBank
	{"JP", netip.MustParsePrefix("153.128.0.0/16")}, // NTT
	{"JP", netip.MustParsePrefix("219.96.0.0/16")},  // NTT
	{"JP", netip.MustParsePrefix("2400:4050::/32")}, // NTT
	{"BR", netip.MustParsePrefix("189.0.0.0/16")},   // Claro/NET
	{"BR", netip.MustParsePrefix("201.0.0.0/16")},   // Claro/NET
	{"FR", netip.MustParsePrefix("90.0.0.0/16")},    // Orange
	{"FR", netip.MustParsePrefix("86.192.0.0/16")},  // Orange
	{"FR", netip.MustParsePrefix("82.64.0.0/16")},   // Free
	{"FR", netip.MustParsePrefix("2a01:e0a::/32")},  // Free
	{"RU", netip.MustParsePrefix("95.24.0.0/16")},   // Beeline
	{"RU", netip.MustParsePrefix("93.80.0.0/16")},   // Beeline
	{"RU", netip.MustParsePrefix("178.64.0.0/16")},  // Rostelecom
	{"KR", netip.MustParsePrefix("175.192.0.0/16")}, // KT
	{"KR", netip.MustParsePrefix("121.128.0.0/16")}, // KT
	{"CA", netip.MustParsePrefix("99.224.0.0/16")},  // Rogers
	{"CA", netip.MustParsePrefix("142.160.0.0/16")}, // Bell
	{"AU", netip.MustParsePrefix("1.128.0.0/16")},   // Telstra
	{"AU", netip.MustParsePrefix("101.160.0.0/16")}, // Telstra
	{"AU", netip.MustParsePrefix("120.144.0.0/16")}, // Telstra
	{"NL", netip.MustParsePrefix("83.80.0.0/16")},   // KPN
	{"NL", netip.MustParsePrefix("145.0.0.0/16")},   // SURFnet
	{"IT", netip.MustParsePrefix("79.0.0.0/16")},    // Telecom Italia
	{"IT", netip.MustParsePrefix("87.0.0.0/16")},    // Telecom Italia
	{"ES", netip.MustParsePrefix("83.32.0.0/16")},   // Telefonica
	{"ES", netip.MustParsePrefix("88.0.0.0/16")},    // Telefonica
	{"ZZ", netip.MustParsePrefix("10.0.0.0/16")},    // internal monitoring
}

// countryWeight is each country's base share of the traffic; every day
// scales each by a random factor, so the daily rankings differ.
var countryWeight = map[string]float64{
	"US": 28, "CN": 12, "IN": 10, "DE": 9, "GB": 8, "JP": 7, "BR": 6, "FR": 6,
	"RU": 5, "KR": 3, "CA": 3, "AU": 2.5, "NL": 2, "IT": 2, "ES": 2, "ZZ": 1,
}

var (
	paths = []string{
		"/", "/index.html", "/about", "/contact", "/login", "/logout", "/cart", "/checkout",
		"/search?q=redis", "/search?q=streams", "/blog/redis-in-action", "/blog/filecast",
		"/static/css/site.css", "/static/js/app.js", "/static/img/logo.png", "/favicon.ico",
		"/api/v1/items", "/api/v1/orders", "/robots.txt", "/sitemap.xml",
	}
	itemPaths = []string{"/products/", "/api/v1/items/", "/users/", "/orders/"}
	referers  = []string{
		"-", "-", "-", "https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/",
		"https://example.com/", "https://news.ycombinator.com/", "https://t.co/x1y2z3",
	}
	agents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"curl/8.11.0",
		"Prometheus/2.55.0",
	}
	methods  = []string{"GET", "GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "HEAD"}
	statuses = []int{200, 200, 200, 200, 200, 200, 200, 200, 304, 304, 301, 302, 404, 404, 403, 500}
)

// gen produces the lines of one day.
type gen struct {
	r      *rand.Rand
	day    time.Time
	cum    []float64 // cumulative weight per prefix
	counts map[string]int64

	lastSec int64
	stamp   []byte // "[21/Nov/2026:10:00:00 +0000]" of lastSec
}

func newGen(seed, index uint64, day time.Time) *gen {
	g := &gen{
		r:       rand.New(rand.NewPCG(seed, index*0x9e3779b97f4a7c15+1)),
		day:     day.UTC(),
		counts:  make(map[string]int64),
		lastSec: -1,
	}
	perCountry := map[string]int{}
	for _, p := range prefixes {
		perCountry[p.country]++
	}
	// Draw the day's factors in a fixed order (map order is random).
	codes := make([]string, 0, len(countryWeight))
	for c := range countryWeight {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	factor := map[string]float64{}
	for _, c := range codes {
		factor[c] = 0.5 + g.r.Float64()
	}
	total := 0.0
	for _, p := range prefixes {
		total += countryWeight[p.country] * factor[p.country] / float64(perCountry[p.country])
		g.cum = append(g.cum, total)
	}
	return g
}

// addr draws a client address and returns it with its country per iploc.
func (g *gen) addr() (netip.Addr, string) {
	x := g.r.Float64() * g.cum[len(g.cum)-1]
	i, _ := slices.BinarySearch(g.cum, x)
	i = min(i, len(prefixes)-1)
	p := prefixes[i].block
	var a netip.Addr
	if p.Addr().Is4() {
		b := p.Addr().As4()
		b[2] = byte(g.r.IntN(256))
		b[3] = byte(1 + g.r.IntN(254))
		a = netip.AddrFrom4(b)
	} else {
		b := p.Addr().As16()
		hi, lo := g.r.Uint64(), g.r.Uint64()
		for k := 4; k < 8; k++ { // keep the /32
			b[k] = byte(hi >> (8 * (k - 4)))
		}
		for k := 8; k < 16; k++ {
			b[k] = byte(lo >> (8 * (k - 8)))
		}
		a = netip.AddrFrom16(b)
	}
	c := iploc.IPCountry(a)
	if c == "" {
		c = "ZZ"
	}
	return a, c
}

// line appends one log line (with its newline) at second sec of the day.
func (g *gen) line(b []byte, sec int64) ([]byte, string) {
	a, country := g.addr()
	r := g.r
	b = a.AppendTo(b)
	b = append(b, " - "...)
	if r.IntN(20) == 0 {
		b = append(b, "user"...)
		b = strconv.AppendInt(b, int64(r.IntN(1000)), 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ' ')
	if sec != g.lastSec {
		g.lastSec = sec
		g.stamp = g.day.Add(time.Duration(sec)*time.Second).AppendFormat(g.stamp[:0], "[02/Jan/2006:15:04:05 -0700]")
	}
	b = append(b, g.stamp...)
	b = append(b, " \""...)
	b = append(b, methods[r.IntN(len(methods))]...)
	b = append(b, ' ')
	if r.IntN(3) == 0 {
		b = append(b, itemPaths[r.IntN(len(itemPaths))]...)
		b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
	} else {
		b = append(b, paths[r.IntN(len(paths))]...)
	}
	b = append(b, " HTTP/1.1\" "...)
	status := statuses[r.IntN(len(statuses))]
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if status == 304 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, int64(200+r.IntN(60000)), 10)
	}
	b = append(b, " \""...)
	b = append(b, referers[r.IntN(len(referers))]...)
	b = append(b, "\" \""...)
	b = append(b, agents[r.IntN(len(agents))]...)
	b = append(b, "\"\n"...)
	return b, country
}
