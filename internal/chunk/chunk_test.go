package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

func collect(t *testing.T, src Source, pool *Pool) ([][]byte, error) {
	t.Helper()
	var out [][]byte
	for {
		b, err := src.Next(context.Background())
		if err != nil {
			return out, err
		}
		out = append(out, append([]byte(nil), b...))
		pool.Put(b)
	}
}

func TestFullCutsWholeChunks(t *testing.T) {
	pool := NewPool(10, 2)
	data := []byte("0123456789abcdefghij12345")
	got, err := collect(t, NewFull(iotest.OneByteReader(bytes.NewReader(data)), pool), pool)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	want := []string{"0123456789", "abcdefghij", "12345"}
	if len(got) != len(want) {
		t.Fatalf("got %d chunks, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("chunk %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestLiveFlushesSlowInput(t *testing.T) {
	pool := NewPool(1<<20, 2)
	pr, pw := io.Pipe()
	src := NewLive(pr, pool, 20*time.Millisecond)
	defer src.Close()
	go pw.Write([]byte("first"))
	start := time.Now()
	b, err := src.Next(context.Background())
	if err != nil || string(b) != "first" {
		t.Fatalf("Next = %q, %v; want the partial chunk %q", b, err, "first")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("partial chunk took %v", d)
	}
	pool.Put(b)
	go func() { pw.Write([]byte("second")); pw.Close() }()
	b, err = src.Next(context.Background())
	if err != nil || string(b) != "second" {
		t.Fatalf("Next = %q, %v; want %q", b, err, "second")
	}
	pool.Put(b)
	if _, err := src.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

// A read error that comes with the last bytes must not be taken for EOF.
func TestLiveKeepsReadError(t *testing.T) {
	pool := NewPool(1<<20, 2)
	boom := errors.New("boom")
	r := iotest.DataErrReader(io.MultiReader(bytes.NewReader([]byte("data")), iotest.ErrReader(boom)))
	src := NewLive(r, pool, time.Hour)
	defer src.Close()
	got, err := collect(t, src, pool)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if len(got) != 1 || string(got[0]) != "data" {
		t.Errorf("chunks = %q, want [data]", got)
	}
}

func TestHasherMatchesSum(t *testing.T) {
	data := bytes.Repeat([]byte("abc"), 100000)
	h := NewHasher()
	h.Write(data[:1000])
	h.Write(data[1000:])
	if h.Sum() != Sum(data) {
		t.Error("streaming digest differs from one-shot digest")
	}
}

func TestPoolGetLenReusesLargeEnoughBuffers(t *testing.T) {
	ctx := context.Background()
	p := NewPool(1024, 1)
	small, err := p.GetLen(ctx, 10)
	if err != nil || len(small) != 10 {
		t.Fatalf("GetLen(10) = %d bytes, %v", len(small), err)
	}
	p.Put(small)
	big, _ := p.GetLen(ctx, 100)
	if len(big) != 100 {
		t.Fatalf("GetLen(100) = %d bytes", len(big))
	}
	p.Put(big)
	again, _ := p.GetLen(ctx, 50)
	if len(again) != 50 || &again[0] != &big[0] {
		t.Errorf("GetLen(50) after a 100-byte buffer came back did not reuse it")
	}
	// The pool bounds how many buffers are out.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.GetLen(cctx, 1); err == nil {
		t.Error("GetLen with every buffer out did not wait")
	}
}

func TestFullRampsUpToThePoolSize(t *testing.T) {
	const size = 1 << 20
	pool := NewPool(size, 8)
	data := make([]byte, 3*size)
	got, err := collect(t, NewFull(bytes.NewReader(data), pool), pool)
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	var lens []int
	total := 0
	for _, c := range got {
		lens = append(lens, len(c))
		total += len(c)
	}
	want := []int{Ramp[0], Ramp[1], size, size, 3*size - Ramp[0] - Ramp[1] - 2*size}
	if fmt.Sprint(lens) != fmt.Sprint(want) || total != len(data) {
		t.Errorf("chunk lengths %v, want %v (the ramp, then full chunks)", lens, want)
	}
}

// Input that never pauses must still be cut within the flush bound of each
// byte's arrival: an idle timer that restarts on every write would hold
// it until the chunk is full.
func TestLiveBoundsDelayOfSteadyInput(t *testing.T) {
	const flush = 50 * time.Millisecond
	pool := NewPool(1<<20, 4)
	pr, pw := io.Pipe()
	src := NewLive(pr, pool, flush)
	defer src.Close()
	const lines = 150 // one every 4 ms: never idle for flush/4
	go func() {
		for i := range lines {
			// Each line says which it is and when it was written.
			fmt.Fprintf(pw, "%03d %d\n", i, time.Now().UnixNano())
			time.Sleep(4 * time.Millisecond)
		}
		pw.Close()
	}()
	var worst time.Duration
	next, chunks := 0, 0
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		chunks++
		for line := range bytes.SplitSeq(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			var i int
			var at int64
			if _, err := fmt.Sscanf(string(line), "%d %d", &i, &at); err != nil || i != next {
				t.Fatalf("line %q, want line %d", line, next)
			}
			worst = max(worst, now.Sub(time.Unix(0, at)))
			next++
		}
		pool.Put(b)
	}
	if next != lines {
		t.Fatalf("got %d lines, want %d", next, lines)
	}
	// Generous for a loaded machine; without the bound every line waits
	// for the end of input (0.6 s) or a full chunk.
	if worst > flush+250*time.Millisecond {
		t.Errorf("a line was handed on %v after it was written; the bound is %v", worst, flush)
	}
	if chunks < 4 {
		t.Errorf("%d chunks for 0.6 s of steady input with a %v bound: it was not cut as it arrived", chunks, flush)
	}
}

// A trickle is handed on in buffers of its own size, so following many
// slow files does not hold a full chunk buffer per chunk in flight.
func TestLiveSmallChunksInSmallBuffers(t *testing.T) {
	pool := NewPool(1<<20, 4)
	pr, pw := io.Pipe()
	src := NewLive(pr, pool, time.Millisecond)
	defer src.Close()
	defer pw.Close()
	go pw.Write([]byte("one line\n"))
	b, err := src.Next(context.Background())
	if err != nil || string(b) != "one line\n" {
		t.Fatalf("Next = %q, %v", b, err)
	}
	if cap(b) >= 1<<19 {
		t.Errorf("a %d-byte chunk came in a %d-byte buffer", len(b), cap(b))
	}
}

// Count says how many chunks NewFull cuts, ramp included.
func TestCountMatchesFull(t *testing.T) {
	r0, r1 := int64(Ramp[0]), int64(Ramp[1])
	for _, size := range []int{1 << 20, 1<<20 - 64, 4096, 100 << 10} {
		cs := int64(size)
		for _, n := range []int64{0, 1, r0 - 1, r0, r0 + 1, r0 + r1, r0 + r1 + 1, r0 + r1 + cs, r0 + r1 + cs + 1, 3_000_000, 7<<20 + 5} {
			pool := NewPool(size, 1)
			src := NewFull(io.LimitReader(zeros{}, n), pool)
			var want int64
			for {
				b, err := src.Next(context.Background())
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				want++
				pool.Put(b)
			}
			if got := Count(n, size); got != want {
				t.Errorf("Count(%d, %d) = %d, want %d (as NewFull cuts it)", n, size, got, want)
			}
		}
	}
	if got := Count(3_000_000, 1<<20-64); got != 5 {
		t.Errorf("Count(3000000, 1 MiB - 64) = %d, want 5 (64 KiB, 256 KiB, then three of 1 MiB)", got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
