package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/filecast/filecast/internal/units"
)

// counts is day -> country -> lines.
type counts map[string]map[string]int64

// readCounts loads every <prefix>daily:country:* sorted set.
func readCounts(ctx context.Context, rc rueidis.Client, prefix string) (counts, error) {
	pattern := globEscape(prefix+countryKey) + "*"
	out := counts{}
	var cursor uint64
	for {
		e, err := rc.Do(ctx, rc.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		if err != nil {
			return nil, err
		}
		for _, k := range e.Elements {
			zs, err := rc.Do(ctx, rc.B().Zrange().Key(k).Min("0").Max("-1").Withscores().Build()).AsZScores()
			if err != nil {
				return nil, err
			}
			m := make(map[string]int64, len(zs))
			for _, z := range zs {
				m[z.Member] = int64(z.Score)
			}
			out[strings.TrimPrefix(k, prefix+countryKey)] = m
		}
		if cursor = e.Cursor; cursor == 0 {
			return out, nil
		}
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

type ranked struct {
	country string
	n       int64
}

// top returns the n countries with the most lines (ties by code).
func top(m map[string]int64, n int) []ranked {
	r := make([]ranked, 0, len(m))
	for c, v := range m {
		r = append(r, ranked{c, v})
	}
	sort.Slice(r, func(i, j int) bool {
		if r[i].n != r[j].n {
			return r[i].n > r[j].n
		}
		return r[i].country < r[j].country
	})
	return r[:min(n, len(r))]
}

// manifest is the part of genlogs' .genlogs.json the report checks against.
type manifest struct {
	Lines  int64  `json:"lines"`
	Counts counts `json:"counts"`
}

// report prints the top countries per day of each prefix side by side,
// checks that the prefixes agree (and match the generator's manifest, if
// given), and prints each prefix's throughput. It returns an error if any
// check fails.
func report(ctx context.Context, w io.Writer, rc rueidis.Client, prefixes []string, n int, expectPath string) error {
	all := make([]counts, len(prefixes))
	days := map[string]bool{}
	for i, p := range prefixes {
		c, err := readCounts(ctx, rc, p)
		if err != nil {
			return err
		}
		all[i] = c
		for d := range c {
			days[d] = true
		}
	}
	if len(days) == 0 {
		return fmt.Errorf("no %s* keys under prefix(es) %q", countryKey, prefixes)
	}
	label := func(p string) string {
		if p == "" {
			return "(no prefix)"
		}
		return p
	}
	const col = 24
	for _, d := range slices.Sorted(maps.Keys(days)) {
		fmt.Fprintf(w, "\n%s  top %d countries by requests\n", countryKey+d, n)
		fmt.Fprintf(w, "  %-3s", "#")
		for _, p := range prefixes {
			fmt.Fprintf(w, "%-*s", col, label(p))
		}
		fmt.Fprintln(w)
		tops := make([][]ranked, len(prefixes))
		rows := 0
		for i := range prefixes {
			tops[i] = top(all[i][d], n)
			rows = max(rows, len(tops[i]))
		}
		for r := range rows {
			fmt.Fprintf(w, "  %-3d", r+1)
			for i := range prefixes {
				cell := ""
				if r < len(tops[i]) {
					cell = fmt.Sprintf("%s %10d", tops[i][r].country, tops[i][r].n)
				}
				fmt.Fprintf(w, "%-*s", col, cell)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)

	var failed []string
	for i := 1; i < len(prefixes); i++ {
		if diff := compare(all[0], all[i]); diff != "" {
			failed = append(failed, fmt.Sprintf("%s and %s differ: %s", label(prefixes[0]), label(prefixes[i]), diff))
		}
	}
	if len(prefixes) > 1 && len(failed) == 0 {
		fmt.Fprintf(w, "agree: all %d result sets are identical (%d days, every country, not just the top %d)\n",
			len(prefixes), len(days), n)
	}
	if expectPath != "" {
		b, err := os.ReadFile(expectPath)
		if err != nil {
			return err
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", expectPath, err)
		}
		ok := true
		for i, p := range prefixes {
			if diff := compare(m.Counts, all[i]); diff != "" {
				failed = append(failed, fmt.Sprintf("%s differs from the generator's counts in %s: %s", label(p), expectPath, diff))
				ok = false
			}
		}
		if ok {
			fmt.Fprintf(w, "exact:  every count matches the generator's own tally of %d lines\n", m.Lines)
		}
	}

	fmt.Fprintln(w, "\nthroughput per group (first file start to last file end, as measured by the receivers):")
	for _, p := range prefixes {
		st, err := rc.Do(ctx, rc.B().Hgetall().Key(p+statsKey).Build()).AsStrMap()
		if err != nil {
			return err
		}
		num := func(k string) int64 { v, _ := strconv.ParseInt(st[k], 10, 64); return v }
		el := time.Duration(num("last_end_ms")-num("first_start_ms")) * time.Millisecond
		var members []string
		for k := range st {
			if m, ok := strings.CutPrefix(k, "files:"); ok {
				members = append(members, fmt.Sprintf("%s %d files/%d lines", m, num(k), num("lines:"+m)))
			}
		}
		sort.Strings(members)
		fmt.Fprintf(w, "  %-12s %d files, %d lines (%d unparsable), %s of logs (%s as sent) in %.2fs: %s, %.0f lines/s  [%s]\n",
			label(p), num("files"), num("lines"), num("bad_lines"), units.FormatBytes(num("log_bytes")),
			units.FormatBytes(num("wire_bytes")), el.Seconds(), units.Rate(num("log_bytes"), el),
			float64(num("lines"))/max(el.Seconds(), 1e-9), strings.Join(members, ", "))
	}
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintln(w, "MISMATCH:", f)
		}
		return fmt.Errorf("%d check(s) failed", len(failed))
	}
	return nil
}

// compare describes the first few differences between two result sets.
func compare(a, b counts) string {
	var diffs []string
	days := map[string]bool{}
	for d := range a {
		days[d] = true
	}
	for d := range b {
		days[d] = true
	}
	for _, d := range slices.Sorted(maps.Keys(days)) {
		cs := map[string]bool{}
		for c := range a[d] {
			cs[c] = true
		}
		for c := range b[d] {
			cs[c] = true
		}
		for _, c := range slices.Sorted(maps.Keys(cs)) {
			if a[d][c] != b[d][c] {
				diffs = append(diffs, fmt.Sprintf("%s %s: %d vs %d", d, c, a[d][c], b[d][c]))
			}
		}
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}
