package filecast_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
	"github.com/filecast/filecast/internal/store"
)

// The least-privilege ACL users documented in docs/OPERATIONS.md, as
// redis.conf lines. Keep the two in step.
var aclUsers = []string{
	`user fc-send on >send-pw resetchannels ~fc:* ` +
		`+hello +ping +info +cluster|slots +cluster|shards +wait +evalsha +eval +client|unblock +sadd +hset +xread +hgetall +xrange ` +
		`+exists +hget +hmget +scard +smembers +xadd +zadd +decrby +hincrby +incrby +xrevrange +sdiff ` +
		`+unlink +hdel +xdel +zrem +del +pexpire +zrange +zrangebyscore +xgroup|destroy +srem ` +
		`(+get ~fc:{*}:bytes) (+set ~fc:{*}:f:*:c:* ~fc:{*}:c:* ~fc:{*}:sync)`,
	`user fc-recv on >recv-pw resetchannels ~fc:* &fc:{*}:g:* ` +
		`+hello +ping +info +cluster|slots +cluster|shards +wait +readonly +evalsha +eval +client|unblock +sadd +xgroup|create +hsetnx +get +del ` +
		`+subscribe +publish +xreadgroup +xautoclaim +xpending +xclaim +xack +xinfo|groups +xread +xrange ` +
		`+hgetall +hget +hmget +hset +hincrby +decrby +sismember +smembers +sdiff +exists +xadd +xdel +xtrim ` +
		`+unlink +hdel +zrem +zrange +zrangebyscore +xgroup|destroy +srem ` +
		`(+set ~fc:{*}:g:*:m:* ~fc:{*}:sync) (+zadd ~fc:{*}:g:*:dead)`,
}

// userURL is the server's URL (a cluster's too) with user and password.
func userURL(srv *redistest.Server, user, password string) string {
	u, err := url.Parse(srv.URL())
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

func TestLeastPrivilegeUsers(t *testing.T) {
	const chunk = 16 << 10
	srv := redistest.Start(t, redistest.Config{Extra: aclUsers})
	ctx := context.Background()
	opt := filecast.Options{ChunkSize: chunk}
	sender := dial(t, userURL(srv, "fc-send", "send-pw"), opt)
	receiver := dial(t, userURL(srv, "fc-recv", "recv-pw"), opt)

	// Their jobs: a receiver joins; a file larger than the budget streams
	// from the sender to it (reserve waits, progress trims); the end of the
	// batch arrives.
	if err := receiver.Join(ctx, "acl", "g"); err != nil {
		t.Fatalf("receive-only user cannot join: %v", err)
	}
	col := newCollector()
	_, wait := receive(t, receiver, "acl", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	data := randomBytes(13, 40*chunk+5)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	batch := filecast.SendOptions{MaxBytes: 4 * chunk, Batch: "b"}
	if _, err := sender.SendFile(ctx, "acl", path, "f", batch); err != nil {
		t.Fatalf("send-only user cannot send: %v", err)
	}
	if info, err := sender.SendFile(ctx, "acl", path, "f", batch); err != nil || !info.Skipped {
		t.Fatalf("send-only user cannot read its batch record: %+v, %v", info, err)
	}
	tiny := filepath.Join(t.TempDir(), "tiny")
	if err := os.WriteFile(tiny, data[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.SendFile(ctx, "acl", tiny, "tiny", batch); err != nil { // one script call
		t.Fatalf("send-only user cannot send a small file: %v", err)
	}
	if err := sender.EndBatch(ctx, "acl", "b", true); err != nil {
		t.Fatalf("send-only user cannot mark the end of a batch: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("receive-only user cannot receive: %v", err)
	}
	if got, _ := col.get("f"); !bytes.Equal(got, data) {
		t.Fatal("file differs")
	}
	if got, _ := col.get("tiny"); !bytes.Equal(got, data[:1000]) {
		t.Fatal("small file differs")
	}
	if left := leftovers(srv, "acl"); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}

	// A file the receive-only user's handler keeps failing on is kept for
	// its group, and let go by its sweeps when the retention ends.
	if err := sender.Configure(ctx, "acl", filecast.Settings{KeepFailed: time.Second}); err != nil {
		t.Fatalf("send-only user cannot configure the channel: %v", err)
	}
	failing := make(chan filecast.Result, 1)
	fctx, stopFailing := context.WithCancel(ctx)
	defer stopFailing()
	// It fails once it has read the file: only a complete file is kept.
	go receiver.Receive(fctx, "acl", func(_ context.Context, f *filecast.File) error { io.Copy(io.Discard, f); return errors.New("no") },
		filecast.ReceiveOptions{Group: "g", Retries: -1, OnResult: func(r filecast.Result) { failing <- r }})
	mustSend(t, sender, "acl", "bad", []byte("fails"), filecast.SendOptions{})
	if r := <-failing; r.Err == nil {
		t.Fatal("the failing handler succeeded")
	}
	if n := srv.MustDo(t, "ZCARD", "fc:{acl}:g:g:dead"); n != "1" {
		t.Errorf("the receive-only user did not keep the failed file: %s dead letters", n)
	}
	waitUntil(t, "the receive-only user's sweep to let the failed file go", func() bool { return len(leftovers(srv, "acl")) == 0 })
	stopFailing()

	// And nothing more.
	if _, err := receiver.Send(ctx, "acl", strings.NewReader("x"), filecast.Meta{Name: "y"}, filecast.SendOptions{}); !errors.Is(err, filecast.ErrAuth) {
		t.Errorf("receive-only user sent a file: %v", err)
	}
	// A user that may run the announcement's first commands but not its
	// last is refused before the script writes anything (Redis does not
	// undo a script's writes when a later command fails).
	srv.MustDo(t, "ACL", "SETUSER", "fc-half", "on", ">half-pw", "resetchannels", "~fc:*", "+@all", "-zadd")
	half := dial(t, userURL(srv, "fc-half", "half-pw"), opt)
	_, err := half.Send(ctx, "acl", strings.NewReader("x"), filecast.Meta{Name: "y"}, filecast.SendOptions{})
	if !errors.Is(err, filecast.ErrAuth) || !strings.Contains(err.Error(), "ZADD") {
		t.Errorf("a user without ZADD announced a file: %v", err)
	}
	if left := leftovers(srv, "acl"); len(left) != 0 {
		t.Errorf("keys left by a refused announcement: %v", left)
	}
	if n := srv.MustDo(t, "XLEN", "fc:{acl}:files"); n != "0" {
		t.Errorf("a refused announcement left %s entries in the files stream", n)
	}
	// Likewise a user that may upload but not keep a batch record is
	// refused when the file is announced, not after its upload.
	srv.MustDo(t, "ACL", "SETUSER", "fc-nobatch", "on", ">nb-pw", "resetchannels", "~fc:*", "+@all", "-pexpire")
	nobatch := dial(t, userURL(srv, "fc-nobatch", "nb-pw"), opt)
	_, err = nobatch.SendFile(ctx, "acl", path, "f", filecast.SendOptions{Batch: "b"})
	if !errors.Is(err, filecast.ErrAuth) || !strings.Contains(err.Error(), "PEXPIRE") {
		t.Errorf("a user without PEXPIRE sent a file of a batch: %v", err)
	}
	if left := leftovers(srv, "acl"); len(left) != 0 {
		t.Errorf("keys left by a refused announcement: %v", left)
	}
	if keys := srv.Keys("fc:{acl}:batch:*"); len(keys) != 0 {
		t.Errorf("a refused send left a batch record: %q", keys)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := sender.Receive(sctx, "acl", func(context.Context, *filecast.File) error { return nil },
		filecast.ReceiveOptions{Group: "g2"}); !errors.Is(err, filecast.ErrAuth) {
		t.Errorf("send-only user received: %v", err)
	}
	raw := func(user, pw string) rueidis.Client {
		o, _ := rueidis.ParseURL(userURL(srv, user, pw))
		o.DisableCache = true
		rc, err := rueidis.NewClient(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rc.Close)
		return rc
	}
	denied := func(who string, rc rueidis.Client, cmd rueidis.Completed) {
		t.Helper()
		err := rc.Do(ctx, cmd).Error()
		if err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%s: %v = %v, want NOPERM", who, cmd.Commands(), err)
		}
	}
	s, r := raw("fc-send", "send-pw"), raw("fc-recv", "recv-pw")
	spread := store.NewKeys("fc", "acl").Chunk2("0123456789abcdef", 0, 1)
	denied("send-only user reads a chunk", s, s.B().Get().Key("fc:{acl}:f:0123456789abcdef:c:1").Build())
	denied("send-only user reads a spread chunk", s, s.B().Get().Key(spread).Build())
	denied("send-only user creates a group", s, s.B().XgroupCreate().Key("fc:{acl}:files").Group("x").Id("$").Build())
	denied("send-only user publishes to a group's channel", s, s.B().Publish().Channel("fc:{acl}:g:g").Message("x").Build())
	denied("receive-only user stores a chunk", r, r.B().Set().Key("fc:{acl}:f:0123456789abcdef:c:1").Value("x").Build())
	denied("receive-only user stores a spread chunk", r, r.B().Set().Key(spread).Value("x").Build())
	denied("receive-only user announces a file", r, r.B().Zadd().Key("fc:{acl}:live").ScoreMember().ScoreMember(1, "x").Build())
	denied("receive-only user touches another prefix", r, r.B().Get().Key("other:key").Build())
	for _, c := range []rueidis.Client{s, r} {
		denied("a filecast user flushes", c, c.B().Flushall().Build())
		denied("a filecast user reconfigures", c, c.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "1").Build())
	}
}

// The same users on a cluster with replicas, each client waiting for a
// replica (WAIT, and the short-lived sync key it writes) and the receiver
// reading chunks from replicas (READONLY).
func TestLeastPrivilegeUsersWithReplicas(t *testing.T) {
	const chunk = 16 << 10
	cl := redistest.StartCluster(t, redistest.ClusterConfig{Primaries: 3, Replicas: 1, Node: redistest.Config{Extra: aclUsers}})
	ctx := context.Background()
	sender := dial(t, userURL(cl.Stand(), "fc-send", "send-pw"), filecast.Options{ChunkSize: chunk, Replicas: 1})
	admin := dial(t, cl.URL(), filecast.Options{ChunkSize: chunk})
	if err := admin.Join(ctx, "aclr", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(14, 40*chunk+5)
	if _, err := sender.Send(ctx, "aclr", bytes.NewReader(data), filecast.Meta{Name: "f"}, filecast.SendOptions{}); err != nil {
		t.Fatalf("send-only user cannot send waiting for a replica: %v", err)
	}
	if err := sender.SendEOF(ctx, "aclr"); err != nil {
		t.Fatal(err)
	}
	waitReplicasListed(t, cl, 6)
	for _, n := range cl.Nodes() {
		n.MustDo(t, "CONFIG", "RESETSTAT")
	}
	receiver := dial(t, userURL(cl.Stand(), "fc-recv", "recv-pw"), filecast.Options{ChunkSize: chunk, Replicas: 1, ReadReplicas: true})
	col := newCollector()
	_, wait := receive(t, receiver, "aclr", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("receive-only user cannot receive from replicas: %v", err)
	}
	if got, _ := col.get("f"); !bytes.Equal(got, data) {
		t.Fatal("file differs")
	}
	if fromReplicas, _ := getsByRole(t, cl); fromReplicas < 41 {
		t.Errorf("replicas served %d GETs to the receive-only user, want every chunk's (41)", fromReplicas)
	}
	if left := leftovers(cl.Stand(), "aclr"); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
}
