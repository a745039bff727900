package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"golang.org/x/sync/errgroup"

	"github.com/filecast/filecast/internal/store"
)

// The ceilings: what Redis serves with no filecast logic at all, through
// the client filecast uses (rueidis), the same chunk size and the same
// number of requests in flight. Each is the fastest of several ways:
//   - writes: concurrent SETs pipelined by rueidis over its default
//     connections, and over one connection;
//   - reads, "do": concurrent GETs, pipelined automatically by rueidis
//     (the reply is allocated by the client);
//   - reads, "stream": GETs pipelined in batches on a dedicated connection,
//     each reply read straight into a reused buffer (DoMultiStream).

// inflight is the number of requests in flight per reader or writer:
// filecast's default ReadAhead.
const inflight = 8

// ceiling is one run's raw figures, in bytes per second.
type ceiling struct {
	set, get1, get4 float64
	// The ways of writing and reading, before taking the fastest.
	setPooled, setOneConn                  float64
	get1Do, get1Stream, get4Do, get4Stream float64
	// CPU used by the fastest way of each.
	setCPU, get1CPU, get4CPU cpuUse
}

// ceilings measures the raw figures on url, starting from an empty server
// (as the upload does).
func (e *env) ceilings(ctx context.Context, url string) (ceiling, error) {
	var c ceiling
	if err := e.flush(); err != nil {
		return c, err
	}
	clients := make([]rueidis.Client, 5)
	for i := range clients {
		rc, err := newRaw(url, i == 4)
		if err != nil {
			return c, err
		}
		defer rc.Close()
		clients[i] = rc
	}
	// measure runs op, keeps its rate, and keeps its CPU use if it is the
	// fastest way so far.
	measure := func(rate, best *float64, use *cpuUse, op func() (float64, error)) error {
		m := e.meter(ctx)
		t0 := time.Now()
		v, err := op()
		u := m.stop(ctx, time.Since(t0))
		*rate = v
		if v > *best {
			*best, *use = v, u
		}
		return err
	}
	n := len(e.data.chunks)
	get := func(readers int, stream bool) func() (float64, error) {
		return func() (float64, error) { return rawGet(ctx, clients[:readers], n, inflight, stream) }
	}
	steps := []func() error{
		func() error {
			return measure(&c.setPooled, &c.set, &c.setCPU, func() (float64, error) { return rawSet(ctx, clients[0], e.data.chunks, inflight) })
		},
		e.flush,
		func() error {
			return measure(&c.setOneConn, &c.set, &c.setCPU, func() (float64, error) { return rawSet(ctx, clients[4], e.data.chunks, inflight) })
		},
		func() error { return measure(&c.get1Do, &c.get1, &c.get1CPU, get(1, false)) },
		func() error { return measure(&c.get1Stream, &c.get1, &c.get1CPU, get(1, true)) },
		func() error { return measure(&c.get4Do, &c.get4, &c.get4CPU, get(4, false)) },
		func() error { return measure(&c.get4Stream, &c.get4, &c.get4CPU, get(4, true)) },
		e.flush,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// ceilingKey names the raw value i.
func ceilingKey(i int) string { return "bench:raw:" + strconv.Itoa(i) }

// newRaw connects a plain rueidis client the way internal/store does:
// with its default connections, or with one pipelined connection (as
// filecast stores chunk values).
func newRaw(url string, oneConn bool) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	opt.DisableRetry = true
	store.TuneDialer(&opt.Dialer)
	if oneConn {
		opt.PipelineMultiplex = 0
	}
	return rueidis.NewClient(opt)
}

// rawSet stores chunks as values with inflight SETs at once and returns the
// bytes per second.
func rawSet(ctx context.Context, rc rueidis.Client, chunks [][]byte, inflight int) (float64, error) {
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(inflight)
	var total int64
	for i, c := range chunks {
		total += int64(len(c))
		g.Go(func() error {
			return rc.Do(ctx, rc.B().Set().Key(ceilingKey(i)).Value(rueidis.BinaryString(c)).Build()).Error()
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("raw SET: %w", err)
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// rawGet has one reader per client read every one of n values, each with
// inflight GETs at once, and returns the aggregate bytes per second.
func rawGet(ctx context.Context, clients []rueidis.Client, n, inflight int, stream bool) (float64, error) {
	var mu sync.Mutex
	var total int64
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	for _, rc := range clients {
		g.Go(func() error {
			var got int64
			var err error
			if stream {
				got, err = readStream(ctx, rc, n, inflight)
			} else {
				got, err = readDo(ctx, rc, n, inflight)
			}
			mu.Lock()
			total += got
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("raw GET: %w", err)
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

func readDo(ctx context.Context, rc rueidis.Client, n, inflight int) (int64, error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(inflight)
	var mu sync.Mutex
	var total int64
	for i := range n {
		g.Go(func() error {
			b, err := rc.Do(ctx, rc.B().Get().Key(ceilingKey(i)).Build()).AsBytes()
			mu.Lock()
			total += int64(len(b))
			mu.Unlock()
			return err
		})
	}
	err := g.Wait()
	return total, err
}

// fixedWriter is an io.Writer into a reused buffer.
type fixedWriter struct{ b []byte }

func (w *fixedWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func readStream(ctx context.Context, rc rueidis.Client, n, inflight int) (int64, error) {
	if rc.Mode() == rueidis.ClientModeCluster {
		return readStreamEach(ctx, rc, n, inflight)
	}
	var total int64
	w := &fixedWriter{b: make([]byte, 0, 2<<20)}
	cmds := make(rueidis.Commands, 0, inflight)
	for i := 0; i < n; i += inflight {
		cmds = cmds[:0]
		for j := i; j < min(i+inflight, n); j++ {
			cmds = append(cmds, rc.B().Get().Key(ceilingKey(j)).Build())
		}
		s := rc.DoMultiStream(ctx, cmds...)
		for s.HasNext() {
			w.b = w.b[:0]
			m, err := s.WriteTo(w)
			if err != nil {
				return total, err
			}
			total += m
		}
	}
	return total, nil
}

// readStreamEach is readStream for a cluster, where a batch of keys spans
// slots: inflight GETs at once, each streamed on its own (as filecast
// reads chunks there).
func readStreamEach(ctx context.Context, rc rueidis.Client, n, inflight int) (int64, error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(inflight)
	var mu sync.Mutex
	var total int64
	bufs := make(chan *fixedWriter, inflight)
	for range inflight {
		bufs <- &fixedWriter{b: make([]byte, 0, 2<<20)}
	}
	for i := range n {
		g.Go(func() error {
			w := <-bufs
			defer func() { bufs <- w }()
			w.b = w.b[:0]
			st := rc.DoStream(ctx, rc.B().Get().Key(ceilingKey(i)).Build())
			m, err := st.WriteTo(w)
			mu.Lock()
			total += m
			mu.Unlock()
			return err
		})
	}
	err := g.Wait()
	return total, err
}
