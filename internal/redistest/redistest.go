// Package redistest provides utilities for tests that need a real Redis.
//
// Start runs a private redis-server process for one test, listening on a
// unix socket in a fresh temporary directory (and optionally on a free
// loopback TCP port), so tests never touch a Redis the user may be running
// on the default port. The server can be crashed, stopped and restarted to
// exercise failure handling, and NewProxy puts a fault-injecting TCP proxy
// in front of it.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start and Restart wait for the server to
// answer PING, and how long Stop waits for a graceful exit.
const startTimeout = 10 * time.Second

// Config configures the redis-server started by Start. The zero value is a
// unix-socket-only server without persistence or memory limit.
type Config struct {
	// AOF turns on appendonly yes with appendfsync always, so a restart
	// keeps data.
	AOF bool

	// MaxMemory sets maxmemory in bytes (0 means no limit).
	MaxMemory int64

	// Policy sets maxmemory-policy. The default is "noeviction".
	Policy string

	// TCP makes the server also listen on a free 127.0.0.1 port. By default
	// the server listens only on its unix socket ("port 0").
	TCP bool

	// RequirePass sets requirepass. The helpers of Server authenticate
	// automatically, and URL and TCPURL include the password.
	RequirePass string

	// TLS makes the server listen for TLS on a free 127.0.0.1 port (see
	// TLSURL and TLSFiles) with certificates made for the test. Its unix
	// socket stays plain, for the helpers.
	TLS bool

	// ClientCerts makes a TLS server require a client certificate signed
	// by its CA (TLSFiles.ClientCert is one).
	ClientCerts bool

	// Netns runs the server inside this network namespace (ip netns exec),
	// and BindAddr is then the address of the namespace it listens on for
	// TCP (default 127.0.0.1). For tests of real network conditions.
	Netns, BindAddr string

	// Extra holds configuration lines appended verbatim to the config.
	Extra []string

	// Cluster makes the server a Redis Cluster node (cluster-enabled yes,
	// on a free bus port); it implies TCP. StartCluster joins such nodes.
	Cluster bool

	// Sentinel runs the server as a Sentinel (--sentinel) with these
	// configuration lines ("sentinel monitor ..."); it implies TCP.
	Sentinel []string
}

// Server is a private redis-server process started for one test.
//
// Its methods that can fail the test (Restart, TCPURL, MustDo and Start
// itself) must be called from the goroutine running the test. Do and Keys
// may be called from any goroutine.
type Server struct {
	t    testing.TB
	cfg  Config
	dir  string
	sock string
	port int // 0 unless cfg.TCP
	bus  int // the cluster bus port, 0 unless cfg.Cluster
	tls  int // the TLS port, 0 unless cfg.TLS
	tlsf TLSFiles

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited and been reaped

	// cl is set on the stand-in for a whole cluster that Start returns
	// when FILECAST_TEST_CLUSTER asks for one (see Start).
	cl *Cluster
}

// Binary is the server program the helpers start: $FILECAST_TEST_SERVER
// (valkey-server, say) or redis-server.
func Binary() string {
	if b := os.Getenv("FILECAST_TEST_SERVER"); b != "" {
		return b
	}
	return "redis-server"
}

// Start starts redis-server with cfg for the test and registers a cleanup
// function with t that stops the server, reaps it and removes its directory.
//
// The configuration is passed to redis-server on stdin. The server's unix
// socket, log (redis.log) and any AOF files live in a short temporary
// directory. Start waits up to 10 seconds for the server to answer PING.
// If redis-server is not installed, or fails to start, Start calls t.Fatalf.
//
// With FILECAST_TEST_CLUSTER set (to the number of primaries, 3 if it is
// not a number), Start starts a Redis Cluster instead for every cfg a
// cluster can serve (not TLS, Netns or Sentinel) and returns a stand-in
// for it: URL names every primary, Do and MustDo send each command to the
// node that holds its key (keyless ones to every primary), Keys looks on
// every primary, and Kill, Stop and Restart act on every node. Socket and
// Addr name the first primary. So the same tests run on both.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if n := clusterFromEnv(); n > 0 && !cfg.TLS && cfg.Netns == "" && cfg.Sentinel == nil && !cfg.Cluster {
		return fromPool(t, ClusterConfig{Primaries: n, Node: cfg}).Stand()
	}
	s, err := Launch(cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.t = t
	t.Cleanup(s.Close)
	return s
}

// Launch is Start for programs that are not tests, such as benchmarks: it
// returns an error instead of failing a test, and the caller must Close
// the server. On a launched server, the methods documented as calling
// t.Fatalf panic instead.
func Launch(cfg Config) (*Server, error) {
	if _, err := exec.LookPath(Binary()); err != nil {
		return nil, fmt.Errorf("redistest: %s not found on PATH (%v); install it with `apt-get install -y redis-server`", Binary(), err)
	}
	if cfg.Cluster || cfg.Sentinel != nil {
		cfg.TCP = true
	}
	if cfg.Policy == "" {
		cfg.Policy = "noeviction"
	}
	// t.TempDir paths can exceed the 107-byte limit on unix socket paths,
	// so use a short directory of our own.
	dir, err := os.MkdirTemp("", "rt")
	if err == nil && len(dir) > 90 {
		os.RemoveAll(dir)
		dir, err = os.MkdirTemp("/tmp", "rt")
	}
	if err != nil {
		return nil, fmt.Errorf("redistest: %v", err)
	}
	s := &Server{cfg: cfg, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	if cfg.TLS {
		if s.tlsf, err = writeTLSFiles(dir); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("redistest: making certificates: %v", err)
		}
	}

	// The free port we pick may be grabbed by someone else before
	// redis-server binds it; try again with a new port in that case.
	for attempt := 1; ; attempt++ {
		if cfg.TCP {
			if s.port, err = freePort(); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("redistest: finding a free port: %v", err)
			}
		}
		if cfg.TLS {
			if s.tls, err = freePort(); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("redistest: finding a free port: %v", err)
			}
		}
		if cfg.Cluster {
			if s.bus, err = freePort(); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("redistest: finding a free port: %v", err)
			}
		}
		err = s.start()
		if err == nil {
			return s, nil
		}
		if !(cfg.TCP || cfg.TLS) || attempt == 3 {
			log := s.logTail()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("redistest: starting %s: %v\n%s", Binary(), err, log)
		}
	}
}

// Close stops the server (as Stop) and removes its directory.
func (s *Server) Close() {
	if s.cl != nil {
		return // the test's cleanup releases it
	}
	s.Stop()
	os.RemoveAll(s.dir)
}

// fatalf fails the test that started s, or panics on a launched server.
func (s *Server) fatalf(format string, args ...any) {
	if s.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	s.t.Helper()
	s.t.Fatalf(format, args...)
}

// bindAddr is the address the server listens on for TCP.
func (s *Server) bindAddr() string {
	if s.cfg.BindAddr != "" {
		return s.cfg.BindAddr
	}
	return "127.0.0.1"
}

// freePort returns a 127.0.0.1 TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// config renders the redis.conf text for s.
func (s *Server) config() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if s.cfg.TCP {
		line("bind %s", s.bindAddr())
		line("port %d", s.port)
		if s.cfg.BindAddr != "" {
			line("protected-mode no") // clients come from another address
		}
	} else {
		line("port 0")
	}
	if s.cfg.TLS {
		if !s.cfg.TCP {
			line("bind 127.0.0.1")
		}
		line("tls-port %d", s.tls)
		line("tls-cert-file %s", s.tlsf.ServerCert)
		line("tls-key-file %s", s.tlsf.ServerKey)
		line("tls-ca-cert-file %s", s.tlsf.CA)
		if s.cfg.ClientCerts {
			line("tls-auth-clients yes")
		} else {
			line("tls-auth-clients no")
		}
	}
	line("unixsocket %s", s.sock)
	line("unixsocketperm 700")
	line("dir %s", s.dir)
	line("logfile %s", filepath.Join(s.dir, "redis.log"))
	line("daemonize no")
	line(`save ""`)
	line("enable-debug-command yes")
	if s.cfg.AOF {
		line("appendonly yes")
		line("appendfsync always")
	} else {
		line("appendonly no")
	}
	line("maxmemory %d", s.cfg.MaxMemory)
	line("maxmemory-policy %s", s.cfg.Policy)
	if s.cfg.RequirePass != "" {
		line("requirepass %s", strconv.Quote(s.cfg.RequirePass))
	}
	if s.cfg.Cluster {
		line("cluster-enabled yes")
		line("cluster-config-file nodes.conf")
		line("cluster-port %d", s.bus)
		line("cluster-node-timeout %d", clusterNodeTimeout.Milliseconds())
		line("cluster-replica-validity-factor 0") // any replica may take over
		line("cluster-allow-replica-migration no")
	}
	for _, l := range s.cfg.Sentinel {
		line("%s", l)
	}
	for _, l := range s.cfg.Extra {
		line("%s", l)
	}
	return b.String()
}

// start launches redis-server and waits until it answers PING. If it does
// not, the process is killed and an error is returned.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("redistest: server already running")
	}
	// Output that does not go to the logfile, such as config errors.
	out, err := os.OpenFile(filepath.Join(s.dir, "redis.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(Binary(), "-")
	cmd.Stdin = strings.NewReader(s.config())
	if s.cfg.Netns != "" {
		cmd = exec.Command("ip", "netns", "exec", s.cfg.Netns, Binary(), "-")
		cmd.Stdin = strings.NewReader(s.config())
	}
	if s.cfg.Sentinel != nil {
		// A Sentinel rewrites its configuration file: it needs one.
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil {
			if err := os.WriteFile(conf, []byte(s.config()), 0o600); err != nil {
				return err
			}
		}
		cmd = exec.Command(Binary(), conf, "--sentinel")
	}
	cmd.Stdout = out
	cmd.Stderr = out
	if s.cfg.Cluster {
		// Nodes of clusters kept for reuse outlive their test: they must
		// not outlive the test process (see Main).
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := s.Do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("redis-server exited: %v", cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			s.cmd, s.done = nil, nil
			return fmt.Errorf("no PONG after %v (last reply %q, error %v)", startTimeout, reply, err)
		}
	}
}

// logTail returns the last lines of the server's log and captured output,
// for failure messages.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"redis.out", "redis.log"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		fmt.Fprintf(&b, "--- tail of %s ---\n%s\n", name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Socket returns the path of the server's unix socket.
func (s *Server) Socket() string {
	if s.cl != nil {
		return s.cl.primaries()[0].sock
	}
	return s.sock
}

// Addr returns the server's TCP address, "127.0.0.1:port", or "" if the
// server was started without Config.TCP.
func (s *Server) Addr() string {
	if s.cl != nil {
		return s.cl.primaries()[0].Addr()
	}
	if s.port == 0 {
		return ""
	}
	return net.JoinHostPort(s.bindAddr(), strconv.Itoa(s.port))
}

// URL returns a URL for the server's unix socket in the form accepted by
// rueidis.ParseURL: "unix:///path/redis.sock", or
// "unix://:password@/path/redis.sock" if Config.RequirePass is set.
func (s *Server) URL() string {
	if s.cl != nil {
		return s.cl.URL()
	}
	u := url.URL{Scheme: "unix", Path: s.sock}
	if s.cfg.RequirePass != "" {
		u.User = url.UserPassword("", s.cfg.RequirePass)
	}
	return u.String()
}

// TCPURL returns a URL for the server's TCP address, database 0:
// "redis://127.0.0.1:port/0", with the password if Config.RequirePass is
// set. It calls t.Fatal if the server was started without Config.TCP.
func (s *Server) TCPURL() string {
	if s.cl != nil {
		return s.cl.URL()
	}
	if s.port == 0 {
		s.fatalf("redistest: TCPURL called on a server started without Config.TCP")
	}
	u := url.URL{Scheme: "redis", Host: s.Addr(), Path: "/0"}
	if s.cfg.RequirePass != "" {
		u.User = url.UserPassword("", s.cfg.RequirePass)
	}
	return u.String()
}

// TLSURL returns "rediss://127.0.0.1:port/0" for the TLS port, with the
// password if Config.RequirePass is set. It calls t.Fatal if the server
// was started without Config.TLS.
func (s *Server) TLSURL() string {
	if s.tls == 0 {
		s.fatalf("redistest: TLSURL called on a server started without Config.TLS")
	}
	u := url.URL{Scheme: "rediss", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tls)), Path: "/0"}
	if s.cfg.RequirePass != "" {
		u.User = url.UserPassword("", s.cfg.RequirePass)
	}
	return u.String()
}

// TLSFiles returns the certificate files of a server started with
// Config.TLS.
func (s *Server) TLSFiles() TLSFiles { return s.tlsf }

// Kill sends SIGKILL to the server, as in a crash, and waits for it to
// exit. It does nothing if the server is not running.
func (s *Server) Kill() {
	if s.cl != nil {
		s.cl.dirty.Store(true)
		s.cl.each(func(n *Server) { n.Kill() })
		return
	}
	s.halt(syscall.SIGKILL)
}

// Pause stops the server process (SIGSTOP) without ending it, as a host
// that froze: connections stay open and nothing is answered. Resume (or
// Kill) undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// WaitReplicated waits until every replica connected to the server (a
// primary) has acknowledged all it was sent, and calls t.Fatalf after 10
// seconds.
func (s *Server) WaitReplicated() {
	deadline := time.Now().Add(startTimeout)
	for {
		info, err := s.Do("INFO", "replication")
		if err == nil {
			var offset string
			behind := false
			for line := range strings.Lines(info) {
				line = strings.TrimSpace(line)
				if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
					offset = v
				}
			}
			for line := range strings.Lines(info) {
				if strings.HasPrefix(line, "slave") && strings.Contains(line, "offset=") &&
					!strings.Contains(line, "offset="+offset+",") {
					behind = true
				}
			}
			if offset != "" && !behind {
				return
			}
		}
		if time.Now().After(deadline) {
			s.fatalf("redistest: replicas of %s did not catch up: %v\n%s", s.Addr(), err, info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop shuts the server down gracefully with SIGTERM and waits for it to
// exit, killing it if it has not exited within 10 seconds. It does
// nothing if the server is not running.
func (s *Server) Stop() {
	if s.cl != nil {
		s.cl.dirty.Store(true)
		s.cl.each(func(n *Server) { n.Stop() })
		return
	}
	s.halt(syscall.SIGTERM)
}

func (s *Server) halt(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused server must see it
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Restart starts the server again with the same configuration, directory,
// socket and port, stopping it first (gracefully) if it is still running.
// With Config.AOF the data written before a Kill or Stop is reloaded.
// Restart waits for the server to answer PING and calls t.Fatalf if it
// cannot be started, retrying a few times in case its TCP port is
// briefly unavailable.
func (s *Server) Restart() {
	if s.cl != nil {
		s.cl.Restart()
		return
	}
	s.Stop()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		if err = s.start(); err == nil {
			return
		}
	}
	s.fatalf("redistest: restarting redis-server: %v\n%s", err, s.logTail())
}

// Do sends one command to the server over a new connection to its unix
// socket and returns the reply rendered as a string: simple strings, bulk
// strings and integers as they are, a nil reply as "", and arrays as their
// rendered elements joined by "\n" (nested arrays are flattened). An error
// reply, at any depth, is returned as an error. Do authenticates first if
// Config.RequirePass is set.
func (s *Server) Do(args ...string) (string, error) {
	if s.cl != nil {
		return s.cl.Do(args...)
	}
	c, err := s.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	v, err := c.do(args...)
	if err != nil {
		return "", err
	}
	return render(v)
}

// MustDo is like Do but calls t.Fatalf if Do returns an error.
func (s *Server) MustDo(t testing.TB, args ...string) string {
	t.Helper()
	reply, err := s.Do(args...)
	if err != nil {
		t.Fatalf("redistest: %s: %v", strings.Join(args, " "), err)
	}
	return reply
}

// Keys returns, sorted, all keys matching the glob-style pattern, found by
// iterating SCAN. It calls t.Fatalf if the server cannot be reached.
func (s *Server) Keys(pattern string) []string {
	if s.cl != nil {
		return s.cl.Keys(pattern)
	}
	c, err := s.dial()
	if err != nil {
		s.fatalf("redistest: Keys: %v", err)
	}
	defer c.Close()
	keys := []string{}
	cursor := "0"
	for {
		v, err := c.do("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
		if err != nil {
			s.fatalf("redistest: Keys: SCAN: %v", err)
		}
		arr, ok := v.([]any)
		if !ok || len(arr) != 2 {
			s.fatalf("redistest: Keys: unexpected SCAN reply %#v", v)
		}
		next, _ := arr[0].(string)
		batch, _ := arr[1].([]any)
		for _, k := range batch {
			if k, ok := k.(string); ok {
				keys = append(keys, k)
			}
		}
		if next == "0" || next == "" {
			break
		}
		cursor = next
	}
	// SCAN may return a key more than once.
	slices.Sort(keys)
	return slices.Compact(keys)
}

// dial connects to the server's unix socket and authenticates.
func (s *Server) dial() (*conn, error) {
	c, err := dialRESP("unix", s.sock)
	if err != nil {
		return nil, err
	}
	if s.cfg.RequirePass != "" {
		if _, err := c.do("AUTH", s.cfg.RequirePass); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return c, nil
}

// conn is a minimal RESP2 client connection.
type conn struct {
	net.Conn
	r *bufio.Reader
}

// dialRESP connects to a Redis server. Every operation on the returned
// connection must complete within startTimeout.
func dialRESP(network, addr string) (*conn, error) {
	nc, err := net.DialTimeout(network, addr, startTimeout)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(startTimeout))
	return &conn{Conn: nc, r: bufio.NewReader(nc)}, nil
}

// do sends a command and reads its reply. See readReply for the reply
// types. A Redis error reply is returned as a value of type redisError, not
// as an error; the error result reports I/O and protocol failures.
func (c *conn) do(args ...string) (any, error) {
	if err := c.send(args...); err != nil {
		return nil, err
	}
	return c.readReply()
}

// send writes a command as a RESP array of bulk strings.
func (c *conn) send(args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(c.Conn, b.String())
	return err
}

// redisError is an error reply from the server.
type redisError string

func (e redisError) Error() string { return string(e) }

// readReply reads one RESP2 reply: a string (simple string, bulk string or
// integer, in decimal), nil (nil bulk string or nil array), []any (array)
// or redisError.
func (c *conn) readReply() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("redistest: malformed reply line %q", line)
	}
	kind, rest := line[0], line[1:len(line)-2]
	switch kind {
	case '+', ':':
		return rest, nil
	case '-':
		return redisError(rest), nil
	case '$', '*':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("redistest: malformed reply line %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		if kind == '$' {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(c.r, buf); err != nil {
				return nil, err
			}
			return string(buf[:n]), nil
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = c.readReply(); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("redistest: unsupported reply type in %q", line)
}

// render formats a reply for Do.
func render(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case redisError:
		return "", v
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			var err error
			if parts[i], err = render(e); err != nil {
				return "", err
			}
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redistest: unexpected reply %T", v)
}
