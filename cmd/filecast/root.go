package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/units"
)

// extraCommands are added to the root: the docs generator, in a build
// with -tags docs.
var extraCommands []func() *cobra.Command

// globals are the flags every command takes.
type globals struct {
	redis         string
	caFile        string
	certFile      string
	keyFile       string
	passwordFile  string
	prefix        string
	verbose       int
	allowEviction bool
	lease         time.Duration
	chunkSize     string
	replicas      int
	readReplicas  bool

	// logs is where the log goes: stderr, or above the progress bars.
	logs redirect
	// json is set by a command run with --json (jsonOutput): the stream
	// where it says everything, log records included.
	json *jsonStream
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "filecast",
		Short: "Distribute files to many machines through Redis",
		Long: `filecast moves files from one machine to many through a Redis server.

A sender publishes files, directories or stdin to a channel. Receivers join
the channel as groups: every group gets every file sent after it joined,
even if it was offline at the time, and the members of one group share the
files. Receivers process each file while it is still arriving (write it to a
directory, pipe it into a command, or print it), with integrity checks,
resume after failures, a memory budget in Redis, and cleanup once every
group is done.

Redis is found with --redis, else $FILECAST_REDIS, else $REDIS_URL, else
redis://127.0.0.1:6379/0. URLs: redis://[user:password@]host:port/db,
rediss://… for TLS (--ca-file, --cert-file, --key-file), unix:///path/to/redis.sock,
valkey:// and valkeys:// alike. A Redis Cluster is found from any of its
nodes; name more with ?addr=host:port&addr=… A primary watched by Sentinel:
redis://sentinel1:26379?addr=sentinel2:26379&master_set=NAME. On a cluster,
a file's chunks spread over every primary.
A password can also come from --password-file or $FILECAST_PASSWORD, so it
need not appear in a command line; filecast never prints it.

Exit codes: 0 ok, 1 error, 2 usage, 3 integrity check failed,
4 Redis unreachable, refused the credentials or may evict data,
5 the receiver's own side failed (recv --fail-fast), 130 interrupted.`,
		Example: `  # on every receiving machine: keep a directory in sync with channel "configs"
  filecast recv configs --group web-01 --dir /etc/app/incoming

  # on the sending machine
  filecast send configs ./configs

  # what is in flight, which groups lag
  filecast status configs`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&g.redis, "redis", "", "Redis URL (default $FILECAST_REDIS, $REDIS_URL, redis://127.0.0.1:6379/0)")
	f.StringVar(&g.caFile, "ca-file", "", "PEM file of the CA certificates to trust for rediss://")
	f.StringVar(&g.certFile, "cert-file", "", "PEM client certificate for rediss:// (with --key-file)")
	f.StringVar(&g.keyFile, "key-file", "", "PEM private key of --cert-file")
	f.StringVar(&g.passwordFile, "password-file", "", "read the Redis password from this file (else $FILECAST_PASSWORD, else the URL's)")
	f.StringVar(&g.prefix, "prefix", "fc", "prefix of every Redis key filecast uses")
	f.CountVarP(&g.verbose, "verbose", "v", "log what happens (-vv for debug detail)")
	f.BoolVar(&g.allowEviction, "allow-eviction", false, "run even if Redis may evict keys (maxmemory-policy allkeys-*), which can lose data")
	f.DurationVar(&g.lease, "lease", 30*time.Second, "how long a silent receiver or sender keeps its claim on a file")
	f.StringVar(&g.chunkSize, "chunk-size", "", "largest chunk stored in Redis (default 1MiB-64)")
	f.IntVar(&g.replicas, "replicas", 0, "wait until N replicas have every chunk and state change before going on (WAIT); with N = each primary's replica count, a failover loses nothing reported sent")
	f.BoolVar(&g.readReplicas, "read-replicas", false, "read chunks from replicas (a cluster's, or a Sentinel set's); the primary serves what they lack")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newSend(g), newRecv(g), newJoin(g), newStatus(g), newClean(g), newRetry(g))
	suggestFor(root)
	setVersion(root)
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	return root
}

// url returns the Redis URL: the flag, then the environment, then the default.
func (g *globals) url() string {
	for _, u := range []string{g.redis, os.Getenv("FILECAST_REDIS"), os.Getenv("REDIS_URL")} {
		if u != "" {
			return u
		}
	}
	return filecast.DefaultURL
}

// client connects with the global options.
func (g *globals) client(ctx context.Context) (*filecast.Client, error) {
	password, err := g.password()
	if err != nil {
		return nil, err
	}
	opt := filecast.Options{URL: g.url(), CAFile: g.caFile, CertFile: g.certFile, KeyFile: g.keyFile,
		Password: password, Prefix: g.prefix, Lease: g.lease, AllowEviction: g.allowEviction, Logger: g.logger(),
		Replicas: g.replicas, ReadReplicas: g.readReplicas}
	if g.chunkSize != "" {
		n, err := units.ParseBytes(g.chunkSize)
		if err != nil {
			return nil, usagef("--chunk-size: %v", err)
		}
		opt.ChunkSize = int(n)
	}
	return filecast.New(ctx, opt)
}

// password returns the password from --password-file, else
// $FILECAST_PASSWORD, else "" (the URL's is used).
func (g *globals) password() (string, error) {
	if g.passwordFile == "" {
		return os.Getenv("FILECAST_PASSWORD"), nil
	}
	b, err := os.ReadFile(g.passwordFile)
	if err != nil {
		return "", usagef("--password-file: %v", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", usagef("--password-file %s: the first line is empty", g.passwordFile)
	}
	return pw, nil
}

func (g *globals) logger() *slog.Logger {
	level := slog.LevelWarn
	switch {
	case g.verbose >= 2:
		level = slog.LevelDebug
	case g.verbose == 1:
		level = slog.LevelInfo
	}
	if g.json != nil {
		return slog.New(slog.NewJSONHandler(g.json, &slog.HandlerOptions{Level: level, ReplaceAttr: jsonLogTime}))
	}
	return slog.New(newLineHandler(&g.logs, level, g.verbose > 0))
}

// redirect is a writer whose target can change: the log goes to stderr,
// or above the progress bars while they are shown.
type redirect struct {
	mu sync.Mutex
	w  io.Writer // nil: os.Stderr
}

func (r *redirect) set(w io.Writer) {
	r.mu.Lock()
	r.w = w
	r.mu.Unlock()
}

func (r *redirect) Write(b []byte) (int, error) {
	r.mu.Lock()
	w := r.w
	r.mu.Unlock()
	if w == nil {
		w = os.Stderr
	}
	return w.Write(b)
}

// minArgs is cobra.MinimumNArgs with a usage error that says what is
// missing: "send needs a CHANNEL and at least one PATH (see filecast send
// --help)" (main prefixes "filecast: ").
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s needs %s (see %s --help)", cmd.Name(), what, cmd.CommandPath())
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%s (see %s --help)", tooManyArgs(cmd, n, len(args)), cmd.CommandPath())
		}
		return nil
	}
}

// human formats a byte count.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
