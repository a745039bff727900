package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/keyslot"
	"github.com/redis/rueidis"
)

func TestStartPingSetGet(t *testing.T) {
	s := Start(t, Config{})
	if got := s.MustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING = %q, want PONG", got)
	}
	if got := s.MustDo(t, "SET", "k", "hello\r\nworld"); got != "OK" {
		t.Fatalf("SET = %q, want OK", got)
	}
	if got := s.MustDo(t, "GET", "k"); got != "hello\r\nworld" {
		t.Fatalf("GET = %q", got)
	}
	if s.Addr() != "" {
		t.Errorf("Addr() = %q without TCP, want empty", s.Addr())
	}
	if len(s.Socket()) > 104 {
		t.Errorf("socket path too long: %q", s.Socket())
	}
	// "port 0": the server must not listen on TCP.
	if got := s.MustDo(t, "CONFIG", "GET", "port"); got != "port\n0" {
		t.Errorf("CONFIG GET port = %q", got)
	}
}

func TestDoReplyTypes(t *testing.T) {
	s := Start(t, Config{})
	if got := s.MustDo(t, "INCRBY", "n", "42"); got != "42" {
		t.Errorf("INCRBY = %q, want 42", got)
	}
	got, err := s.Do("GET", "missing")
	if err != nil || got != "" {
		t.Errorf("GET missing = %q, %v; want \"\", nil", got, err)
	}
	if got := s.MustDo(t, "EVAL", "return {1, {'a', 'b'}, 'c'}", "0"); got != "1\na\nb\nc" {
		t.Errorf("nested array = %q", got)
	}
	if got := s.MustDo(t, "LRANGE", "nolist", "0", "-1"); got != "" {
		t.Errorf("empty array = %q", got)
	}
	_, err = s.Do("NOSUCHCOMMAND")
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command error = %v", err)
	}
	s.MustDo(t, "SET", "str", "x")
	if _, err := s.Do("LPUSH", "str", "y"); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Errorf("WRONGTYPE error = %v", err)
	}
	// An error nested in an array is reported too.
	if _, err := s.Do("EVAL", "return {1, redis.error_reply('boom')}", "0"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("nested error = %v", err)
	}
	// A large bulk string survives.
	big := strings.Repeat("x", 1<<20)
	s.MustDo(t, "SET", "big", big)
	if got := s.MustDo(t, "GET", "big"); got != big {
		t.Errorf("GET big: got %d bytes, want %d", len(got), len(big))
	}
}

func TestKeys(t *testing.T) {
	s := Start(t, Config{})
	var want []string
	for i := range 2500 {
		k := fmt.Sprintf("user:%04d", i)
		s.MustDo(t, "SET", k, "v")
		want = append(want, k)
	}
	s.MustDo(t, "SET", "other", "v")
	s.MustDo(t, "SET", "line\nbreak", "v")
	got := s.Keys("user:*")
	if !slices.Equal(got, want) {
		t.Fatalf("Keys(user:*) returned %d keys, want %d (first %v)", len(got), len(want), got[:min(3, len(got))])
	}
	if got := s.Keys("line*"); !slices.Equal(got, []string{"line\nbreak"}) {
		t.Errorf("Keys(line*) = %q", got)
	}
	if got := s.Keys("nothing*"); len(got) != 0 {
		t.Errorf("Keys(nothing*) = %q, want none", got)
	}
}

func TestKill(t *testing.T) {
	s := Start(t, Config{})
	s.MustDo(t, "SET", "k", "v")
	s.Kill()
	if got, err := s.Do("PING"); err == nil {
		t.Fatalf("PING after Kill = %q, want error", got)
	}
	s.Kill() // no-op on a dead server
}

func TestStop(t *testing.T) {
	s := Start(t, Config{})
	s.Stop()
	if got, err := s.Do("PING"); err == nil {
		t.Fatalf("PING after Stop = %q, want error", got)
	}
	s.Stop()
	s.Restart()
	if got := s.MustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING after Restart = %q", got)
	}
}

func TestRestartAOFKeepsData(t *testing.T) {
	s := Start(t, Config{AOF: true})
	s.MustDo(t, "SET", "k", "v")
	s.Kill()
	s.Restart()
	if got := s.MustDo(t, "GET", "k"); got != "v" {
		t.Fatalf("GET after crash and restart with AOF = %q, want v", got)
	}
}

func TestRestartWithoutAOFLosesData(t *testing.T) {
	s := Start(t, Config{})
	s.MustDo(t, "SET", "k", "v")
	s.Kill()
	s.Restart()
	if got := s.MustDo(t, "GET", "k"); got != "" {
		t.Fatalf("GET after crash and restart without AOF = %q, want nothing", got)
	}
	if got := s.MustDo(t, "SET", "k", "v2"); got != "OK" {
		t.Fatalf("SET after restart = %q", got)
	}
}

func TestRestartRunningServer(t *testing.T) {
	s := Start(t, Config{AOF: true})
	s.MustDo(t, "SET", "k", "v")
	s.Restart()
	if got := s.MustDo(t, "GET", "k"); got != "v" {
		t.Fatalf("GET after restart = %q, want v", got)
	}
}

func TestMaxMemoryPolicy(t *testing.T) {
	s := Start(t, Config{MaxMemory: 8 << 20, Policy: "allkeys-lru"})
	if got := s.MustDo(t, "CONFIG", "GET", "maxmemory"); got != "maxmemory\n8388608" {
		t.Errorf("CONFIG GET maxmemory = %q", got)
	}
	if got := s.MustDo(t, "CONFIG", "GET", "maxmemory-policy"); got != "maxmemory-policy\nallkeys-lru" {
		t.Errorf("CONFIG GET maxmemory-policy = %q", got)
	}
	d := Start(t, Config{})
	if got := d.MustDo(t, "CONFIG", "GET", "maxmemory-policy"); got != "maxmemory-policy\nnoeviction" {
		t.Errorf("default maxmemory-policy = %q", got)
	}
}

func TestExtra(t *testing.T) {
	s := Start(t, Config{Extra: []string{"databases 3", "hz 50"}})
	if got := s.MustDo(t, "CONFIG", "GET", "databases"); got != "databases\n3" {
		t.Errorf("CONFIG GET databases = %q", got)
	}
	if got := s.MustDo(t, "CONFIG", "GET", "hz"); got != "hz\n50" {
		t.Errorf("CONFIG GET hz = %q", got)
	}
}

func rueidisPing(t *testing.T, u string) {
	t.Helper()
	opt, err := rueidis.ParseURL(u)
	if err != nil {
		t.Fatalf("rueidis.ParseURL(%q): %v", u, err)
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("rueidis.NewClient(%q): %v", u, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Do(ctx, c.B().Set().Key("via").Value(u).Build()).Error(); err != nil {
		t.Fatalf("SET via %q: %v", u, err)
	}
}

func TestURLs(t *testing.T) {
	s := Start(t, Config{TCP: true})
	if want := "unix://" + s.Socket(); s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	if want := "redis://" + s.Addr() + "/0"; s.TCPURL() != want {
		t.Errorf("TCPURL() = %q, want %q", s.TCPURL(), want)
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Errorf("Addr() = %q", s.Addr())
	}
	rueidisPing(t, s.URL())
	if got := s.MustDo(t, "GET", "via"); got != s.URL() {
		t.Errorf("key written via unix URL = %q", got)
	}
	rueidisPing(t, s.TCPURL())
	if got := s.MustDo(t, "GET", "via"); got != s.TCPURL() {
		t.Errorf("key written via TCP URL = %q", got)
	}
}

func TestRequirePass(t *testing.T) {
	const pass = "s3cr@t:/ p?w"
	s := Start(t, Config{TCP: true, RequirePass: pass})
	if got := s.MustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING = %q", got)
	}
	// Without AUTH the server refuses.
	c, err := dialRESP("unix", s.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.do("GET", "k"); err != nil || !strings.HasPrefix(stringOf(v), "NOAUTH") {
		t.Fatalf("GET without AUTH = %v, %v; want NOAUTH", v, err)
	}
	if !strings.HasPrefix(s.URL(), "unix://:") || !strings.HasPrefix(s.TCPURL(), "redis://:") {
		t.Errorf("URLs without password: %q %q", s.URL(), s.TCPURL())
	}
	rueidisPing(t, s.URL())
	rueidisPing(t, s.TCPURL())
	if got := s.MustDo(t, "GET", "via"); got != s.TCPURL() {
		t.Errorf("key written via TCP URL = %q", got)
	}
}

func stringOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case redisError:
		return string(v)
	}
	return ""
}

func TestTCPRestartKeepsAddr(t *testing.T) {
	s := Start(t, Config{TCP: true, AOF: true})
	addr := s.Addr()
	c := dialTCP(t, addr)
	if got := c.mustDo(t, "SET", "k", "v"); got != "OK" {
		t.Fatalf("SET over TCP = %q", got)
	}
	s.Kill()
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Addr changed from %q to %q", addr, s.Addr())
	}
	if got := dialTCP(t, addr).mustDo(t, "GET", "k"); got != "v" {
		t.Fatalf("GET over TCP after restart = %q", got)
	}
}

// tcpClient is a raw RESP client for talking to a server or a proxy over TCP.
type tcpClient struct{ *conn }

func dialTCP(t *testing.T, addr string) tcpClient {
	t.Helper()
	c, err := dialRESP("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return tcpClient{c}
}

func (c tcpClient) mustDo(t *testing.T, args ...string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	v, err := c.do(args...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	s, err := render(v)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return s
}

// expectSilence sends PING and checks that no reply arrives within d.
func (c tcpClient) expectSilence(t *testing.T, d time.Duration) {
	t.Helper()
	if err := c.send("PING"); err != nil {
		t.Fatalf("send PING: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(d))
	v, err := c.readReply()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING through black hole = %v, %v; want timeout", v, err)
	}
}

// expectClosed checks that the connection is closed by the peer.
func (c tcpClient) expectClosed(t *testing.T) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.send("PING") // may fail or succeed, depending on timing
	v, err := c.readReply()
	if err == nil {
		t.Fatalf("read on cut connection = %v, want error", v)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read on cut connection timed out; want it closed")
	}
}

func TestProxyForwards(t *testing.T) {
	s := Start(t, Config{TCP: true})
	p := NewProxy(t, s.Addr())
	if p.URL() != "redis://"+p.Addr()+"/0" {
		t.Errorf("URL() = %q", p.URL())
	}
	c := dialTCP(t, p.Addr())
	if got := c.mustDo(t, "SET", "k", "through proxy"); got != "OK" {
		t.Fatalf("SET via proxy = %q", got)
	}
	if got := s.MustDo(t, "GET", "k"); got != "through proxy" {
		t.Fatalf("GET direct = %q", got)
	}
	big := strings.Repeat("y", 3<<20)
	c.mustDo(t, "SET", "big", big)
	if got := c.mustDo(t, "GET", "big"); got != big {
		t.Fatalf("GET big via proxy: %d bytes, want %d", len(got), len(big))
	}
	if n := p.Conns(); n != 1 {
		t.Errorf("Conns() = %d, want 1", n)
	}
	rueidisPing(t, p.URL())
	c.Close()
	waitFor(t, func() bool { return p.Conns() == 0 }, "Conns() to drop to 0 after client close")
}

func TestProxyCut(t *testing.T) {
	s := Start(t, Config{TCP: true})
	p := NewProxy(t, s.Addr())
	c1 := dialTCP(t, p.Addr())
	c2 := dialTCP(t, p.Addr())
	c1.mustDo(t, "PING")
	c2.mustDo(t, "PING")
	if n := p.Conns(); n != 2 {
		t.Fatalf("Conns() = %d, want 2", n)
	}
	before := s.MustDo(t, "INFO", "clients")
	p.Cut()
	if n := p.Conns(); n != 0 {
		t.Errorf("Conns() after Cut = %d, want 0", n)
	}
	c1.expectClosed(t)
	c2.expectClosed(t)
	// The server side is closed too.
	waitFor(t, func() bool { return connectedClients(s) == 1 }, "server to see only our INFO client; before Cut: "+before)
	// New connections still work.
	if got := dialTCP(t, p.Addr()).mustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING after Cut = %q", got)
	}
}

func connectedClients(s *Server) int {
	info, err := s.Do("INFO", "clients")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "connected_clients:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

func TestProxyDelay(t *testing.T) {
	s := Start(t, Config{TCP: true})
	p := NewProxy(t, s.Addr())
	c := dialTCP(t, p.Addr())
	c.mustDo(t, "PING")
	const d = 100 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	c.mustDo(t, "PING")
	// Request and reply are each delayed.
	if el := time.Since(start); el < 2*d {
		t.Errorf("PING with delay %v took %v, want at least %v", d, el, 2*d)
	}
	p.SetDelay(0)
	start = time.Now()
	c.mustDo(t, "PING")
	if el := time.Since(start); el >= d {
		t.Errorf("PING without delay took %v", el)
	}
}

func TestProxyBlackhole(t *testing.T) {
	s := Start(t, Config{TCP: true})
	p := NewProxy(t, s.Addr())
	old := dialTCP(t, p.Addr())
	old.mustDo(t, "PING")

	p.Blackhole(true)
	old.expectSilence(t, 300*time.Millisecond)
	// New connections are accepted but silent.
	fresh := dialTCP(t, p.Addr())
	fresh.expectSilence(t, 300*time.Millisecond)
	if n := p.Conns(); n != 2 {
		t.Errorf("Conns() during black hole = %d, want 2", n)
	}

	p.Blackhole(false)
	old.expectClosed(t)
	fresh.expectClosed(t)
	if got := dialTCP(t, p.Addr()).mustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING after black hole = %q", got)
	}
}

func TestProxyTargetDown(t *testing.T) {
	s := Start(t, Config{TCP: true})
	p := NewProxy(t, s.Addr())
	s.Kill()
	c := dialTCP(t, p.Addr())
	c.expectClosed(t)
	s.Restart()
	if got := dialTCP(t, p.Addr()).mustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING after restart = %q", got)
	}
}

func TestProxyClose(t *testing.T) {
	s := Start(t, Config{TCP: true})
	p := NewProxy(t, s.Addr())
	p.SetDelay(time.Hour) // Close must not wait for the delay
	c := dialTCP(t, p.Addr())
	c.send("PING")
	waitFor(t, func() bool { return p.Conns() == 1 }, "connection to be accepted")
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	c.expectClosed(t)
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("proxy still accepting after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartCleanupRemovesDir(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		s := Start(t, Config{AOF: true})
		s.MustDo(t, "SET", "k", "v")
		dir = strings.TrimSuffix(s.Socket(), "/redis.sock")
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("server dir %s still exists after cleanup: %v", dir, err)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartRetriesBusyPort(t *testing.T) {
	s := Start(t, Config{TCP: true})
	s.Kill()
	// Someone else holds the port for a moment after the crash.
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("grabbing port: %v", err)
	}
	time.AfterFunc(300*time.Millisecond, func() { l.Close() })
	s.Restart()
	if got := dialTCP(t, s.Addr()).mustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING after restart = %q", got)
	}
}

func TestClusterFormsFailsOverAndMigrates(t *testing.T) {
	c := StartCluster(t, ClusterConfig{Primaries: 3, Replicas: 1})
	if got := len(c.Primaries()); got != 3 {
		t.Fatalf("%d primaries, want 3", got)
	}
	// The slot computed here is the server's.
	for i := range 50 {
		key := fmt.Sprintf("fc:{%d}:k%d", i*7919, i)
		want, err := c.Primaries()[0].Do("CLUSTER", "KEYSLOT", key)
		if err != nil {
			t.Fatal(err)
		}
		if got := strconv.Itoa(int(keyslot.Slot(key))); got != want {
			t.Fatalf("Slot(%q) = %s, server says %s", key, got, want)
		}
		if _, err := c.Do("SET", key, "v"); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(c.Keys("fc:*")); got != 50 {
		t.Fatalf("Keys found %d keys on the primaries, want 50", got)
	}
	spread := c.KeysPerPrimary("fc:*")
	if len(spread) != 3 {
		t.Fatalf("keys on %d primaries, want 3: %v", len(spread), spread)
	}

	// A killed primary is replaced by its replica, which has the data.
	key := "fc:{0}:k0"
	slot := keyslot.Slot(key)
	old := c.Owner(slot)
	replicas := c.ReplicasOf(old)
	if len(replicas) != 1 {
		t.Fatalf("%d replicas of the primary, want 1", len(replicas))
	}
	c.Do("WAIT", "1", "1000")
	time.Sleep(200 * time.Millisecond) // replication is asynchronous
	c.Kill(old)
	c.WaitHealthy()
	if now := c.Owner(slot); now != replicas[0] {
		t.Fatalf("slot %d served by %s after the failover, want its replica %s", slot, now.Addr(), replicas[0].Addr())
	}
	if got, err := c.Do("GET", key); err != nil || got != "v" {
		t.Fatalf("GET after failover = %q, %v", got, err)
	}
	c.Restart() // the old primary comes back as a replica
	if got := len(c.ReplicasOf(replicas[0])); got != 1 {
		t.Errorf("the new primary has %d replicas after the old one restarted, want 1", got)
	}

	// A slot moved to another primary keeps its keys, found by redirection.
	to := c.Primaries()[2]
	if to == c.Owner(slot) {
		to = c.Primaries()[1]
	}
	if err := c.MigrateSlot(slot, to, 0); err != nil {
		t.Fatal(err)
	}
	if c.Owner(slot) != to {
		t.Fatalf("slot %d not served by %s after MigrateSlot", slot, to.Addr())
	}
	if got, err := c.Do("GET", key); err != nil || got != "v" {
		t.Fatalf("GET after migration = %q, %v", got, err)
	}
}

func TestStartStandsForAClusterWhenAsked(t *testing.T) {
	t.Setenv("FILECAST_TEST_CLUSTER", "3")
	s := Start(t, Config{})
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || strings.Count(s.URL(), "addr=") != 2 {
		t.Fatalf("URL = %q, want three seed addresses", s.URL())
	}
	for i := range 30 {
		s.MustDo(t, "SET", fmt.Sprint("k", i), "v")
	}
	if got := s.MustDo(t, "DBSIZE"); got != "30" {
		t.Fatalf("DBSIZE = %s, want 30", got)
	}
	if got := len(s.Keys("k*")); got != 30 {
		t.Fatalf("Keys = %d, want 30", got)
	}
	// rueidis finds the cluster from the URL.
	rc := rueidisClient(t, s.URL())
	if rc.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("rueidis mode %v, want cluster", rc.Mode())
	}
	if v, err := rc.Do(context.Background(), rc.B().Get().Key("k7").Build()).ToString(); err != nil || v != "v" {
		t.Fatalf("GET k7 = %q, %v", v, err)
	}
}

func TestSentinelFailsOver(t *testing.T) {
	s := StartSentinel(t, SentinelConfig{})
	old := s.Primary()
	if old != s.Nodes()[0] {
		t.Fatalf("the Sentinels name %s, want the first node", old.Addr())
	}
	rc := rueidisClient(t, s.URL())
	ctx := context.Background()
	if err := rc.Do(ctx, rc.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// Both replicas must have it before the kill: a replica that synced
	// late would take over without it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := rc.Do(ctx, rc.B().Wait().Numreplicas(2).Timeout(1000).Build()).AsInt64()
		if err == nil && n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAIT 2 = %d, %v: the replicas did not confirm the write", n, err)
		}
	}
	old.Kill()
	p := s.WaitFailover(old)
	if p == old {
		t.Fatal("no new primary")
	}
	// The client follows the Sentinels to the new primary.
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := rc.Do(ctx, rc.B().Get().Key("k").Build()).ToString()
		if err == nil && v == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET after failover = %q, %v", v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rueidisClient connects rueidis to url as an application would, and
// closes it when the test ends.
func rueidisClient(t *testing.T, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	return rc
}
