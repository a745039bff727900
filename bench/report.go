package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/filecast/filecast/internal/units"
)

// report collects the figures of every run.
type report struct {
	Command  string            `json:"command"`
	Date     string            `json:"date"`
	Machine  map[string]string `json:"machine"`
	Redis    string            `json:"redis"`
	Config   config            `json:"config"`
	Dataset  map[string]int64  `json:"dataset"`
	Ceilings []*figure         `json:"ceilings"`
	Results  []*figure         `json:"results"`

	runs map[string][]ceiling // by connection
}

// figure is one measured quantity over the runs, beside what it is
// compared with.
type figure struct {
	Name  string    `json:"name"`
	Unit  string    `json:"unit"`
	Runs  []float64 `json:"runs"`
	Value float64   `json:"median"`
	// Against is the ceiling, reference or limit; Ratio is the median of the
	// per-run ratios Value/Against.
	AgainstName string    `json:"against_name,omitempty"`
	AgainstRuns []float64 `json:"against_runs,omitempty"`
	Against     float64   `json:"against,omitempty"`
	Ratio       float64   `json:"ratio,omitempty"`
	// Target: the ratio must be at least Min or at most Max.
	Min  float64 `json:"target_min,omitempty"`
	Max  float64 `json:"target_max,omitempty"`
	Pass *bool   `json:"pass,omitempty"`
	// CPU used, in cores (median over the runs): Redis, and the filecast
	// processes (or the bench process, for library measurements).
	CPURuns []cpuUse `json:"cpu_runs,omitempty"`
	CPU     *cpuUse  `json:"cpu,omitempty"`
}

// targets are the goals of issue 3, by figure name prefix.
var targets = []struct {
	prefix   string
	min, max float64
}{
	{"upload", 0.85, 0},
	{"deliver to 1 group(s), discard", 0.85, 0},
	{"deliver to 4 group(s), discard", 0.85, 0},
	{"end to end", 0, 1.5},
	{"first byte", 0, 1},
	{"Redis memory growth", 0, 1},
	{"sender peak RSS", 0, 1},
	{"receiver peak RSS", 0, 1},
	{"count lines", 0.9, 0},
}

func newReport(cfg config, d *dataset, redis string) *report {
	return &report{
		Command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		Date:    time.Now().UTC().Format(time.RFC3339), Machine: machine(), Redis: redis, Config: cfg,
		Dataset: map[string]int64{"files": int64(len(d.files)), "bytes": d.bytes, "log_bytes": d.logBytes, "lines": d.lines},
		runs:    map[string][]ceiling{},
	}
}

func (r *report) addCeilings(conn string, c ceiling) {
	r.runs[conn] = append(r.runs[conn], c)
	for _, x := range []struct {
		name string
		v    float64
	}{
		{"SET", c.set}, {"GET, 1 reader", c.get1}, {"GET, 4 readers", c.get4},
		{"SET, default connections", c.setPooled}, {"SET, one connection", c.setOneConn},
		{"GET, 1 reader, pipelined Do", c.get1Do}, {"GET, 1 reader, DoMultiStream", c.get1Stream},
		{"GET, 4 readers, pipelined Do", c.get4Do}, {"GET, 4 readers, DoMultiStream", c.get4Stream},
	} {
		f := r.figure(&r.Ceilings, conn+": "+x.name, "B/s")
		f.Runs = append(f.Runs, x.v)
	}
	for _, x := range []struct {
		name string
		use  cpuUse
	}{{"SET", c.setCPU}, {"GET, 1 reader", c.get1CPU}, {"GET, 4 readers", c.get4CPU}} {
		f := r.figure(&r.Ceilings, conn+": "+x.name, "B/s")
		f.CPURuns = append(f.CPURuns, x.use)
	}
}

// ceiling returns this run's ceilings on conn.
func (r *report) ceiling(conn string) ceiling {
	runs := r.runs[conn]
	return runs[len(runs)-1]
}

func (r *report) figure(list *[]*figure, name, unit string) *figure {
	for _, f := range *list {
		if f.Name == name {
			return f
		}
	}
	f := &figure{Name: name, Unit: unit}
	for _, t := range targets {
		if strings.HasPrefix(name, t.prefix) {
			f.Min, f.Max = t.min, t.max
		}
	}
	*list = append(*list, f)
	return f
}

// add records one run's value of a figure and what it is compared with.
// Sizes and rates are in bytes and bytes per second.
func (r *report) add(name string, v, against float64, againstName string) {
	unit := "B/s"
	if strings.Contains(name, "RSS") || strings.Contains(name, "memory") {
		unit = "B"
	}
	r.addUnit(name, unit, v, against, againstName)
}

// addUnit is add with an explicit unit.
func (r *report) addUnit(name, unit string, v, against float64, againstName string) {
	f := r.figure(&r.Results, name, unit)
	f.Runs = append(f.Runs, v)
	f.AgainstRuns = append(f.AgainstRuns, against)
	f.AgainstName = againstName
}

// cpu records the CPU one run of a figure used.
func (r *report) cpu(name string, use cpuUse) {
	f := r.figure(&r.Results, name, "")
	f.CPURuns = append(f.CPURuns, use)
}

// addLower is add for a figure where lower is better (a time).
func (r *report) addLower(name string, v, against float64, againstName string) {
	unit := "s"
	if strings.HasPrefix(name, "first byte") {
		unit = "ms"
	}
	f := r.figure(&r.Results, name, unit)
	f.Runs = append(f.Runs, v)
	f.AgainstRuns = append(f.AgainstRuns, against)
	f.AgainstName = againstName
}

// finish computes medians, ratios and verdicts.
func (r *report) finish() {
	for _, f := range append(slices.Clone(r.Ceilings), r.Results...) {
		f.Value = median(f.Runs)
		if len(f.CPURuns) > 0 {
			var rs, fs []float64
			for _, c := range f.CPURuns {
				rs, fs = append(rs, c.Redis), append(fs, c.Filecast)
			}
			f.CPU = &cpuUse{Redis: median(rs), Filecast: median(fs)}
		}
		if len(f.AgainstRuns) == 0 {
			continue
		}
		f.Against = median(f.AgainstRuns)
		var ratios []float64
		for i, v := range f.Runs {
			if f.AgainstRuns[i] > 0 {
				ratios = append(ratios, v/f.AgainstRuns[i])
			}
		}
		f.Ratio = median(ratios)
		if f.Min > 0 || f.Max > 0 {
			ok := (f.Min == 0 || f.Ratio >= f.Min) && (f.Max == 0 || f.Ratio <= f.Max)
			f.Pass = &ok
		}
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// print writes the report as two tables.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "%s\n", r.Command)
	fmt.Fprintf(w, "filecast bench, %s: %s, %s CPUs, %s, redis %s\n", r.Date, r.Machine["cpu"], r.Machine["cpus"], r.Machine["go"], r.Redis)
	fmt.Fprintf(w, "dataset: %d files, %s of logs, %s as sent; %d runs, medians; filecast over %s\n\n",
		r.Dataset["files"], fmtBytes(r.Dataset["log_bytes"]), fmtBytes(r.Dataset["bytes"]), r.Config.Runs, r.Config.Conn)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ceiling (raw Redis, same client, chunk-sized values)\tmedian\truns\tCPU cores: redis + client")
	for _, f := range r.Ceilings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, f.format(f.Value), f.formatRuns(), f.cpuText())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "filecast\tmedian\tagainst\tvalue\tratio\ttarget\t\tCPU cores: redis + filecast")
	for _, f := range r.Results {
		target, verdict := "", ""
		switch {
		case f.Min > 0:
			target = fmt.Sprintf("≥ %.2f", f.Min)
		case f.Max > 0:
			target = fmt.Sprintf("≤ %.2f", f.Max)
		}
		if f.Pass != nil {
			verdict = map[bool]string{true: "ok", false: "MISSED"}[*f.Pass]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\n", f.Name, f.format(f.Value), f.AgainstName, f.format(f.Against), f.Ratio, target, verdict, f.cpuText())
	}
	tw.Flush()
}

func (f *figure) format(v float64) string {
	switch f.Unit {
	case "B/s":
		return fmt.Sprintf("%.0f MB/s", v/1e6)
	case "B":
		return fmtBytes(int64(v))
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	case "s":
		return fmt.Sprintf("%.3f s", v)
	case "files/s":
		return fmt.Sprintf("%.0f files/s", v)
	case "%":
		return fmt.Sprintf("%.1f %%", v)
	}
	return fmt.Sprint(v)
}

func (f *figure) cpuText() string {
	if f.CPU == nil {
		return ""
	}
	return fmt.Sprintf("%.2f + %.2f", f.CPU.Redis, f.CPU.Filecast)
}

func (f *figure) formatRuns() string {
	var parts []string
	for _, v := range f.Runs {
		parts = append(parts, f.format(v))
	}
	return strings.Join(parts, ", ")
}

func fmtBytes(n int64) string { return units.FormatBytes(n) }
