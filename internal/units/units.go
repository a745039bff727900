// Package units parses and prints byte sizes for the command line, the
// examples and the benchmark.
package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseBytes parses a size such as "96MiB", "32M", "1.5GB" or "4096".
// K, M, G, T and their KiB/MiB/... forms are binary (1024-based);
// KB, MB, GB and TB are decimal.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	mult := int64(1)
	switch unit {
	case "", "B":
	case "K", "KI", "KIB":
		mult = 1 << 10
	case "M", "MI", "MIB":
		mult = 1 << 20
	case "G", "GI", "GIB":
		mult = 1 << 30
	case "T", "TI", "TIB":
		mult = 1 << 40
	case "KB":
		mult = 1e3
	case "MB":
		mult = 1e6
	case "GB":
		mult = 1e9
	case "TB":
		mult = 1e12
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, KB, MB, GB)", s, unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: not a non-negative number of bytes", s)
	}
	return int64(f * float64(mult)), nil
}

// Bytes is an int64 flag value that accepts sizes with units.
type Bytes int64

func (b *Bytes) String() string { return FormatBytes(int64(*b)) }

// Set implements flag.Value.
func (b *Bytes) Set(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = Bytes(n)
	return nil
}

// FormatBytes prints n with a binary unit: "96.0 MiB".
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Rate prints n bytes over d as decimal megabytes per second ("123.4 MB/s").
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "- MB/s"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/1e6/d.Seconds())
}
