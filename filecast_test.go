package filecast_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/filecast/filecast"
)

func TestSendReceiveFanOut(t *testing.T) {
	c, srv := newClient(t, filecast.Options{ChunkSize: 64 << 10})
	ctx := context.Background()
	for _, g := range []string{"a", "b", "c"} {
		if err := c.Join(ctx, "logs", g); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]byte{
		"empty":       {},
		"small.txt":   []byte("hello\n"),
		"dir/big.bin": randomBytes(1, 1<<20+12345),
	}
	for name, data := range want {
		mustSend(t, c, "logs", name, data, filecast.SendOptions{})
	}
	if err := c.SendEOF(ctx, "logs"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"a", "b", "c"} {
		col := newCollector()
		t0 := time.Now()
		_, wait := receive(t, c, "logs", col.handle, filecast.ReceiveOptions{Group: g, UntilEOF: true, OnResult: func(r filecast.Result) { t.Logf("%s %s %v %v", g, r.File.Name, time.Since(t0), r.Err) }})
		if err := wait(); err != nil {
			t.Fatalf("group %s: Receive: %v", g, err)
		}
		for name, data := range want {
			got, n := col.get(name)
			if n != 1 || !bytes.Equal(got, data) {
				t.Errorf("group %s: %s: got %d bytes in %d deliveries, want %d bytes once", g, name, len(got), n, len(data))
			}
		}
	}
	if left := leftovers(srv, "logs"); len(left) != 0 {
		t.Errorf("keys left after every group acknowledged: %v", left)
	}
	if got := srv.MustDo(t, "GET", "fc:{logs}:bytes"); got != "0" {
		t.Errorf("bytes counter after release = %q, want 0", got)
	}
}
