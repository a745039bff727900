package main

import (
	"context"
	"fmt"
	"io"

	"github.com/filecast/filecast"
)

// dirSink is recv --dir: filecast.DirHandler, which writes each file under
// the directory durably and resumably.
type dirSink struct{ *filecast.DirHandler }

func (d dirSink) handle(ctx context.Context, f *filecast.File) error { return d.Handle(ctx, f) }

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
