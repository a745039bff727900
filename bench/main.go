// Command bench measures filecast against what Redis can physically serve,
// on one machine, in one run, and prints every figure beside its ceiling.
//
//	go run ./bench                 # make bench: ≈1 GiB of logs, 3 runs, a 10 GiB stream
//	go run ./bench -size 128MiB -big 1GiB -runs 3 -json out.json
//
// It starts a private redis-server (unix socket and a loopback TCP port),
// generates a dataset of web access logs (cached; see -cache), builds the
// filecast binary, and then, in each run:
//
//   - ceilings: raw SETs and GETs of the dataset's bytes as chunk-sized
//     values, through the same client (rueidis) with the same number of
//     requests in flight, over TCP and the unix socket, with 1 and 4 readers;
//   - upload: filecast send of the dataset (wall time of the command);
//   - delivery: N = 1, 4 and 16 groups receiving the uploaded dataset at
//     once, output discarded (--stdout to /dev/null) and written to a
//     directory (--dir, N = 1 and 4);
//   - end to end: a sender and 4 receiving groups started together, under
//     the budget -budget;
//   - first byte: time from the start of a send to the first byte at a
//     receiver (through the library, one clock);
//   - memory: a -big stream generated on the fly through a -budget channel to
//     one group: peak Redis used_memory growth, peak RSS of sender and
//     receiver, and its throughput;
//   - lines: counting lines per file through the library (gzip decoded)
//     against a plain Go count over the same local files.
//
// Every figure is the median over the runs; ratios compare medians taken
// in the same run of the program. The report goes to stdout and, as JSON,
// to -json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/filecast/filecast/internal/redistest"
	"github.com/filecast/filecast/internal/units"
)

// config is what a bench run depends on.
type config struct {
	Size    int64  `json:"size"`  // uncompressed bytes of logs
	Files   int    `json:"files"` // number of files
	Gzip    int    `json:"gzip"`  // every Nth file gzipped
	Seed    uint64 `json:"seed"`
	Runs    int    `json:"runs"`
	Conn    string `json:"conn"` // unix or tcp, for the filecast runs
	Budget  int64  `json:"budget"`
	Big     int64  `json:"big"` // bytes of the generated stream (0: skip)
	Groups  []int  `json:"groups"`
	Small   int    `json:"small"`         // files of 4 KiB for the per-file run (0: skip)
	Bin     string `json:"bin,omitempty"` // a filecast binary to measure instead of building one
	Cluster int    `json:"cluster"`       // primaries of the cluster runs (0: skip)
	Cache   string `json:"-"`
	JSON    string `json:"-"`
	Verbose bool   `json:"-"`
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if cfg.JSON != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(cfg.JSON, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Printf("\nJSON: %s\n", cfg.JSON)
	}
}

func parseFlags(args []string) (config, error) {
	home, _ := os.UserCacheDir()
	if home == "" {
		home = os.TempDir()
	}
	cfg := config{}
	size, budget, big := units.Bytes(1<<30), units.Bytes(256<<20), units.Bytes(10<<30)
	groups := "1,4,16"
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Var(&size, "size", "uncompressed size of the log dataset")
	fs.IntVar(&cfg.Files, "files", 8, "number of files in the dataset")
	fs.IntVar(&cfg.Gzip, "gzip", 4, "gzip every Nth file (0: none)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "dataset PRNG seed")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs; every figure is the median")
	fs.StringVar(&cfg.Conn, "conn", "unix", "connection for the filecast runs: unix or tcp")
	fs.Var(&budget, "budget", "channel budget for the end-to-end and memory runs")
	fs.Var(&big, "big", "size of the stream generated for the memory run (0: skip)")
	fs.StringVar(&groups, "groups", groups, "group counts for the delivery runs")
	fs.IntVar(&cfg.Cluster, "cluster", 3, "primaries of a Redis Cluster to upload to and deliver from too (0: skip)")
	fs.IntVar(&cfg.Small, "small", 1000, "files of 4 KiB for the per-file run (0: skip)")
	fs.StringVar(&cfg.Cache, "cache", filepath.Join(home, "filecast-bench"), "where the dataset is kept")
	fs.StringVar(&cfg.JSON, "json", "bench-results.json", "write the results as JSON here (empty: don't)")
	fs.BoolVar(&cfg.Verbose, "v", false, "log each measurement")
	fs.StringVar(&cfg.Bin, "bin", "", "measure this filecast binary (e.g. an older build) instead of building ./cmd/filecast;\nthe first-byte and line figures always use this tree's library")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Size, cfg.Budget, cfg.Big = int64(size), int64(budget), int64(big)
	for _, g := range strings.Split(groups, ",") {
		var n int
		if _, err := fmt.Sscan(g, &n); err != nil || n < 1 {
			return cfg, fmt.Errorf("-groups %q: want a comma-separated list of counts", groups)
		}
		cfg.Groups = append(cfg.Groups, n)
	}
	switch {
	case cfg.Runs < 1:
		return cfg, fmt.Errorf("-runs must be at least 1")
	case cfg.Conn != "unix" && cfg.Conn != "tcp":
		return cfg, fmt.Errorf("-conn %q: want unix or tcp", cfg.Conn)
	case cfg.Files < 1:
		return cfg, fmt.Errorf("-files must be at least 1")
	}
	return cfg, nil
}

// env is what every measurement uses.
type env struct {
	cfg     config
	srv     *redistest.Server
	cluster *redistest.Cluster // set for the cluster runs; srv stands in for it
	url     string             // for the filecast runs
	bin     string             // the filecast binary
	work    string             // scratch directory
	data    *dataset
	log     func(format string, args ...any)
}

func run(ctx context.Context, cfg config, logw *os.File) (*report, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "bench: "+format+"\n", args...) }
	work, err := os.MkdirTemp("", "filecast-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	logf("building filecast and genlogs")
	bin := filepath.Join(work, "filecast")
	builds := [][]string{{bin, "./cmd/filecast"}, {filepath.Join(work, "genlogs"), "./examples/genlogs"}}
	if cfg.Bin != "" {
		if bin, err = filepath.Abs(cfg.Bin); err != nil {
			return nil, err
		}
		builds = builds[1:]
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b[0], b[1])
		cmd.Stderr = logw
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go build %s (run bench from the module root): %w", b[1], err)
		}
	}
	data, err := prepare(ctx, cfg, filepath.Join(work, "genlogs"), logw)
	if err != nil {
		return nil, err
	}
	logf("dataset: %d files, %s of logs, %s as sent", len(data.files), units.FormatBytes(data.logBytes), units.FormatBytes(data.bytes))

	srv, err := redistest.Launch(redistest.Config{TCP: true})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	e := &env{cfg: cfg, srv: srv, url: srv.URL(), bin: bin, work: work, data: data, log: logf}
	if cfg.Conn == "tcp" {
		e.url = srv.TCPURL()
	}
	version, _ := srv.Do("INFO", "server")
	rep := newReport(cfg, data, redisVersion(version))

	for i := 1; i <= cfg.Runs; i++ {
		logf("run %d of %d", i, cfg.Runs)
		if err := e.once(ctx, rep); err != nil {
			return nil, fmt.Errorf("run %d: %w", i, err)
		}
	}
	rep.finish()
	return rep, nil
}

// once measures everything once and adds the figures to rep.
func (e *env) once(ctx context.Context, rep *report) error {
	for _, conn := range []string{"unix", "tcp"} {
		url := e.srv.URL()
		if conn == "tcp" {
			url = e.srv.TCPURL()
		}
		c, err := e.ceilings(ctx, url)
		if err != nil {
			return err
		}
		rep.addCeilings(conn, c)
		e.log("ceilings %s: SET %s, GET 1 reader %s, 4 readers %s", conn, rate(c.set), rate(c.get1), rate(c.get4))
	}
	steps := []struct {
		name string
		do   func(context.Context, *report) error
	}{
		{"upload and delivery", e.uploadAndDeliver},
		{"end to end", e.endToEnd},
		{"first byte", e.firstByte},
		{"memory", e.memory},
		{"small files", e.smallFiles},
	}
	for _, s := range steps {
		if s.name == "small files" && e.cfg.Small == 0 {
			continue
		}
		if err := s.do(ctx, rep); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if e.cfg.Cluster > 0 {
		if err := e.onCluster(ctx, rep); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	return nil
}

// onCluster measures the ceilings, the upload and the delivery again on a
// fresh Redis Cluster of cfg.Cluster primaries on this machine (so all of
// them share its cores: the figures show what spreading costs, not what
// more machines would add; docs/SCALING.md).
func (e *env) onCluster(ctx context.Context, rep *report) error {
	cl, err := redistest.LaunchCluster(redistest.ClusterConfig{Primaries: e.cfg.Cluster})
	if err != nil {
		return err
	}
	defer cl.Close()
	ce := *e
	ce.srv, ce.cluster, ce.url = cl.Stand(), cl, cl.URL()
	c, err := ce.ceilings(ctx, ce.url)
	if err != nil {
		return err
	}
	rep.addCeilings("cluster", c)
	e.log("ceilings cluster: SET %s, GET 1 reader %s, 4 readers %s", rate(c.set), rate(c.get1), rate(c.get4))
	return ce.uploadAndDeliver(ctx, rep)
}

// flush empties Redis and gives its allocator a moment to settle, so every
// measurement starts from the same state.
func (e *env) flush() error {
	if _, err := e.srv.Do("FLUSHALL"); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	return nil
}

func rate(bps float64) string { return units.FormatBytes(int64(bps)) + "/s" }

func redisVersion(info string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "unknown"
}

func machine() map[string]string {
	m := map[string]string{"go": runtime.Version(), "cpus": fmt.Sprint(runtime.NumCPU()), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}
