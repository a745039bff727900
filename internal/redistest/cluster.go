package redistest

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/keyslot"
)

// clusterNodeTimeout is the cluster-node-timeout of the nodes: a primary
// that stops answering is failed over by its replica about twice this
// long after.
const clusterNodeTimeout = time.Second

// clusterTimeout bounds how long the helpers wait for a cluster to form,
// heal or fail over.
const clusterTimeout = 30 * time.Second

// clusterFromEnv returns the number of primaries FILECAST_TEST_CLUSTER
// asks every test to run on (0: a standalone server).
func clusterFromEnv() int {
	v := os.Getenv("FILECAST_TEST_CLUSTER")
	if v == "" || v == "0" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n
	}
	return 3
}

// ClusterConfig configures the Redis Cluster started by StartCluster.
type ClusterConfig struct {
	Primaries int    // how many primaries share the slots evenly (default 3)
	Replicas  int    // replicas of each primary
	Node      Config // the configuration of every node (Cluster is implied)
}

// Cluster is a private Redis Cluster on loopback: real server processes,
// each with its own directory, port, bus port and unix socket (for the
// helpers). Its methods may be called from any goroutine unless they say
// they fail the test.
type Cluster struct {
	t     testing.TB
	nodes []*Server   // every node, in start order: the primaries first
	stand *Server     // the stand-in Start returns (see Stand)
	key   string      // its configuration, for the pool of idle clusters
	dirty atomic.Bool // changed beyond its data: not to be reused

	mu  sync.Mutex
	ids map[*Server]string // node IDs
}

// StartCluster starts a cluster for the test and registers its cleanup.
// It returns once every slot is served, every node agrees, and every
// replica has synced with its primary (a replica that has not synced
// refuses to take over). It calls t.Fatalf if it cannot.
func StartCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	c, err := LaunchCluster(cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	c.t = t
	t.Cleanup(c.Close)
	return c
}

// LaunchCluster is StartCluster for programs that are not tests; the
// caller must Close the cluster.
func LaunchCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Primaries <= 0 {
		cfg.Primaries = 3
	}
	cfg.Node.Cluster = true
	c := &Cluster{ids: map[*Server]string{}}
	total := cfg.Primaries * (1 + cfg.Replicas)
	for range total {
		s, err := Launch(cfg.Node)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, s)
	}
	fail := func(err error) (*Cluster, error) {
		var b strings.Builder
		for _, n := range c.nodes {
			b.WriteString(n.logTail())
		}
		c.Close()
		return nil, fmt.Errorf("redistest: forming a cluster: %v\n%s", err, b.String())
	}
	for _, n := range c.nodes {
		id, err := n.Do("CLUSTER", "MYID")
		if err != nil {
			return fail(err)
		}
		c.ids[n] = id
	}
	for i, n := range c.nodes[:cfg.Primaries] {
		lo, hi := i*keyslot.Slots/cfg.Primaries, (i+1)*keyslot.Slots/cfg.Primaries-1
		if _, err := n.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return fail(err)
		}
	}
	first := c.nodes[0]
	for _, n := range c.nodes[1:] {
		if _, err := n.Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(first.port), strconv.Itoa(first.bus)); err != nil {
			return fail(err)
		}
	}
	// A node can replicate a primary only once it knows it.
	if err := c.waitFor(func() error {
		for _, n := range c.nodes {
			out, err := n.Do("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			if got := strings.Count(strings.TrimSpace(out), "\n") + 1; got != total {
				return fmt.Errorf("%s knows %d of %d nodes", n.Addr(), got, total)
			}
		}
		return nil
	}); err != nil {
		return fail(err)
	}
	for i, n := range c.nodes[cfg.Primaries:] {
		primary := c.nodes[i%cfg.Primaries]
		if _, err := n.Do("CLUSTER", "REPLICATE", c.ids[primary]); err != nil {
			return fail(err)
		}
	}
	if err := c.waitHealthy(); err != nil {
		return fail(err)
	}
	return c, nil
}

// A cluster takes over 2 s to start: Redis keeps a new primary from
// serving for its first 2 s (CLUSTER_WRITABLE_DELAY). The stand-ins that
// Start returns for FILECAST_TEST_CLUSTER are therefore kept when their
// test ends, emptied and reused by the next test that asks for the same
// configuration, unless the test changed them beyond their data (killed a
// node, changed the configuration or ACL users, moved slots). Main stops
// the idle ones when the tests are over.
var pool struct {
	sync.Mutex
	idle map[string][]*Cluster
}

// Main runs the tests and then stops the clusters kept for reuse, for a
// package's TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	pool.Lock()
	idle := pool.idle
	pool.idle = nil
	pool.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.Close()
		}
	}
	return code
}

// fromPool returns an idle cluster of the configuration, or starts one.
func fromPool(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	key := fmt.Sprintf("%d/%d/%#v", cfg.Primaries, cfg.Replicas, cfg.Node)
	pool.Lock()
	var c *Cluster
	if cs := pool.idle[key]; len(cs) > 0 {
		c, pool.idle[key] = cs[len(cs)-1], cs[:len(cs)-1]
	}
	pool.Unlock()
	if c == nil {
		var err error
		if c, err = LaunchCluster(cfg); err != nil {
			t.Fatalf("%v", err)
		}
		c.key = key
	}
	c.t, c.stand = t, nil
	t.Cleanup(c.release)
	return c
}

// release empties a pooled cluster and keeps it for the next test, or
// closes it if it cannot be reused.
func (c *Cluster) release() {
	if !c.dirty.Load() {
		for _, n := range c.nodes {
			if !n.running() {
				c.dirty.Store(true)
				break
			}
			// Data, scripts and clients of the test that used it.
			if r, _ := n.Do("ROLE"); strings.HasPrefix(r, "master") {
				if _, err := n.Do("FLUSHALL", "SYNC"); err != nil {
					c.dirty.Store(true)
				}
			}
			n.Do("SCRIPT", "FLUSH", "SYNC")
		}
	}
	if c.dirty.Load() || c.waitHealthy() != nil {
		c.Close()
		return
	}
	pool.Lock()
	defer pool.Unlock()
	if pool.idle == nil {
		pool.idle = map[string][]*Cluster{}
	}
	pool.idle[c.key] = append(pool.idle[c.key], c)
}

// Close stops every node and removes their directories.
func (c *Cluster) Close() {
	c.each(func(n *Server) { n.Close() })
}

// each runs f on every node, concurrently.
func (c *Cluster) each(f func(n *Server)) {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() { f(n) })
	}
	wg.Wait()
}

// fatalf fails the test, or panics in a launched cluster.
func (c *Cluster) fatalf(format string, args ...any) {
	if c.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	c.t.Helper()
	c.t.Fatalf(format, args...)
}

// Stand returns a Server that stands for the whole cluster (see Start).
func (c *Cluster) Stand() *Server {
	if c.stand == nil {
		c.stand = &Server{t: c.t, cl: c, cfg: c.nodes[0].cfg}
	}
	return c.stand
}

// Nodes returns every node, primaries and replicas, in start order.
func (c *Cluster) Nodes() []*Server { return slices.Clone(c.nodes) }

// URL is a redis:// URL naming every node as a seed address, in the form
// rueidis.ParseURL takes (redis://host:port?addr=host:port&addr=...).
func (c *Cluster) URL() string {
	ps := c.nodes
	u := url.URL{Scheme: "redis", Host: ps[0].Addr()}
	q := url.Values{}
	for _, n := range ps[1:] {
		q.Add("addr", n.Addr())
	}
	u.RawQuery = q.Encode()
	if c.nodes[0].cfg.RequirePass != "" {
		u.User = url.UserPassword("", c.nodes[0].cfg.RequirePass)
	}
	return u.String()
}

// node is one line of CLUSTER NODES.
type node struct {
	srv     *Server
	id      string
	primary bool
	failed  bool
	of      string // the ID of its primary, for a replica
	myself  bool   // the node that answered
	epoch   string // its config epoch
	slots   [][2]int
}

// topology returns the cluster as the first live node sees it.
func (c *Cluster) topology() ([]node, error) {
	var last error
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		out, err := n.Do("CLUSTER", "NODES")
		if err != nil {
			last = err
			continue
		}
		return c.parseNodes(out)
	}
	if last == nil {
		last = errors.New("no node is running")
	}
	return nil, last
}

func (c *Cluster) parseNodes(out string) ([]node, error) {
	var nodes []node
	for line := range strings.Lines(strings.TrimSpace(out)) {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("unexpected CLUSTER NODES line %q", line)
		}
		nd := node{id: f[0], of: f[3], epoch: f[6]}
		addr, _, _ := strings.Cut(f[1], "@")
		for _, s := range c.nodes {
			if s.Addr() == addr {
				nd.srv = s
			}
		}
		for flag := range strings.SplitSeq(f[2], ",") {
			switch flag {
			case "master":
				nd.primary = true
			case "myself":
				nd.myself = true
			case "fail", "fail?", "noaddr":
				nd.failed = true
			}
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("unexpected slot range %q", r)
			}
			nd.slots = append(nd.slots, [2]int{a, b})
		}
		nodes = append(nodes, nd)
	}
	return nodes, nil
}

// Primaries returns the nodes that serve slots now, in slot order.
func (c *Cluster) Primaries() []*Server {
	ps := c.primaries()
	if len(ps) == 0 {
		c.fatalf("redistest: the cluster has no live primary")
	}
	return ps
}

func (c *Cluster) primaries() []*Server {
	nodes, err := c.topology()
	if err != nil {
		return c.nodes[:1]
	}
	var ps []*Server
	slices.SortFunc(nodes, func(a, b node) int {
		return cmpSlots(a.slots, b.slots)
	})
	for _, nd := range nodes {
		if nd.primary && !nd.failed && len(nd.slots) > 0 && nd.srv != nil && nd.srv.running() {
			ps = append(ps, nd.srv)
		}
	}
	if len(ps) == 0 {
		return c.nodes[:1]
	}
	return ps
}

func cmpSlots(a, b [][2]int) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	return a[0][0] - b[0][0]
}

// Owner returns the primary that serves slot.
func (c *Cluster) Owner(slot uint16) *Server {
	nodes, err := c.topology()
	if err != nil {
		c.fatalf("redistest: %v", err)
	}
	for _, nd := range nodes {
		if nd.srv != nil && nd.serves(int(slot)) {
			return nd.srv
		}
	}
	c.fatalf("redistest: no node serves slot %d", slot)
	return nil
}

// claimant returns the primary that says it serves slot itself: the
// owner by its own word, which the other nodes may not have heard yet
// (a slot just moved).
func (c *Cluster) claimant(slot uint16) (*Server, error) {
	for _, n := range c.primaries() {
		nodes, err := c.viewOf(n)
		if err != nil {
			return nil, err
		}
		for _, nd := range nodes {
			if nd.myself && nd.serves(int(slot)) {
				return n, nil
			}
		}
	}
	// Redis can lose a claim to a slot moved often (a node gives it up on
	// an old claim's word while the others still see it there): give the
	// slot back to the node the others see serving it.
	if ps := c.primaries(); len(ps) > 0 {
		if owner, err := c.ownerSeenBy(ps[0], int(slot)); err == nil && owner != nil {
			if _, err := owner.Do("CLUSTER", "SETSLOT", strconv.Itoa(int(slot)), "NODE", c.id(owner)); err == nil {
				if err := c.waitFor(func() error { return c.settled(int(slot), owner) }); err == nil {
					return owner, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("redistest: no primary says it serves slot %d", slot)
}

// viewOf returns the cluster as n sees it.
func (c *Cluster) viewOf(n *Server) ([]node, error) {
	out, err := n.Do("CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	return c.parseNodes(out)
}

// serves reports whether the node is a primary serving slot.
func (nd node) serves(slot int) bool {
	for _, r := range nd.slots {
		if nd.primary && slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// ownerSeenBy returns the primary n sees serving slot, nil for none.
func (c *Cluster) ownerSeenBy(n *Server, slot int) (*Server, error) {
	nodes, err := c.viewOf(n)
	if err != nil {
		return nil, err
	}
	for _, nd := range nodes {
		if nd.serves(slot) {
			return nd.srv, nil
		}
	}
	return nil, nil
}

// ReplicasOf returns the replicas of primary.
func (c *Cluster) ReplicasOf(primary *Server) []*Server {
	nodes, err := c.topology()
	if err != nil {
		c.fatalf("redistest: %v", err)
	}
	id := c.id(primary)
	var rs []*Server
	for _, nd := range nodes {
		if !nd.primary && nd.of == id && nd.srv != nil {
			rs = append(rs, nd.srv)
		}
	}
	return rs
}

func (c *Cluster) id(s *Server) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[s]
}

// Restart starts every node that is not running and waits for the cluster
// to be healthy again. Nodes keep their identity and slots (nodes.conf);
// data only with Config.AOF.
func (c *Cluster) Restart() {
	c.dirty.Store(true)
	c.each(func(n *Server) {
		if !n.running() {
			n.Restart()
		}
	})
	if err := c.waitHealthy(); err != nil {
		c.fatalf("redistest: the cluster did not heal after a restart: %v", err)
	}
}

// Kill kills one node with SIGKILL.
func (c *Cluster) Kill(n *Server) {
	c.dirty.Store(true)
	n.Kill()
}

// WaitHealthy waits until every live node sees every slot served and every
// live replica has synced, and calls t.Fatalf if that takes longer than
// 30 seconds. After a primary was killed this waits for its failover.
func (c *Cluster) WaitHealthy() {
	if err := c.waitHealthy(); err != nil {
		c.fatalf("redistest: %v", err)
	}
}

func (c *Cluster) waitHealthy() error {
	return c.waitFor(func() error {
		var view string
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			info, err := n.Do("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return fmt.Errorf("%s: %s", n.Addr(), oneLine(info))
			}
			repl, err := n.Do("INFO", "replication")
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("replica %s has not synced", n.Addr())
			}
			out, err := n.Do("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			nodes, err := c.parseNodes(out)
			if err != nil {
				return err
			}
			// Every node must agree on who serves what, and no live node
			// may be seen as failed.
			var owners []string
			for _, nd := range nodes {
				if nd.failed && nd.srv != nil && nd.srv.running() {
					return fmt.Errorf("%s sees %s as failed", n.Addr(), nd.srv.Addr())
				}
				if nd.primary && len(nd.slots) > 0 {
					owners = append(owners, fmt.Sprint(nd.id, nd.slots))
				}
			}
			slices.Sort(owners)
			v := strings.Join(owners, ";")
			if view != "" && v != view {
				return fmt.Errorf("nodes disagree on the slots")
			}
			view = v
		}
		if view == "" {
			return errors.New("no node is running")
		}
		return nil
	})
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// waitFor polls cond until it returns nil or clusterTimeout passes.
func (c *Cluster) waitFor(cond func() error) error {
	deadline := time.Now().Add(clusterTimeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", clusterTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Do sends a command to the node serving its first key, following MOVED
// and ASK, or, for a keyless command, to every live primary (CONFIG and
// ACL: to every live node), joining their replies by newlines (summing
// DBSIZE).
func (c *Cluster) Do(args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("redistest: no command")
	}
	switch up := strings.ToUpper(args[0]); up {
	case "CONFIG", "ACL", "CLUSTER", "SHUTDOWN", "FAILOVER", "REPLICAOF", "SLAVEOF", "MODULE":
		c.dirty.Store(true)
	case "DEBUG":
		if len(args) < 2 || !strings.EqualFold(args[1], "DIGEST") {
			c.dirty.Store(true)
		}
	}
	key, ok, err := c.firstKey(args)
	if err != nil {
		return "", err
	}
	if !ok {
		return c.broadcast(args)
	}
	target := c.Owner(keyslot.Slot(key))
	asking := false
	for range 5 {
		v, err := target.doOnce(asking, args...)
		if err != nil {
			return "", err
		}
		if e, ok := v.(redisError); ok {
			f := strings.Fields(string(e))
			if len(f) == 3 && (f[0] == "MOVED" || f[0] == "ASK") {
				if target = c.byAddr(f[2]); target == nil {
					return "", fmt.Errorf("redistest: %s to an unknown node", e)
				}
				asking = f[0] == "ASK"
				continue
			}
		}
		return render(v)
	}
	return "", fmt.Errorf("redistest: %s: too many redirections", args[0])
}

func (c *Cluster) byAddr(addr string) *Server {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// firstKey returns the first key of a command, as the server finds it.
func (c *Cluster) firstKey(args []string) (string, bool, error) {
	switch strings.ToUpper(args[0]) {
	case "KEYS", "SCAN", "DBSIZE", "FLUSHALL", "FLUSHDB", "INFO", "CONFIG", "ACL", "DEBUG", "PING", "SCRIPT", "FUNCTION", "CLIENT", "MEMORY", "CLUSTER", "WAIT":
		return "", false, nil
	}
	for _, n := range c.primaries() {
		v, err := n.doOnce(false, append([]string{"COMMAND", "GETKEYS"}, args...)...)
		if err != nil {
			continue
		}
		if arr, ok := v.([]any); ok && len(arr) > 0 {
			k, _ := arr[0].(string)
			return k, true, nil
		}
		return "", false, nil // no key arguments (an error reply says so)
	}
	return "", false, errors.New("redistest: no node answers")
}

func (c *Cluster) broadcast(args []string) (string, error) {
	targets := c.primaries()
	switch strings.ToUpper(args[0]) {
	case "CONFIG", "ACL":
		targets = nil
		for _, n := range c.nodes {
			if n.running() {
				targets = append(targets, n)
			}
		}
	}
	var parts []string
	sum, summing := 0, strings.EqualFold(args[0], "DBSIZE")
	for _, n := range targets {
		out, err := n.Do(args...)
		if err != nil {
			return "", fmt.Errorf("%s: %w", n.Addr(), err)
		}
		if summing {
			v, _ := strconv.Atoi(out)
			sum += v
			continue
		}
		if out != "" {
			parts = append(parts, out)
		}
	}
	if summing {
		return strconv.Itoa(sum), nil
	}
	if up := strings.ToUpper(args[0]); up == "CONFIG" && len(args) > 1 && strings.EqualFold(args[1], "SET") || up == "ACL" && len(args) > 1 && strings.EqualFold(args[1], "SETUSER") {
		return "OK", nil
	}
	return strings.Join(parts, "\n"), nil
}

// Keys returns, sorted, every key matching pattern on every live primary.
func (c *Cluster) Keys(pattern string) []string {
	var keys []string
	for _, n := range c.primaries() {
		keys = append(keys, n.Keys(pattern)...)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// KeysPerPrimary returns how many keys matching pattern each live primary
// holds, and the bytes of their values (STRLEN of string keys).
func (c *Cluster) KeysPerPrimary(pattern string) map[*Server][2]int64 {
	out := map[*Server][2]int64{}
	for _, n := range c.primaries() {
		var count, bytes int64
		for _, k := range n.Keys(pattern) {
			count++
			if t, _ := n.Do("TYPE", k); t == "string" {
				l, _ := n.Do("STRLEN", k)
				v, _ := strconv.ParseInt(l, 10, 64)
				bytes += v
			}
		}
		out[n] = [2]int64{count, bytes}
	}
	return out
}

// MigrateSlot moves slot to the primary to, key by key, pausing between
// keys, the way redis-cli --cluster reshard does: clients meanwhile get
// ASK for keys already moved and MOVED once the slot is handed over.
func (c *Cluster) MigrateSlot(slot uint16, to *Server, pause time.Duration) error {
	m, err := c.StartMigration(slot, to)
	if err != nil || m == nil {
		return err
	}
	for {
		more, err := m.Step()
		if err != nil {
			return err
		}
		if !more {
			return m.Finish()
		}
		time.Sleep(pause)
	}
}

// A Migration is a slot on the move between two primaries.
type Migration struct {
	c        *Cluster
	slot     string
	from, to *Server
}

// StartMigration marks slot IMPORTING on to and MIGRATING on its owner,
// and moves no key yet. It returns nil if to already owns the slot.
func (c *Cluster) StartMigration(slot uint16, to *Server) (*Migration, error) {
	c.dirty.Store(true)
	from, err := c.claimant(slot)
	if err != nil {
		return nil, err
	}
	if from == to {
		return nil, nil
	}
	m := &Migration{c: c, slot: strconv.Itoa(int(slot)), from: from, to: to}
	if _, err := to.Do("CLUSTER", "SETSLOT", m.slot, "IMPORTING", c.id(from)); err != nil {
		return nil, err
	}
	if _, err := from.Do("CLUSTER", "SETSLOT", m.slot, "MIGRATING", c.id(to)); err != nil {
		return nil, err
	}
	return m, nil
}

// Step moves one key of the slot and reports whether keys remain.
func (m *Migration) Step() (bool, error) {
	keys, err := m.from.Do("CLUSTER", "GETKEYSINSLOT", m.slot, "1")
	if err != nil || keys == "" {
		return false, err
	}
	args := []string{"MIGRATE", "127.0.0.1", strconv.Itoa(m.to.port), "", "0", "10000"}
	if pw := m.to.cfg.RequirePass; pw != "" {
		args = append(args, "AUTH", pw)
	}
	args = append(args, "KEYS")
	args = append(args, strings.Split(keys, "\n")...)
	if _, err := m.from.Do(args...); err != nil {
		return false, fmt.Errorf("MIGRATE: %w", err)
	}
	return true, nil
}

// Finish moves the keys left and hands the slot to its new owner.
func (m *Migration) Finish() error {
	for {
		more, err := m.Step()
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	for _, n := range []*Server{m.to, m.from} {
		if _, err := n.Do("CLUSTER", "SETSLOT", m.slot, "NODE", m.c.id(m.to)); err != nil {
			return err
		}
	}
	for _, n := range m.c.primaries() {
		if n != m.to && n != m.from {
			n.Do("CLUSTER", "SETSLOT", m.slot, "NODE", m.c.id(m.to)) // best effort: gossip spreads it too
		}
	}
	// The new owner took a config epoch of its own without asking the
	// others; the next migration's owner would take one too, and if it has
	// not heard of this one yet, the same: with two primaries on one
	// epoch, Redis may hand a slot back to a node that no longer holds its
	// keys. So wait until every primary sees the slot on its new owner and
	// the same epoch for every node, as moves made by hand, seconds apart,
	// would find it.
	slot, _ := strconv.Atoi(m.slot)
	return m.c.waitFor(func() error { return m.c.settled(slot, m.to) })
}

// settled reports, as an error, how the primaries' views differ: on the
// owner of slot (which must be owner) or on any node's config epoch.
func (c *Cluster) settled(slot int, owner *Server) error {
	var first map[string]string
	for _, n := range c.primaries() {
		nodes, err := c.viewOf(n)
		if err != nil {
			return err
		}
		epochs := map[string]string{}
		var seen *Server
		for _, nd := range nodes {
			epochs[nd.id] = nd.epoch
			if nd.serves(slot) {
				seen = nd.srv
			}
		}
		if seen != owner {
			return fmt.Errorf("%s does not see slot %d on %s yet", n.Addr(), slot, owner.Addr())
		}
		if first == nil {
			first = epochs
		} else if !maps.Equal(first, epochs) {
			return fmt.Errorf("the primaries disagree on config epochs: %v, %v", first, epochs)
		}
	}
	return nil
}

// running reports whether the server process is up.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// doOnce sends one command on a new connection, after ASKING if asking,
// and returns the raw reply (an error reply as a redisError value).
func (s *Server) doOnce(asking bool, args ...string) (any, error) {
	c, err := s.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if asking {
		if _, err := c.do("ASKING"); err != nil {
			return nil, err
		}
	}
	return c.do(args...)
}

// Port returns the server's TCP port (0 without TCP).
func (s *Server) Port() int { return s.port }

// HostPort is "127.0.0.1:port" of the server's TCP port.
func (s *Server) HostPort() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Describe returns how every live node sees the cluster (CLUSTER NODES),
// for a failed test's log.
func (c *Cluster) Describe() string {
	var b strings.Builder
	for _, n := range c.nodes {
		if !n.running() {
			fmt.Fprintf(&b, "%s: not running\n", n.Addr())
			continue
		}
		out, err := n.Do("CLUSTER", "NODES")
		if err != nil {
			out = err.Error()
		}
		fmt.Fprintf(&b, "%s sees:\n%s\n", n.Addr(), out)
	}
	return b.String()
}
