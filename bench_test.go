package filecast_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/redis/rueidis"
	"golang.org/x/sync/errgroup"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
	"github.com/filecast/filecast/internal/store"
)

// Benchmarks of the two hot paths, each beside its raw Redis ceiling, on a
// private redis-server over a unix socket. make bench runs the whole
// comparison (bench/); these are for profiling one path:
//
//	go test -run '^$' -bench 'Send|RawSet' -cpuprofile cpu.out
//
// Every iteration of Send and RawSet starts from an empty server: storing
// into memory Redis just freed costs it page faults that overwriting the
// same keys would not.

const benchFileSize = 128 << 20

// benchFile writes size pseudo-random bytes to a temporary file.
func benchFile(b *testing.B, size int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "data.bin")
	if err := os.WriteFile(path, randomBytes(1, size), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func rawClient(b *testing.B, url string) rueidis.Client {
	b.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	opt.DisableCache = true
	store.TuneDialer(&opt.Dialer)
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	return rc
}

func BenchmarkSend(b *testing.B) {
	srv := redistest.Start(b, redistest.Config{})
	c := dial(b, srv.URL(), filecast.Options{})
	ctx := context.Background()
	path := benchFile(b, benchFileSize)
	b.SetBytes(benchFileSize)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		srv.MustDo(b, "FLUSHALL")
		if err := c.Join(ctx, "bench", "g"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.SendFile(ctx, "bench", path, "f", filecast.SendOptions{MaxBytes: 8 << 30}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawSet stores the same bytes as BenchmarkSend in chunk-sized
// values with plain SETs, 8 in flight: its ceiling.
func BenchmarkRawSet(b *testing.B) {
	srv := redistest.Start(b, redistest.Config{})
	rc := rawClient(b, srv.URL())
	data := randomBytes(1, benchFileSize)
	ctx := context.Background()
	b.SetBytes(benchFileSize)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		srv.MustDo(b, "FLUSHALL")
		b.StartTimer()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for i := 0; i*filecast.DefaultChunkSize < len(data); i++ {
			v := data[i*filecast.DefaultChunkSize : min((i+1)*filecast.DefaultChunkSize, len(data))]
			g.Go(func() error {
				return rc.Do(gctx, rc.B().Set().Key("k"+strconv.Itoa(i)).Value(rueidis.BinaryString(v)).Build()).Error()
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// sendForRead stores a file to read in the read benchmarks.
func sendForRead(b *testing.B) (*filecast.Client, *redistest.Server, *filecast.FileInfo) {
	srv := redistest.Start(b, redistest.Config{})
	c := dial(b, srv.URL(), filecast.Options{})
	ctx := context.Background()
	if err := c.Join(ctx, "bench", "g"); err != nil {
		b.Fatal(err)
	}
	info, err := c.SendFile(ctx, "bench", benchFile(b, benchFileSize), "f", filecast.SendOptions{MaxBytes: 8 << 30})
	if err != nil {
		b.Fatal(err)
	}
	return c, srv, info
}

func BenchmarkOpenRead(b *testing.B) {
	c, _, info := sendForRead(b)
	ctx := context.Background()
	b.SetBytes(benchFileSize)
	b.ReportAllocs()
	for b.Loop() {
		f, err := c.Open(ctx, "bench", info.ID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkRawGet reads the chunks of the file BenchmarkOpenRead reads with
// plain GETs, 8 in flight: its ceiling.
func BenchmarkRawGet(b *testing.B) {
	_, srv, info := sendForRead(b)
	rc := rawClient(b, srv.URL())
	keys := chunkKeys(srv, "bench", info.ID)
	ctx := context.Background()
	b.SetBytes(benchFileSize)
	b.ReportAllocs()
	for b.Loop() {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for _, k := range keys {
			g.Go(func() error { return rc.Do(gctx, rc.B().Get().Key(k).Build()).Error() })
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}
