package redistest

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SentinelMaster is the name the Sentinels of a SentinelSet watch their
// primary under.
const SentinelMaster = "fcmaster"

// SentinelConfig configures the servers started by StartSentinel.
type SentinelConfig struct {
	Replicas  int    // replicas of the primary (default 2)
	Sentinels int    // Sentinels watching it (default 3; quorum is a majority)
	Node      Config // the configuration of the primary and its replicas
}

// SentinelSet is a private primary with replicas, watched by Sentinels
// that fail it over when it stops answering for a second.
type SentinelSet struct {
	t         testing.TB
	nodes     []*Server // the data nodes: the first primary, then replicas
	sentinels []*Server
}

// StartSentinel starts a primary, its replicas and the Sentinels for the
// test, and returns once every replica has synced and every Sentinel
// knows every replica and every other Sentinel (so that a failover can be
// agreed). It calls t.Fatalf if it cannot.
func StartSentinel(t testing.TB, cfg SentinelConfig) *SentinelSet {
	t.Helper()
	if cfg.Replicas <= 0 {
		cfg.Replicas = 2
	}
	if cfg.Sentinels <= 0 {
		cfg.Sentinels = 3
	}
	s := &SentinelSet{t: t}
	t.Cleanup(s.Close)
	node := cfg.Node
	node.TCP = true
	primary, err := Launch(node)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.nodes = append(s.nodes, primary)
	for range cfg.Replicas {
		rc := node
		rc.Extra = append(append([]string{}, node.Extra...), fmt.Sprintf("replicaof 127.0.0.1 %d", primary.port))
		if node.RequirePass != "" {
			rc.Extra = append(rc.Extra, "masterauth "+strconv.Quote(node.RequirePass))
		}
		r, err := Launch(rc)
		if err != nil {
			t.Fatalf("%v", err)
		}
		s.nodes = append(s.nodes, r)
	}
	quorum := cfg.Sentinels/2 + 1
	for range cfg.Sentinels {
		lines := []string{
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", SentinelMaster, primary.port, quorum),
			fmt.Sprintf("sentinel down-after-milliseconds %s 1000", SentinelMaster),
			fmt.Sprintf("sentinel failover-timeout %s 5000", SentinelMaster),
			fmt.Sprintf("sentinel parallel-syncs %s %d", SentinelMaster, cfg.Replicas),
		}
		if node.RequirePass != "" {
			lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", SentinelMaster, strconv.Quote(node.RequirePass)))
		}
		sn, err := Launch(Config{Sentinel: lines})
		if err != nil {
			t.Fatalf("%v", err)
		}
		s.sentinels = append(s.sentinels, sn)
	}
	if err := s.waitReady(cfg.Replicas, cfg.Sentinels-1); err != nil {
		t.Fatalf("redistest: the Sentinel set did not come up: %v", err)
	}
	return s
}

// Close stops every server.
func (s *SentinelSet) Close() {
	for _, n := range append(s.sentinels, s.nodes...) {
		n.Close()
	}
}

// URL is the rueidis form of a Sentinel URL: every Sentinel, and the name
// of the primary they watch.
func (s *SentinelSet) URL() string {
	u := url.URL{Scheme: "redis", Host: s.sentinels[0].Addr()}
	q := url.Values{}
	for _, n := range s.sentinels[1:] {
		q.Add("addr", n.Addr())
	}
	q.Set("master_set", SentinelMaster)
	u.RawQuery = q.Encode()
	if pw := s.nodes[0].cfg.RequirePass; pw != "" {
		u.User = url.UserPassword("", pw)
	}
	return u.String()
}

// Nodes returns the data nodes (not the Sentinels), the first primary first.
func (s *SentinelSet) Nodes() []*Server { return append([]*Server(nil), s.nodes...) }

// Sentinels returns the Sentinels.
func (s *SentinelSet) Sentinels() []*Server { return append([]*Server(nil), s.sentinels...) }

// Primary returns the node the Sentinels name as the primary now.
func (s *SentinelSet) Primary() *Server {
	p, err := s.primary()
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	return p
}

func (s *SentinelSet) primary() (*Server, error) {
	var last error
	for _, sn := range s.sentinels {
		if !sn.running() {
			continue
		}
		out, err := sn.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		if err != nil {
			last = err
			continue
		}
		host, port, _ := strings.Cut(out, "\n")
		for _, n := range s.nodes {
			if n.Addr() == host+":"+port {
				return n, nil
			}
		}
		return nil, fmt.Errorf("the Sentinels name an unknown primary %s:%s", host, port)
	}
	if last == nil {
		last = errors.New("no Sentinel is running")
	}
	return nil, last
}

// WaitFailover waits until the Sentinels have promoted a node other than
// old, every live replica follows it and has synced, and returns it. It
// calls t.Fatalf after 30 seconds.
func (s *SentinelSet) WaitFailover(old *Server) *Server {
	var p *Server
	deadline := time.Now().Add(clusterTimeout)
	for {
		err := func() error {
			var err error
			if p, err = s.primary(); err != nil {
				return err
			}
			if p == old {
				return errors.New("not failed over yet")
			}
			if role, err := p.Do("ROLE"); err != nil || !strings.HasPrefix(role, "master") {
				return fmt.Errorf("the new primary %s is not one yet (%q, %v)", p.Addr(), role, err)
			}
			return s.synced(p)
		}()
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: no failover after %v: %v", clusterTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// synced checks that every live data node but p replicates p and is up to date.
func (s *SentinelSet) synced(p *Server) error {
	for _, n := range s.nodes {
		if n == p || !n.running() {
			continue
		}
		info, err := n.Do("INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(info, fmt.Sprintf("master_port:%d", p.port)) || !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s does not follow %s yet", n.Addr(), p.Addr())
		}
	}
	return nil
}

// waitReady waits until the replicas synced and each Sentinel knows them
// and the other Sentinels.
func (s *SentinelSet) waitReady(replicas, others int) error {
	deadline := time.Now().Add(clusterTimeout)
	for {
		err := s.synced(s.nodes[0])
		for _, sn := range s.sentinels {
			if err != nil {
				break
			}
			out, e := sn.Do("SENTINEL", "MASTER", SentinelMaster)
			if e != nil {
				err = e
				break
			}
			f := strings.Split(out, "\n")
			m := map[string]string{}
			for i := 0; i+1 < len(f); i += 2 {
				m[f[i]] = f[i+1]
			}
			if m["num-slaves"] != strconv.Itoa(replicas) || m["num-other-sentinels"] != strconv.Itoa(others) {
				err = fmt.Errorf("Sentinel %s knows %s replicas and %s other Sentinels", sn.Addr(), m["num-slaves"], m["num-other-sentinels"])
			}
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
