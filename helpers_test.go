package filecast_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// newClient starts a private redis-server and returns a client on it.
func newClient(t *testing.T, opt filecast.Options) (*filecast.Client, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t, redistest.Config{})
	return dial(t, srv.URL(), opt), srv
}

func dial(t testing.TB, url string, opt filecast.Options) *filecast.Client {
	t.Helper()
	opt.URL = url
	if opt.Logger == nil && testing.Verbose() {
		opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := filecast.New(context.Background(), opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// chunkKey returns the key of chunk seq of file id on channel, of either
// protocol (docs/PROTOCOL.md §3): in the channel's slot, or spread.
func chunkKey(srv *redistest.Server, channel, id string, seq int64) string {
	fk := "fc:{" + channel + "}:f:" + id
	keys := store.NewKeys("fc", channel)
	if v, _ := srv.Do("HGET", fk, "v"); v != wire.Version2 {
		return keys.Chunk(id, seq)
	}
	var ep int64
	out, _ := srv.Do("XRANGE", fk+":idx", wire.EntryID(seq), wire.EntryID(seq))
	f := strings.Split(out, "\n")
	for i := 1; i+1 < len(f); i += 2 {
		if f[i] == "e" {
			ep, _ = strconv.ParseInt(f[i+1], 10, 64)
		}
	}
	return keys.Chunk2(id, ep, seq)
}

// chunkKeys returns the keys of the chunks file id of channel holds, of
// either protocol.
func chunkKeys(srv *redistest.Server, channel, id string) []string {
	return append(srv.Keys("fc:{"+channel+"}:f:"+id+":c:*"), srv.Keys("fc:{*}:c:"+channel+":"+id+":*")...)
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// collector is a Handler that keeps every file's bytes by name.
type collector struct {
	mu    sync.Mutex
	files map[string][]byte
	count map[string]int
}

func newCollector() *collector {
	return &collector{files: map[string][]byte{}, count: map[string]int{}}
}

func (c *collector) handle(ctx context.Context, f *filecast.File) error {
	return c.read(f.Name, f)
}

// read keeps everything r yields under name.
func (c *collector) read(name string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[name] = b
	c.count[name]++
	return nil
}

func (c *collector) get(name string) ([]byte, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files[name], c.count[name]
}

// receive runs Receive in the background until it returns; wait returns its error.
func receive(t *testing.T, c *filecast.Client, channel string, h filecast.Handler, opt filecast.ReceiveOptions) (cancel func(), wait func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Receive(ctx, channel, h, opt) }()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() {
			select {
			case err = <-errc:
			case <-time.After(60 * time.Second):
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("Receive(%s) did not return; goroutines:\n%s", opt.Group, buf)
			}
		})
		return err
	}
	t.Cleanup(func() { stop(); wait() })
	return stop, wait
}

func mustSend(t *testing.T, c *filecast.Client, channel, name string, data []byte, opt filecast.SendOptions) *filecast.FileInfo {
	t.Helper()
	info, err := c.Send(context.Background(), channel, bytes.NewReader(data), filecast.Meta{Name: name}, opt)
	if err != nil {
		t.Fatalf("Send(%s): %v", name, err)
	}
	return info
}

// leftovers returns the keys of channel that belong to files (anything but
// the channel-level keys that persist while groups exist).
func leftovers(srv *redistest.Server, channel string) []string {
	var out []string
	out = append(out, srv.Keys("fc:{"+channel+"}:f:*")...)
	out = append(out, srv.Keys("fc:{*}:c:"+channel+":*")...) // chunks spread over a cluster
	return append(out, srv.Keys("fc:{"+channel+"}:gc")...)   // their deletion journal
}
