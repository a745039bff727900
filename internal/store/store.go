// Package store is the only package that speaks Redis. It owns the key
// schema (keys.go), the Lua scripts that change state atomically
// (scripts/*.lua), and the policy for retrying dropped connections.
//
// Every write is idempotent, so any operation may be retried after a
// network error without a second effect; Client.retry does that with
// backoff until Config.RetryFor has passed.
package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/filecast/filecast/internal/keyslot"
	"github.com/redis/rueidis"
)

//go:embed scripts/*.lua
var scriptFS embed.FS

// script is one of the Lua scripts, lib.lua first. It is read and hashed
// (for EVALSHA) on first use, not at every process start: the eighteen of
// them cost 0.8 ms and 800 KB, and a command uses a few.
type script struct {
	name string
	lua  func() *rueidis.Lua
}

func newScript(name string) *script {
	return &script{name: name, lua: sync.OnceValue(func() *rueidis.Lua {
		lib, err := scriptFS.ReadFile("scripts/lib.lua")
		if err != nil {
			panic(err)
		}
		body, err := scriptFS.ReadFile("scripts/" + name + ".lua")
		if err != nil {
			panic(err)
		}
		return rueidis.NewLuaScript(string(lib) + "\n" + string(body))
	})}
}

// Exec runs the script (EVALSHA, EVAL if the server lacks it).
func (s *script) Exec(ctx context.Context, c rueidis.Client, keys, args []string) rueidis.RedisResult {
	return s.lua().Exec(ctx, c, keys, args)
}

var (
	luaBegin    = newScript("begin")
	luaResume   = newScript("resume")
	luaReserve  = newScript("reserve")
	luaCommit   = newScript("commit")
	luaComplete = newScript("complete")
	luaAbort    = newScript("abort")
	luaProgress = newScript("progress")
	luaAck      = newScript("ack")
	luaRenew    = newScript("renew")
	luaJoin     = newScript("join")
	luaDrop     = newScript("drop")
	luaMember   = newScript("member")
	luaBeat     = newScript("beat")
	luaPut      = newScript("put")
	luaRetry    = newScript("retry")
	luaSweep    = newScript("sweep")
	luaHolders  = newScript("holders")
	luaGC       = newScript("gc")
)

// Config says how to reach Redis.
type Config struct {
	URL      string        // redis://, rediss:// or unix:// URL
	RetryFor time.Duration // how long to retry a dropped connection
	CAFile   string        // CA certificates to trust for rediss:// (PEM)
	CertFile string        // client certificate for rediss:// (PEM), with KeyFile
	KeyFile  string        // its private key (PEM)
	Password string        // if set, replaces the URL's password
	// Replicas, if above 0, makes every write that commits something (a
	// chunk, a state change) wait until that many replicas have it (WAIT),
	// so that a failover cannot lose it.
	Replicas int
	// ReadReplicas sends chunk reads to replicas (a Redis Cluster's, or a
	// Sentinel set's); a chunk a replica does not have yet is read from
	// the primary.
	ReadReplicas bool
	// OnConnection, if set, is called when operations start failing for
	// want of a connection (lost, with the error), and when one succeeds
	// again (not lost, with how long it was down). It is called from the
	// goroutine of the operation, once per change.
	OnConnection func(lost bool, err error, down time.Duration)
	// RoundTrip, if set, is told how long each command on the control
	// connection took to be answered (see timed for which are left out).
	// It is called from the goroutine of the command: it must be quick.
	RoundTrip func(time.Duration)
}

// Client is a connection pool to one Redis server. It is safe for
// concurrent use.
type Client struct {
	rc       rueidis.Client
	bulk     rueidis.Client // its own connection, for chunk values
	replica  rueidis.Client // chunk reads from replicas (Config.ReadReplicas), or nil
	replicas int            // Config.Replicas
	retryFor time.Duration
	addr     string // redacted, for messages
	onConn   func(lost bool, err error, down time.Duration)
	lostAt   atomic.Int64 // Unix ns when operations started failing; 0 while they succeed
	// spread: new uploads are of protocol 2, their chunks spread over the
	// slots (a Redis Cluster).
	spread bool
}

// Redact returns the URL with any password replaced, for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// urlProblem says which part of a URL rueidis.ParseURL refused, without
// quoting the URL (it may hold a password).
func urlProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return "it cannot be parsed: " + ue.Err.Error() // ue.Error() quotes the URL
	}
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	if scheme, ok := strings.CutPrefix(msg, "invalid URL scheme: "); ok {
		return fmt.Sprintf("the scheme %q is none of redis, rediss, unix, valkey and valkeys", scheme)
	}
	return msg // the database number, path or a query parameter: never the password
}

// Dial connects to Redis and checks that it answers.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	safe := Redact(cfg.URL)
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return nil, badURL(cfg.URL, safe, err)
	}
	if err := setTLS(&opt, cfg); err != nil {
		return nil, err
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	opt.DisableCache = true
	opt.DisableRetry = true // we retry ourselves, and only idempotent operations
	TuneDialer(&opt.Dialer)
	opt.ConnWriteTimeout = 10 * time.Second
	opt.Dialer.Timeout = 5 * time.Second
	// A connection dropped while it is being set up (a proxy or load
	// balancer cutting it) is tried again for up to setupRetry; one that is
	// refused fails at once with the reason.
	start, wait := time.Now(), 100*time.Millisecond
	if cfg.Replicas < 0 || cfg.Replicas > 100 {
		return nil, fmt.Errorf("%w: replicas to wait for %d: want 0 to 100", ErrBadConfig, cfg.Replicas)
	}
	for {
		c, err := connect(ctx, opt, cfg.RetryFor, safe)
		if err == nil {
			c.onConn, c.replicas = cfg.OnConnection, cfg.Replicas
			if cfg.RoundTrip != nil {
				c.rc = timed{Client: c.rc, observe: cfg.RoundTrip}
			}
			if cfg.ReadReplicas {
				if err := c.readReplicas(opt); err != nil {
					c.Close()
					return nil, err
				}
			}
			return c, nil
		}
		if outOfRange(err) {
			return nil, noSuchDB(ctx, opt, safe)
		}
		if !dropped(err) || time.Since(start)+wait > min(setupRetry, max(cfg.RetryFor, wait)) || ctx.Err() != nil {
			return nil, describeDialError(safe, opt.TLSConfig != nil, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wait = min(2*wait, time.Second)
	}
}

// setupRetry bounds how long Dial tries a connection that keeps being
// dropped: long enough to ride out a cut, short enough that a TLS port
// reached with redis:// (which also drops it) is reported soon.
const setupRetry = 3 * time.Second

// connect opens the client's two connection pools and checks the server
// answers.
func connect(ctx context.Context, opt rueidis.ClientOption, retryFor time.Duration, addr string) (*Client, error) {
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	// Chunk values travel on a connection of their own: pipelined in
	// order, so they are stored in the order they are committed, and never
	// ahead of the small control commands, whose replies would otherwise
	// wait behind megabytes of data.
	opt.PipelineMultiplex = 0
	bulk, err := rueidis.NewClient(opt)
	if err != nil {
		rc.Close()
		return nil, err
	}
	c := &Client{rc: rc, bulk: bulk, retryFor: retryFor, addr: addr, spread: rc.Mode() == rueidis.ClientModeCluster}
	if c.spread {
		go keyslot.Tag(0) // builds the table of chunk key tags while we wait for the PING
	}
	if err := c.rc.Do(ctx, c.rc.B().Ping().Build()).Error(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dropped reports whether err is an established connection being closed
// (rather than refused, or a reply).
func dropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// setTLS adds cfg's CA and client certificate to a rediss:// connection.
func setTLS(opt *rueidis.ClientOption, cfg Config) error {
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil
	}
	if opt.TLSConfig == nil {
		return fmt.Errorf("%w: a CA file or client certificate needs a rediss:// URL (TLS)", ErrBadConfig)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return fmt.Errorf("%w: read CA file: %w", ErrBadConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrBadConfig, cfg.CAFile)
		}
		opt.TLSConfig.RootCAs = pool
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return fmt.Errorf("%w: a client certificate needs both its certificate and its key file", ErrBadConfig)
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("%w: load client certificate: %w", ErrBadConfig, err)
		}
		opt.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	return nil
}

// unixBuffer is the socket buffer size filecast asks for on unix sockets.
const unixBuffer = 4 << 20

// TuneDialer sets up d for moving megabyte values: on a unix socket it asks
// for 4 MiB send and receive buffers. The kernel's default, about 200 KiB,
// moves a chunk in small pieces: raw GETs of 1 MiB values went 40-60 %
// faster with 4 MiB, SETs 8 % and more, in three side-by-side rounds. TCP
// connections keep the kernel's autotuning, which fixed sizes would turn
// off. The kernel caps the sizes at net.core.wmem_max and rmem_max.
func TuneDialer(d *net.Dialer) {
	d.Control = func(network, _ string, c syscall.RawConn) error {
		if network != "unix" {
			return nil
		}
		return c.Control(func(fd uintptr) {
			// Best effort: a refused size leaves the default.
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, unixBuffer)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, unixBuffer)
		})
	}
}

func describeDialError(addr string, overTLS bool, err error) error {
	kind, _ := classify(err)
	msg := err.Error()
	switch {
	case errors.Is(kind, ErrAuth) || strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") ||
		strings.Contains(msg, "invalid password") || strings.Contains(msg, "invalid username-password"):
		return fmt.Errorf("connect to %s: %w: check the user and password (Options.URL, Options.Password)", addr, ErrAuth)
	}
	if strings.Contains(msg, "unknown message type") {
		// rueidis read a reply that is not RESP: an HTTP server, SSH, …
		where := addr
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			where = u.Host
		}
		return fmt.Errorf("connect to %s: %w: %s does not speak the Redis protocol (is it the right port?)", addr, ErrUnavailable, where)
	}
	hint := "is redis-server running there? check the URL (Options.URL)"
	var verify *tls.CertificateVerificationError
	reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || strings.Contains(msg, "tls:")
	switch {
	case errors.As(err, &verify):
		hint = "the server's TLS certificate is not trusted: give the CA that signed it (Options.CAFile)"
	case overTLS && reset:
		hint = "the TLS handshake failed: if the server requires client certificates (tls-auth-clients), give one (Options.CertFile, Options.KeyFile)"
	case !overTLS && reset:
		hint = "the server kept closing the connection: if it speaks TLS, use a rediss:// URL"
	}
	return fmt.Errorf("connect to %s: %w: %v (%s)", addr, ErrUnavailable, msg, hint)
}

// Spread reports whether new uploads are of protocol 2, their chunks
// spread over every primary: on a Redis Cluster.
func (c *Client) Spread() bool { return c.spread }

// Addr returns the server address with any password removed.
func (c *Client) Addr() string { return c.addr }

// Close closes every connection.
func (c *Client) Close() {
	c.rc.Close()
	c.bulk.Close()
	if c.replica != nil {
		c.replica.Close()
	}
}

// retry runs op until it succeeds, fails for good, ctx ends, or the
// connection has been failing for longer than RetryFor.
func (c *Client) retry(ctx context.Context, what string, op func(ctx context.Context) error) error {
	var first time.Time
	wait := 20 * time.Millisecond
	for {
		err := op(ctx)
		if err == nil {
			if at := c.lostAt.Load(); at != 0 && c.lostAt.CompareAndSwap(at, 0) && c.onConn != nil {
				c.onConn(false, nil, time.Since(time.Unix(0, at)))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		kind, transient := classify(err)
		if !transient {
			return fmt.Errorf("%s: %w", what, kind)
		}
		// A cluster slot on the move (milliseconds) is not a lost
		// server: not worth a warning.
		if !slotMoving(err) && c.lostAt.CompareAndSwap(0, time.Now().UnixNano()) && c.onConn != nil {
			c.onConn(true, err, 0)
		}
		if first.IsZero() {
			first = time.Now()
		} else if time.Since(first) > c.retryFor {
			return fmt.Errorf("%s: gave up after %v: %w", what, c.retryFor.Round(time.Second), kind)
		}
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// EvictionPolicy returns the server's maxmemory-policy (from INFO, which
// restricted ACL users may run where CONFIG GET is refused).
func (c *Client) EvictionPolicy(ctx context.Context) (string, error) {
	var info string
	err := c.retry(ctx, "read server info", func(ctx context.Context) (err error) {
		info, err = c.rc.Do(ctx, c.rc.B().Info().Section("memory").Build()).ToString()
		return err
	})
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok {
			return v, nil
		}
	}
	return "", nil
}

// Channels lists the channels that were ever used under prefix.
func (c *Client) Channels(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := c.retry(ctx, "list channels", func(ctx context.Context) (err error) {
		out, err = c.rc.Do(ctx, c.rc.B().Smembers().Key(Channels(prefix)).Build()).AsStrSlice()
		return err
	})
	return out, err
}

// Raw returns the underlying client, for tests and benchmarks in this module.
func (c *Client) Raw() rueidis.Client { return c.rc }
