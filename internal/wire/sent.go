package wire

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Sent is a batch's record of one file it completed: enough to tell the
// same, unchanged source from another or a changed one (rsync's quick
// check: size and modification time, plus the mode and where it came
// from) and to report the earlier send.
type Sent struct {
	Size    int64
	ModTime time.Time
	Mode    fs.FileMode
	Digest  Digest
	ID      string
	Source  string // where the sender read it (an absolute path); empty for a stream
}

// String returns the stored form: "size mtime-ns mode-octal digest id
// source", the source last (it may hold spaces).
func (s Sent) String() string {
	return strconv.FormatInt(s.Size, 10) + " " + strconv.FormatInt(s.ModTime.UnixNano(), 10) + " " +
		strconv.FormatUint(uint64(s.Mode.Perm()), 8) + " " + s.Digest.String() + " " + s.ID + " " + s.Source
}

// ParseSent decodes the stored form of a Sent record.
func ParseSent(v string) (Sent, error) {
	var s Sent
	f := strings.SplitN(v, " ", 6)
	if len(f) != 6 || f[4] == "" {
		return s, fmt.Errorf("%w: sent record %q is not 6 fields", ErrMalformed, v)
	}
	size, err1 := strconv.ParseInt(f[0], 10, 64)
	mtime, err2 := strconv.ParseInt(f[1], 10, 64)
	mode, err3 := strconv.ParseUint(f[2], 8, 32)
	if err1 != nil || err2 != nil || err3 != nil || size < 0 {
		return s, fmt.Errorf("%w: sent record %q", ErrMalformed, v)
	}
	d, err := ParseDigest(f[3])
	if err != nil {
		return s, err
	}
	return Sent{Size: size, ModTime: time.Unix(0, mtime), Mode: fs.FileMode(mode).Perm(), Digest: d, ID: f[4], Source: f[5]}, nil
}
