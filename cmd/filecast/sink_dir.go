package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/filecast/filecast"
)

// dirSink is recv --dir: filecast.DirHandler, which writes each file under
// the directory durably and resumably. Decoding (--decompress), it keeps
// what each file became, for its outcome to tell.
type dirSink struct {
	*filecast.DirHandler
	dir        string
	decompress bool

	mu      sync.Mutex
	decoded map[string]decoded // by file id, until decodedAs takes it
}

// decoded is what a decompressed file was written as.
type decoded struct {
	name string
	size int64
}

func newDirSink(d *filecast.DirHandler, dir string, decompress bool) *dirSink {
	return &dirSink{DirHandler: d, dir: dir, decompress: decompress, decoded: make(map[string]decoded)}
}

func (d *dirSink) handle(ctx context.Context, f *filecast.File) error {
	if err := d.Handle(ctx, f); err != nil {
		return err
	}
	if d.decompress {
		name := d.Target(f.Name)
		if st, err := os.Stat(filepath.Join(d.dir, filepath.FromSlash(name))); err == nil {
			d.mu.Lock()
			d.decoded[f.ID] = decoded{name: name, size: st.Size()}
			d.mu.Unlock()
		}
	}
	return nil
}

// decodedAs returns, and forgets, what file id was written as when it was
// decompressed.
func (d *dirSink) decodedAs(id string) (decoded, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dec, ok := d.decoded[id]
	delete(d.decoded, id)
	return dec, ok
}

// newDirHandler opens the --dir target, saying so if it had to create it.
func newDirHandler(dir, member string, decompress bool, stderr io.Writer) (*filecast.DirHandler, error) {
	return filecast.NewDirHandler(dir, filecast.DirOptions{Member: member, Decompress: decompress,
		OnCreate: func(dir string) { fmt.Fprintf(stderr, "created the target directory %s\n", dir) }})
}

// removeLeftovers removes the partial files this member left of files no
// longer in Redis for its group, saying so. Best effort: a file whose state
// cannot be read keeps its partial file.
func removeLeftovers(ctx context.Context, c *filecast.Client, d *filecast.DirHandler, channel, group string, stderr io.Writer) {
	removed, _ := d.RemoveLeftovers(ctx, c, channel, group)
	for _, p := range removed {
		fmt.Fprintf(stderr, "removed %s, the partial file of a file this group no longer awaits\n", p)
	}
}
