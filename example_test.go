package filecast_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/filecast/filecast"
)

// Publish a file to the channel "logs".
func ExampleClient_SendFile() {
	ctx := context.Background()
	c, err := filecast.New(ctx, filecast.Options{URL: os.Getenv("FILECAST_REDIS")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	info, err := c.SendFile(ctx, "logs", "/var/log/app.log", "app.log", filecast.SendOptions{MaxBytes: 256 << 20})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent", info.Name, info.Size, "bytes")
}

// Send a set of files as one resumable batch: if the program is killed and
// run again, files the first run completed are skipped (unless they
// changed) and the file it was killed in is resumed. Ending the batch
// places the end-of-batch mark and forgets the batch in one step.
func ExampleClient_EndBatch() {
	ctx := context.Background()
	c, err := filecast.New(ctx, filecast.Options{URL: os.Getenv("FILECAST_REDIS")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	opt := filecast.SendOptions{Batch: "nightly-export"}
	for _, path := range []string{"/data/export/a.parquet", "/data/export/b.parquet"} {
		info, err := c.SendFile(ctx, "datasets", path, "", opt)
		if err != nil {
			log.Fatal(err) // run again to resume
		}
		fmt.Println(info.Name, "skipped:", info.Skipped, "resumed:", info.Resumed)
	}
	if err := c.EndBatch(ctx, "datasets", opt.Batch, true); err != nil {
		log.Fatal(err)
	}
}

// Send a directory and a file as one resumable batch, as "filecast send"
// does: run again after an interruption, it resumes the file it was
// interrupted in first and skips the files it had sent. EOF places an
// end-of-batch mark once every file is sent.
func ExampleClient_SendFiles() {
	ctx := context.Background()
	c, err := filecast.New(ctx, filecast.Options{URL: os.Getenv("FILECAST_REDIS")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	res, err := c.SendFiles(ctx, "datasets", []string{"/data/export", "/data/manifest.json"}, filecast.SendFilesOptions{
		SendOptions: filecast.SendOptions{MaxBytes: 256 << 20, Batch: "nightly-export"},
		EOF:         true,
		OnFile: func(f filecast.SentFile) {
			fmt.Println(f.Name, f.Size, "bytes, skipped:", f.Skipped, "resumed:", f.Resumed)
		},
		OnSameName: func(s filecast.SameName) {
			fmt.Println("warning:", s.First, "and", s.Path, "are both sent as", s.Name)
		},
	})
	if err != nil {
		log.Fatal(err) // run again to resume
	}
	fmt.Printf("sent %d files, %d bytes in %v; %d skipped\n", res.Files, res.Bytes, res.Elapsed, res.Skipped)
}

// Keep a directory in sync with the files sent to "configs", as "filecast
// recv --dir" does: each file appears under its name only once complete,
// verified and on disk, and a restarted receiver resumes a partial file.
func ExampleNewDirHandler() {
	ctx := context.Background()
	c, err := filecast.New(ctx, filecast.Options{URL: os.Getenv("FILECAST_REDIS")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	opt := filecast.ReceiveOptions{Group: "web-01", Member: "w1"}
	d, err := filecast.NewDirHandler("/etc/app/incoming", filecast.DirOptions{Member: opt.Member})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	// Partial files of files no longer in Redis for the group (given up,
	// or the group dropped while this member was down).
	if _, err := d.RemoveLeftovers(ctx, c, "configs", opt.Group); err != nil {
		log.Print(err)
	}
	if err := c.Receive(ctx, "configs", d.Handle, opt); err != nil {
		log.Fatal(err)
	}
}

// Count the lines of every file sent to "logs", decoding gzip on the fly,
// as a member of the work-sharing group "counters". Receive returns once
// the group has handled everything before the sender's end-of-batch mark.
func ExampleClient_Receive() {
	ctx := context.Background()
	c, err := filecast.New(ctx, filecast.Options{URL: os.Getenv("FILECAST_REDIS")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.Receive(ctx, "logs", func(ctx context.Context, f *filecast.File) error {
		r, done, err := filecast.Decompress(f)
		if err != nil {
			return err
		}
		defer done()
		lines := 0
		for _, err := range filecast.Lines(r) {
			if err != nil {
				return err // not acknowledged: retried, then reported
			}
			lines++
		}
		fmt.Println(f.Name, lines)
		return nil
	}, filecast.ReceiveOptions{Group: "counters", UntilEOF: true})
	if err != nil {
		log.Fatal(err)
	}
}

// Lines iterates over lines without their endings.
func ExampleLines() {
	for line, err := range filecast.Lines(strings.NewReader("a\r\nb\nc")) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q\n", line)
	}
	// Output:
	// "a"
	// "b"
	// "c"
}
