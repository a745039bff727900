package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/keyslot"
	"github.com/filecast/filecast/internal/redistest"
)

// Faults of a Redis Cluster. The receiver and sender kills of chaos_test.go
// run on a cluster too: make chaos runs them again with
// FILECAST_TEST_CLUSTER=3.

// chaosClusterTrials is how many trials the cluster scenarios run: a
// quarter of FILECAST_CHAOS_TRIALS (each waits for a failover or moves
// slots key by key), at least short.
func chaosClusterTrials(t *testing.T, short int) int {
	return max(short, chaosTrials(t, short)/4)
}

// clusterTrials starts one cluster of cfg and runs trial on it as
// subtests, each with its own channel (prefix + trial number) and the
// binary pointed at the cluster (its srv stands in for the whole cluster
// in the checks).
func clusterTrials(t *testing.T, cfg redistest.ClusterConfig, prefix string, trial func(t *testing.T, cl *redistest.Cluster, c *cli, ch string, rng *rand.Rand)) {
	t.Parallel()
	cl := redistest.StartCluster(t, cfg)
	rng := chaosRand(t)
	for i := range chaosClusterTrials(t, 1) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			trial(t, cl, &cli{t: t, srv: cl.Stand(), url: cl.URL()}, fmt.Sprintf("%s%d", prefix, i), rng)
		})
	}
}

// A primary of a 3 × (primary + 2 replicas) cluster SIGKILLed at a random
// moment of a directory transfer; a replica takes over. Sender and receiver
// run with --replicas 1 (one replica is left after the failover) and must
// finish by themselves: every file whole, once (one redelivery per failover
// allowed), nothing left in Redis. The killed node is started again only
// after the transfer: restarted without persistence, it believes for a
// moment that it still serves its slots, empty (one trial read a chunk
// there and failed its check), which Redis advises against in production.
func TestChaosClusterPrimaryKilled(t *testing.T) {
	clusterTrials(t, redistest.ClusterConfig{Primaries: 3, Replicas: 2}, "pk", func(t *testing.T, cl *redistest.Cluster, c *cli, ch string, rng *rand.Rand) {
		src, files := chaosFiles(t, rng, 12)
		joinGroups(t, c.url, ch, "g")
		out := filepath.Join(t.TempDir(), "out")
		recv := c.start("recv", ch, "--group", "g", "--dir", out, "--until-eof", "--json", "--lease", "2s", "--replicas", "1")
		send := c.start("send", ch, src, "--eof", "--max-bytes", "2MiB", "--lease", "2s", "--replicas", "1")
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		ps := cl.Primaries()
		victim := ps[rng.IntN(len(ps))]
		killed := time.Now()
		cl.Kill(victim)
		cl.WaitHealthy() // the failover
		t.Logf("failover of %s took %v", victim.Addr(), time.Since(killed).Round(time.Millisecond))
		expectOK(t, send.wait())
		receiverDelivered(t, c, ch, out, files, recv, 1)
		cl.Restart() // back as a replica, for the next trial
	})
}

// The slots of a transfer's keys move between the primaries of a cluster,
// key by key, while sender and receiver run: chunk slots the sender is
// writing and the receiver reading (ASK, then MOVED, mid-read), and the
// channel's own slot (its scripts wait for it to settle).
func TestChaosClusterSlotsMigrated(t *testing.T) {
	clusterTrials(t, redistest.ClusterConfig{Primaries: 3}, "sm", func(t *testing.T, cl *redistest.Cluster, c *cli, ch string, rng *rand.Rand) {
		src, files := chaosFiles(t, rng, 12)
		out, recv := dirReceiver(t, c, ch)
		send := c.start("send", ch, src, "--eof", "--max-bytes", "2MiB", "--lease", "2s", "--chunk-size", "64KiB")
		moved := 0
		for moved < 200 && (!send.exited() || (!recv.exited() && moved < 4)) {
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			var slot uint16
			if keys := c.srv.Keys("fc:{*}:c:" + ch + ":*"); len(keys) > 0 && rng.IntN(4) != 0 {
				slot = keyslot.Slot(keys[rng.IntN(len(keys))])
			} else {
				slot = keyslot.Slot("fc:{" + ch + "}:files")
			}
			ps := cl.Primaries()
			to := ps[rng.IntN(len(ps))]
			if err := cl.MigrateSlot(slot, to, time.Duration(rng.IntN(5))*time.Millisecond); err != nil {
				t.Fatalf("moving slot %d: %v\n%s", slot, err, cl.Describe())
			}
			moved++
		}
		t.Logf("%d slots moved", moved)
		expectOK(t, send.wait())
		receiverDelivered(t, c, ch, out, files, recv, 0)
	})
}
