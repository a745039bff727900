package filecast

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/filecast/filecast/internal/chunk"
	"github.com/filecast/filecast/internal/store"
	"github.com/filecast/filecast/internal/wire"
)

// putSmall publishes a regular file that fits in the first chunk in one
// script call (store.Put) instead of five round trips. It reports false,
// with r rewound, when the file must take the long way: it is larger, or
// an interrupted upload of its name is to be resumed, or the budget is
// full (the long way waits for it). Only files of a batch take this way:
// their batch record is what tells a retried call, whose reply was lost
// after every group had consumed and released the file, that it was
// published.
func (c *Client) putSmall(ctx context.Context, ch store.Channel, f *os.File, st fs.FileInfo, rec *wire.File, record *store.Record,
	info *FileInfo, opt SendOptions, skipSame bool) (bool, error) {
	if f == nil || st.Size() > c.smallLimit() {
		return false, nil
	}
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return false, nil
	}
	rewind := func() (bool, error) {
		_, err := f.Seek(start, io.SeekStart)
		return false, err
	}
	data := make([]byte, st.Size()+1) // one more, to notice a file that grew
	n, err := io.ReadFull(f, data)
	if err != io.ErrUnexpectedEOF && err != io.EOF || int64(n) != st.Size() {
		return rewind()
	}
	data = data[:n]
	d := chunk.Sum(data)
	record.Sent = wire.Sent{Size: int64(n), ModTime: rec.ModTime, Mode: rec.Mode.Perm(), Digest: d, Source: record.Sent.Source}
	for {
		id := newID()
		record.Sent.ID = id
		res, err := ch.Put(ctx, store.PutArgs{ID: id, Name: rec.Name, Sender: rec.Sender, Value: data, Digest: d,
			DefaultMax: DefaultMaxBytes, Record: record, SkipSame: skipSame, Fields: rec.Fields()})
		if err != nil {
			return false, err
		}
		switch res.Status {
		case store.BeginNew:
			info.ID, info.Entry, info.Size, info.Digest = res.ID, res.Entry, int64(n), d.String()
			c.stats.bytesSent.Add(int64(n))
			if opt.Progress != nil && n > 0 {
				opt.Progress(int64(n))
			}
			return true, c.register(ctx, ch)
		case store.BeginNoGroups:
			return false, noGroups(ch)
		case store.PutSlow:
			return rewind()
		case store.PutSkipped:
			s, err := wire.ParseSent(res.Sent)
			if err != nil { // a damaged record never makes a file look sent
				skipSame = false
				continue
			}
			info.ID, info.Size, info.Mode, info.ModTime, info.Digest, info.Skipped = s.ID, s.Size, s.Mode, s.ModTime, s.Digest.String(), true
			return true, nil
		case store.BeginCollision: // a fresh random id was taken; draw another
		default:
			return false, fmt.Errorf("publish small file: unexpected reply %q", res.Status)
		}
	}
}
