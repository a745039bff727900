package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Beyond one Redis: reads from replicas, writes that wait for replicas,
// and what the client is connected to.

// readReplicas opens the client that reads chunks from replicas.
func (c *Client) readReplicas(opt rueidis.ClientOption) error {
	switch c.rc.Mode() {
	case rueidis.ClientModeCluster, rueidis.ClientModeSentinel:
	default:
		return fmt.Errorf("%w: reading from replicas needs a Redis Cluster or a Sentinel URL (?master_set=NAME); %s is a standalone server", ErrBadConfig, c.addr)
	}
	// Only chunk values (GET) go to replicas: everything else a reader
	// does follows state that must be current.
	opt.SendToReplicas = func(cmd rueidis.Completed) bool {
		cs := cmd.Commands()
		return len(cs) == 2 && cs[0] == "GET"
	}
	opt.PipelineMultiplex = 0
	if c.rc.Mode() == rueidis.ClientModeCluster {
		// rueidis keeps the connection it opened to a seed address, and a
		// seed that is a replica was opened as to a primary (without
		// READONLY): its reads would be redirected to the primary. Seed
		// with the primaries only.
		t, err := c.nodes(context.Background())
		if err != nil {
			return err
		}
		opt.InitAddress = t.primaries
		// A replica is listed (CLUSTER SLOTS) only once it holds data, and
		// failovers move them: look again now and then.
		opt.ClusterOption.ShardsRefreshInterval = replicaRefresh
	}
	r, err := rueidis.NewClient(opt)
	if err != nil {
		return fmt.Errorf("connect to the replicas of %s: %w", c.addr, err)
	}
	c.replica = r
	return nil
}

// replicaRefresh is how often the replica reader looks for replicas.
const replicaRefresh = 10 * time.Second

// syncTimeout is how long one WAIT waits for replicas.
const syncTimeout = time.Second

// synced runs write (a write to key's slot; nil for none) and then WAIT,
// on one connection, until Config.Replicas replicas have every write the
// node had made by then, retrying for up to RetryFor. Once write has
// succeeded, or without one, a short-lived key of key's slot is written
// in its place, so that WAIT follows this connection's latest write
// whatever came before it.
func (c *Client) synced(ctx context.Context, rc rueidis.Client, what, key string, write func() rueidis.Completed) error {
	wrote := write == nil
	var acked int64
	err := c.retry(ctx, what, func(ctx context.Context) error {
		var cmd rueidis.Completed
		if wrote {
			cmd = rc.B().Set().Key(syncKey(key)).Value("1").Px(time.Millisecond).Build()
		} else {
			cmd = write() // rueidis recycles commands it has sent: build it anew
		}
		rs := rc.DoMulti(ctx, cmd, rc.B().Wait().Numreplicas(int64(c.replicas)).Timeout(syncTimeout.Milliseconds()).Build())
		if err := rs[0].Error(); err != nil {
			return err
		}
		wrote = true
		n, err := rs[1].AsInt64()
		if err != nil {
			return err
		}
		if acked = n; n < int64(c.replicas) {
			return errTooFewReplicas
		}
		return nil
	})
	if errors.Is(err, errTooFewReplicas) {
		return fmt.Errorf("%s: %w: %d of %d replicas confirmed the write within %v; is a replica down or far behind? (or wait for fewer)",
			what, ErrUnavailable, acked, c.replicas, c.retryFor)
	}
	return err
}

// errTooFewReplicas is transient: classify retries it.
var errTooFewReplicas = errors.New("too few replicas confirmed the write")

// syncKey is a key in the slot of key, written (with a 1 ms expiry) so
// that a WAIT follows it.
func syncKey(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i:], '}'); j > 1 {
			return key[:i+j+1] + ":sync"
		}
	}
	return key + ":sync"
}

// syncing lists the scripts whose writes Config.Replicas waits for.
var syncing = map[*script]bool{
	luaBegin: true, luaPut: true, luaCommit: true, luaComplete: true, luaAck: true, luaAbort: true, luaResume: true,
}

// syncAfter waits, with Config.Replicas, for the writes of script s.
func (ch Channel) syncAfter(ctx context.Context, s *script) error {
	if ch.c.replicas == 0 || !syncing[s] {
		return nil
	}
	return ch.c.synced(ctx, ch.c.rc, "wait for replicas", ch.k.Files(), nil)
}

// Topology describes what a client is connected to.
type Topology struct {
	Mode      string // "standalone", "cluster" or "sentinel"
	Primaries int    // primaries serving data (1 unless a cluster)
	Replicas  int    // their replicas, in all
	Server    string // server name and version, from the first node
}

func (t Topology) String() string {
	s := t.Mode
	switch t.Mode {
	case "cluster":
		s = fmt.Sprintf("Redis Cluster of %d primaries and %d replicas", t.Primaries, t.Replicas)
	case "sentinel":
		s = fmt.Sprintf("primary found by Sentinel, with %d replicas", t.Replicas)
	default:
		s = "standalone server"
		if t.Replicas > 0 {
			s = fmt.Sprintf("standalone server with %d replicas", t.Replicas)
		}
	}
	if t.Server != "" {
		s += " (" + t.Server + ")"
	}
	return s
}

// Topology returns what the client is connected to.
func (c *Client) Topology(ctx context.Context) (Topology, error) {
	var t Topology
	switch c.rc.Mode() {
	case rueidis.ClientModeCluster:
		t.Mode = "cluster"
		n, err := c.nodes(ctx)
		if err != nil {
			return t, err
		}
		t.Primaries, t.Replicas = len(n.primaries), len(n.replicas)
	case rueidis.ClientModeSentinel:
		t.Mode, t.Primaries = "sentinel", 1
	default:
		t.Mode, t.Primaries = "standalone", 1
	}
	var info string
	err := c.retry(ctx, "read server info", func(ctx context.Context) (err error) {
		info, err = c.rc.Do(ctx, c.rc.B().Info().Section("server").Section("replication").Build()).ToString()
		return err
	})
	if err != nil {
		return t, err
	}
	name, version := "redis", ""
	for line := range strings.Lines(info) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "server_name":
			name = v
		case "redis_version":
			if version == "" {
				version = v
			}
		case "valkey_version":
			version = v
		case "connected_slaves":
			if t.Mode != "cluster" {
				t.Replicas, _ = strconv.Atoi(v)
			}
		}
	}
	if version != "" {
		t.Server = name + " " + version
	}
	return t, nil
}

// clusterNodes are the addresses of a cluster's nodes.
type clusterNodes struct{ primaries, replicas []string }

// nodes reads the nodes of the cluster from CLUSTER SLOTS.
func (c *Client) nodes(ctx context.Context) (clusterNodes, error) {
	var slots []rueidis.RedisMessage
	err := c.retry(ctx, "read the cluster's slots", func(ctx context.Context) (err error) {
		slots, err = c.rc.Do(ctx, c.rc.B().ClusterSlots().Build()).ToArray()
		return err
	})
	var n clusterNodes
	if err != nil {
		return n, err
	}
	seen := map[string]bool{}
	for _, r := range slots {
		nodes, _ := r.ToArray()
		for i := 2; i < len(nodes); i++ {
			f, _ := nodes[i].ToArray()
			if len(f) < 2 {
				continue
			}
			host, _ := f[0].ToString()
			port, _ := f[1].AsInt64()
			addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
			if seen[addr] {
				continue
			}
			seen[addr] = true
			if i == 2 {
				n.primaries = append(n.primaries, addr)
			} else {
				n.replicas = append(n.replicas, addr)
			}
		}
	}
	return n, nil
}
