package filecast_test

// Beyond one Redis: a channel on a real Redis Cluster (data spread over
// every primary, a slot moved mid-read, a primary killed mid-transfer),
// on a real Sentinel set (its primary killed), reads from replicas, and
// what a failover can lose without --replicas (docs/SCALING.md).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/keyslot"
	"github.com/filecast/filecast/internal/redistest"
	"github.com/filecast/filecast/internal/store"
)

// channelSlot is the cluster slot of a channel's state.
func channelSlot(channel string) uint16 { return keyslot.Slot(store.NewKeys("fc", channel).Files()) }

func TestClusterSpreadsAFileOverEveryPrimary(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3})
	c := dial(t, cl.URL(), filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "big", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(7, 256<<20)
	info := mustSend(t, c, "big", "release.tar", data, filecast.SendOptions{})

	// Every primary holds a third of the bytes, give or take 15 %.
	per := cl.KeysPerPrimary("fc:{*}:c:big:" + info.ID + ":*")
	if len(per) != 3 {
		t.Fatalf("chunks on %d primaries, want 3", len(per))
	}
	var total int64
	for n, kb := range per {
		share := float64(kb[1]) / float64(len(data))
		t.Logf("primary %s: %d chunks, %d bytes (%.1f %%)", n.Addr(), kb[0], kb[1], 100*share)
		if share < 0.85/3 || share > 1.15/3 {
			t.Errorf("primary %s holds %.1f %% of the file, want 33.3 ± 5 %%", n.Addr(), 100*share)
		}
		total += kb[1]
	}
	if total != int64(len(data)) {
		t.Errorf("chunks hold %d bytes in all, want %d", total, len(data))
	}
	// The channel's state stays in one slot, so every change is atomic.
	home := cl.Owner(channelSlot("big"))
	for _, n := range cl.Primaries() {
		if state := n.Keys("fc:{big}:*"); (n == home) != (len(state) > 0) {
			t.Errorf("primary %s holds %d keys of the channel's state; the state belongs on %s", n.Addr(), len(state), home.Addr())
		}
	}

	c.SendEOF(ctx, "big")
	col := newCollector()
	_, wait := receive(t, c, "big", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	got, _ := col.get("release.tar")
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
	expectNothingLeft(t, cl.Stand(), "big")
}

// expectNothingLeft checks that channel holds no file, chunk or journal
// entry, and that its budget holds no byte.
func expectNothingLeft(t *testing.T, srv *redistest.Server, channel string) {
	t.Helper()
	if left := leftovers(srv, channel); len(left) != 0 {
		t.Errorf("keys left: %q", left)
	}
	if b, _ := srv.Do("GET", "fc:{"+channel+"}:bytes"); b != "0" && b != "" {
		t.Errorf("budget holds %s bytes after every file was released, want 0", b)
	}
}

// gatedReader yields data, stopping at a byte offset until its gate opens;
// reached is closed when it gets there.
type gatedReader struct {
	data    []byte
	off, at int
	reached chan struct{}
	gate    chan struct{}
}

func newGatedReader(data []byte, at int) *gatedReader {
	return &gatedReader{data: data, at: at, reached: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off == g.at {
		close(g.reached)
		<-g.gate
		g.at = -1
	}
	if g.off == len(g.data) {
		return 0, io.EOF
	}
	end := len(g.data)
	if g.at > g.off {
		end = g.at
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	return n, nil
}

// failoverMidTransfer sends a file while kill takes a primary down, and
// checks that sender and receiver carry on by themselves and that the
// file arrives whole, with nothing left behind. With replicas, the kill
// comes while chunks are in flight and every write waits for that many
// replicas (Options.Replicas); without, it comes once the sender has
// paused and replication has caught up (an unreplicated write may be
// lost: see TestFailoverLosesUnreplicatedFilesUnlessReplicasConfirm).
func failoverMidTransfer(t *testing.T, url string, replicas int, primary *redistest.Server, kill func(), stand func() *redistest.Server) {
	opt := filecast.Options{ChunkSize: 64 << 10, Replicas: replicas, RetryFor: 45 * time.Second}
	sender, receiver := dial(t, url, opt), dial(t, url, opt)
	ctx := context.Background()
	if err := receiver.Join(ctx, "fo", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(11, 24<<20)
	src := newGatedReader(data, 8<<20)
	sent := make(chan error, 1)
	go func() {
		_, err := sender.Send(ctx, "fo", src, filecast.Meta{Name: "f"}, filecast.SendOptions{})
		if err == nil {
			err = sender.SendEOF(ctx, "fo")
		}
		sent <- err
	}()
	var mu sync.Mutex
	got := map[string][]byte{}
	_, wait := receive(t, receiver, "fo", func(ctx context.Context, f *filecast.File) error {
		b, err := io.ReadAll(f)
		mu.Lock()
		got[f.Name] = b
		mu.Unlock()
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})

	<-src.reached
	if replicas == 0 {
		time.Sleep(200 * time.Millisecond) // what is in flight lands
		primary.WaitReplicated()
	}
	start := time.Now()
	kill()
	close(src.gate)
	if err := <-sent; err != nil {
		t.Fatalf("Send across the failover: %v", err)
	}
	t.Logf("the sender finished %v after the primary was killed", time.Since(start).Round(time.Millisecond))
	if err := wait(); err != nil {
		t.Fatalf("Receive across the failover: %v", err)
	}
	if !bytes.Equal(got["f"], data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got["f"]), len(data))
	}
	expectNothingLeft(t, stand(), "fo")
}

func TestClusterPrimaryKilledMidTransfer(t *testing.T) {
	for _, tc := range []struct {
		victim   string
		replicas int
	}{
		{"the channel's primary", 0},
		{"the channel's primary", 1},
		{"a primary of chunks only", 1},
	} {
		t.Run(fmt.Sprintf("%s, Replicas %d", tc.victim, tc.replicas), func(t *testing.T) {
			// Waiting for one replica needs one left after the failover.
			cl := redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3, Replicas: 1 + tc.replicas})
			victim := cl.Owner(channelSlot("fo"))
			if tc.victim != "the channel's primary" {
				for _, p := range cl.Primaries() {
					if p != victim {
						victim = p
						break
					}
				}
			}
			failoverMidTransfer(t, cl.URL(), tc.replicas, victim, func() { cl.Kill(victim) }, cl.Stand)
		})
	}
}

// A Sentinel set of a primary and 2 replicas: the sender and the receiver
// ride out the failover by themselves. Durability across a failover
// (Replicas) is tested on a cluster: here, Replicas 1 of 2 lost commits in
// one run (Sentinel promoted the replica that had not confirmed), and
// Replicas 2 needs the killed primary back, which, restarted without
// persistence, served as an empty primary for a moment and lost the
// upload: Redis's own advice is not to restart such a primary by itself.
func TestSentinelPrimaryKilledMidTransfer(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelConfig{})
	old := s.Primary()
	failoverMidTransfer(t, s.URL(), 0, old, old.Kill, s.Primary)
}

// What a failover can lose. Replication is asynchronous: a primary
// acknowledges a write before its replicas have it. A replica that has
// fallen behind (here: frozen, and cut off) and is then promoted has never
// seen the last files sent. With Options.Replicas, Send does not report such a
// file sent: it waits for a replica to confirm, and fails if none does.
func TestFailoverLosesUnreplicatedFilesUnlessReplicasConfirm(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3, Replicas: 1})
	ctx := context.Background()
	home := cl.Owner(channelSlot("lost"))
	replica := cl.ReplicasOf(home)[0]
	fast := dial(t, cl.URL(), filecast.Options{RetryFor: 5 * time.Second})
	safe := dial(t, cl.URL(), filecast.Options{RetryFor: 3 * time.Second, Replicas: 1})
	if err := fast.Join(ctx, "lost", "g"); err != nil {
		t.Fatal(err)
	}
	home.WaitReplicated()

	// The replica freezes, and the primary drops it (as a network cut
	// would): what the primary acknowledges from now on, no replica has.
	replica.Pause()
	home.MustDo(t, "CLIENT", "KILL", "TYPE", "replica")
	info := mustSend(t, fast, "lost", "reported-sent", []byte("gone with the primary"), filecast.SendOptions{})
	_, err := safe.Send(ctx, "lost", strings.NewReader("never confirmed"), filecast.Meta{Name: "unconfirmed"}, filecast.SendOptions{})
	if !errors.Is(err, filecast.ErrUnavailable) || !strings.Contains(err.Error(), "replicas confirmed") {
		t.Errorf("Send with Replicas 1 and its replica frozen = %v, want ErrUnavailable saying how many replicas confirmed", err)
	}
	cl.Kill(home)
	replica.Resume()
	cl.WaitHealthy()

	stand := cl.Stand()
	if n, _ := stand.Do("EXISTS", "fc:{lost}:f:"+info.ID); n != "0" {
		t.Fatalf("the file reported sent survived the failover (EXISTS = %s): the test no longer shows the loss", n)
	}
	t.Logf("without Replicas, %q was reported sent (id %s) and lost in the failover", info.Name, info.ID)

	// With a replica back (the old primary, restarted, follows the new
	// one), a file Send with Replicas 1 reports sent survives a second
	// failover.
	cl.Restart()
	now := cl.Owner(channelSlot("lost"))
	if reps := cl.ReplicasOf(now); len(reps) != 1 {
		t.Fatalf("the promoted primary has %d replicas after the old one restarted, want 1", len(reps))
	}
	kept := mustSend(t, safe, "lost", "confirmed", []byte("kept"), filecast.SendOptions{})
	cl.Kill(now)
	cl.WaitHealthy()
	var got []byte
	_, wait := receive(t, fast, "lost", func(ctx context.Context, f *filecast.File) (err error) {
		if f.Name == "confirmed" {
			got, err = io.ReadAll(f)
		}
		return err
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := fast.SendEOF(ctx, "lost"); err != nil { // its primary has no replica left
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if string(got) != "kept" {
		t.Fatalf("the file sent with Replicas 1 (id %s) read %q after a second failover, want %q", kept.ID, got, "kept")
	}
}

func TestClusterSlotsMovedWhileReading(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3})
	c := dial(t, cl.URL(), filecast.Options{ChunkSize: 64 << 10})
	ctx := context.Background()
	if err := c.Join(ctx, "mig", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(12, 8<<20)
	info := mustSend(t, c, "mig", "f", data, filecast.SendOptions{})
	c.SendEOF(ctx, "mig")

	// The slots of chunks 20 to 80 move to another primary, key by key,
	// while a slow reader reads; then the channel's own slot does.
	keys := store.NewKeys("fc", "mig")
	var slots []uint16
	for seq := int64(20); seq <= 80; seq++ {
		slots = append(slots, keyslot.Slot(keys.Chunk2(info.ID, 0, seq)))
	}
	slots = append(slots, channelSlot("mig"))
	ps := cl.Primaries()
	moved := make(chan error, 1)
	go func() {
		for _, s := range slots {
			from := cl.Owner(s)
			to := ps[0]
			for i, p := range ps {
				if p == from {
					to = ps[(i+1)%len(ps)]
				}
			}
			if err := cl.MigrateSlot(s, to, 5*time.Millisecond); err != nil {
				moved <- err
				return
			}
		}
		moved <- nil
	}()
	var got []byte
	_, wait := receive(t, c, "mig", func(ctx context.Context, f *filecast.File) error {
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			time.Sleep(2 * time.Millisecond)
		}
	}, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("Receive while slots moved: %v", err)
	}
	if err := <-moved; err != nil {
		t.Fatalf("moving slots: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
	expectNothingLeft(t, cl.Stand(), "mig")
}

func TestReadReplicas(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3, Replicas: 1})
	sender := dial(t, cl.URL(), filecast.Options{ChunkSize: 64 << 10, Replicas: 1})
	ctx := context.Background()
	if err := sender.Join(ctx, "rr", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(13, 4<<20)
	mustSend(t, sender, "rr", "f", data, filecast.SendOptions{})
	sender.SendEOF(ctx, "rr")
	waitReplicasListed(t, cl, 6)
	reader := dial(t, cl.URL(), filecast.Options{ChunkSize: 64 << 10, ReadReplicas: true})
	for _, n := range cl.Nodes() {
		n.MustDo(t, "CONFIG", "RESETSTAT")
	}
	col := newCollector()
	_, wait := receive(t, reader, "rr", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	got, _ := col.get("f")
	if !bytes.Equal(got, data) {
		t.Fatal("file differs")
	}
	fromReplicas, fromPrimaries := getsByRole(t, cl)
	t.Logf("GETs: %d on replicas, %d on primaries", fromReplicas, fromPrimaries)
	if fromReplicas < 64 {
		t.Errorf("replicas served %d GETs, want every chunk's (64)", fromReplicas)
	}
}

// gets returns how many GETs a server has run since its stats were reset.
// getsByRole returns how many GETs the replicas and the primaries of cl
// served since their last CONFIG RESETSTAT.
func getsByRole(t *testing.T, cl *redistest.Cluster) (replicas, primaries int) {
	t.Helper()
	isPrimary := map[*redistest.Server]bool{}
	for _, p := range cl.Primaries() {
		isPrimary[p] = true
	}
	for _, n := range cl.Nodes() {
		if isPrimary[n] {
			primaries += gets(t, n)
		} else {
			replicas += gets(t, n)
		}
	}
	return replicas, primaries
}

func gets(t *testing.T, n *redistest.Server) int {
	t.Helper()
	stats := n.MustDo(t, "INFO", "commandstats")
	for line := range strings.Lines(stats) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_get:calls="); ok {
			calls, _, _ := strings.Cut(v, ",")
			c, _ := strconv.Atoi(calls)
			return c
		}
	}
	return 0
}

// A failover to a replica that had not received the last commits takes
// them back: the sender finds the index shorter than it left it, and goes
// on from what Redis kept, cutting the chunks where it did before, so a
// reader that had read the lost ones reads on undisturbed.
func TestSenderGoesOnAfterRedisLostConfirmedChunks(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 16 << 10})
	ctx := context.Background()
	if err := c.Join(ctx, "rb", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(17, 2<<20)
	path := t.TempDir() + "/f"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Progress runs on the goroutine that commits: holding it holds the
	// upload, with what it committed so far.
	reached, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	progress := func(committed int64) {
		if committed >= 1<<20 {
			once.Do(func() { close(reached); <-gate })
		}
	}
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "rb", f, filecast.Meta{Name: "f"}, filecast.SendOptions{Progress: progress})
		sent <- err
	}()
	col := newCollector()
	_, wait := receive(t, c, "rb", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	<-reached
	time.Sleep(200 * time.Millisecond) // the reader reads what was committed
	// The rollback: the last 20 committed chunks vanish from the index.
	id := srv.MustDo(t, "ZRANGE", "fc:{rb}:live", "0", "0")
	fk := "fc:{rb}:f:" + id
	n, _ := strconv.Atoi(srv.MustDo(t, "HGET", fk, "n"))
	if n < 30 {
		t.Fatalf("only %d chunks committed at the gate", n)
	}
	const rollback = `
local es = redis.call('XRANGE', KEYS[1], '-', '+')
redis.call('DEL', KEYS[1])
for _, e in ipairs(es) do
  if tonumber(string.sub(e[1], 3)) <= tonumber(ARGV[1]) then redis.call('XADD', KEYS[1], e[1], unpack(e[2])) end
end
redis.call('HSET', KEYS[2], 'n', ARGV[1])`
	srv.MustDo(t, "EVAL", rollback, "2", fk+":idx", fk, strconv.Itoa(n-20))
	close(gate)
	if err := <-sent; err != nil {
		t.Fatalf("Send after the rollback: %v", err)
	}
	if err := c.SendEOF(ctx, "rb"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("Receive across the rollback: %v", err)
	}
	got, _ := col.get("f")
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
	expectNothingLeft(t, srv, "rb")
}

// Hosted services disable or rename CONFIG: filecast must not need it (the
// eviction policy and the version come from INFO).
func TestServerWithoutConfigCommand(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Extra: []string{`rename-command CONFIG ""`}})
	if _, err := srv.Do("CONFIG", "GET", "maxmemory-policy"); err == nil {
		t.Fatal("the test server still runs CONFIG")
	}
	c := dial(t, srv.URL(), filecast.Options{ChunkSize: 64 << 10})
	ctx := context.Background()
	if err := c.Join(ctx, "nc", "g"); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	_, wait := receive(t, c, "nc", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	data := randomBytes(15, 1<<20+7)
	mustSend(t, c, "nc", "f", data, filecast.SendOptions{MaxBytes: 256 << 10}) // streams through the budget
	c.SendEOF(ctx, "nc")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	got, _ := col.get("f")
	if !bytes.Equal(got, data) {
		t.Fatal("file differs")
	}
	st, err := c.Status(ctx, "nc")
	if err != nil {
		t.Fatalf("Status without CONFIG: %v", err)
	}
	if st.Redis.Server == "" || st.Redis.Primaries < 1 {
		t.Errorf("Status without CONFIG does not name the server: %+v", st.Redis)
	}
	expectNothingLeft(t, srv, "nc")
}

// waitReplicasListed waits until every node lists all n nodes in CLUSTER
// SLOTS: Redis lists a replica only once it holds data, and a client that
// asks a node still without it reads every slot of that shard from the
// primary until its next refresh.
func waitReplicasListed(t *testing.T, cl *redistest.Cluster, n int) {
	t.Helper()
	waitUntil(t, "every replica to be listed", func() bool {
		for _, node := range cl.Nodes() {
			if out, _ := node.Do("CLUSTER", "SLOTS"); strings.Count(out, "127.0.0.1") != n {
				return false
			}
		}
		return true
	})
}
