package wire

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"time"
)

// Kind says what a file record announces.
type Kind string

// Kinds of record in a channel's files stream.
const (
	KindFile Kind = "file" // a file with content
	KindMark Kind = "mark" // an end-of-batch mark (send --eof); no content
)

// State is the upload state of a file record.
type State string

// States of an upload. A file is created uploading and moves exactly once,
// to complete or aborted; the record is deleted when it is released.
const (
	Uploading State = "uploading"
	Complete  State = "complete"
	Aborted   State = "aborted"
)

// DigestSize is the length in bytes of a digest (XXH3-128).
const DigestSize = 16

// Digest is an XXH3-128 digest in its canonical big-endian byte order.
type Digest [DigestSize]byte

// String returns the digest as 32 lowercase hex digits, its stored form.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest parses the stored form of a digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*DigestSize {
		return d, fmt.Errorf("%w: digest %q is not %d hex digits", ErrMalformed, s, 2*DigestSize)
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("%w: digest %q is not hex", ErrMalformed, s)
	}
	return d, nil
}

// File is the metadata record of one file, stored as a Redis hash. Only the
// fields a reader needs to interpret the content are parsed strictly.
type File struct {
	Version   string // Version or Version2; empty: Version
	Kind      Kind
	Name      string      // checked with CheckName for kind file
	Mode      fs.FileMode // permission bits only
	ModTime   time.Time
	ChunkSize int   // nominal chunk size; chunks may be shorter
	State     State //
	Size      int64 // final size; -1 until complete
	// Expect is the size the sender expected when the upload began (a
	// regular file's size then), for status to show progress against; 0
	// when unknown (a pipe). Informative only: the file may grow or shrink
	// while it is read, and Size is what counts.
	Expect    int64
	Digest    Digest
	Entry     string    // id of the announcing entry in the files stream
	Created   time.Time // when the upload started
	Heartbeat time.Time // last sign of life from the sender
	Sender    string    // host and pid of the sender
	Chunks    int64     // chunks committed so far
	Low       int64     // lowest chunk number still stored (released below)
	// Offset is the length of the prefix whose chunks (1..Low-1) were
	// trimmed along with their index entries, and Prefix its digest; a
	// reader resuming a partial copy checks that prefix against it.
	// Offset is 0 while the whole index is kept.
	Offset int64
	Prefix Digest
	// Live marks an upload read from input that arrives over time (a pipe,
	// a followed log): chunks every group has consumed are trimmed as it
	// flows, not only when the budget is full.
	Live bool
	// Origin says where the sender reads the upload from, for the sender
	// itself to find it again after a restart (a followed file). Readers
	// ignore it.
	Origin string
	Reason string // why the upload was aborted
}

// MaxChunkSize bounds the chunk size a reader accepts from a record, so a
// hostile record cannot make a receiver allocate without limit.
const MaxChunkSize = 64 << 20

// Fields returns the hash fields written when an upload starts.
func (f *File) Fields() []string {
	fv := []string{
		"v", f.version(),
		"kind", string(f.Kind),
		"name", f.Name,
		"mode", strconv.FormatUint(uint64(f.Mode.Perm()), 8),
		"mtime", strconv.FormatInt(f.ModTime.UnixNano(), 10),
		"chunk", strconv.Itoa(f.ChunkSize),
		"size", "-1",
		"alg", Algorithm,
		"sender", f.Sender,
		"live", live(f.Live),
		"origin", f.Origin,
	}
	if f.Expect > 0 {
		fv = append(fv, "expect", strconv.FormatInt(f.Expect, 10))
	}
	return fv
}

func (f *File) version() string {
	if f.Version == "" {
		return Version
	}
	return f.Version
}

// Spread reports whether the file's chunks are spread over the slots
// (protocol 2).
func (f *File) Spread() bool { return f.Version == Version2 }

func live(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ParseFile decodes a file record from its hash fields. It rejects records
// of another protocol version, unsafe names and out-of-range numbers.
func ParseFile(h map[string]string) (*File, error) {
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: empty file record", ErrMalformed)
	}
	if v := h["v"]; v != Version && v != Version2 {
		return nil, fmt.Errorf("%w: protocol version %q; this filecast reads versions %s and %s: upgrade it", ErrMalformed, v, Version, Version2)
	}
	f := &File{Version: h["v"], Kind: Kind(h["kind"]), Name: h["name"], State: State(h["state"]),
		Entry: h["entry"], Sender: h["sender"], Reason: h["reason"], Origin: h["origin"]}
	switch f.Kind {
	case KindFile:
		if err := CheckName(f.Name); err != nil {
			return nil, err
		}
		if a := h["alg"]; a != Algorithm {
			return nil, fmt.Errorf("%w: digest algorithm %q, want %q", ErrMalformed, a, Algorithm)
		}
	case KindMark:
	default:
		return nil, fmt.Errorf("%w: unknown record kind %q", ErrMalformed, f.Kind)
	}
	switch f.State {
	case Uploading, Complete, Aborted:
	default:
		return nil, fmt.Errorf("%w: unknown state %q", ErrMalformed, f.State)
	}
	var err error
	num := func(field string, lo, hi int64) int64 {
		s, ok := h[field]
		if !ok || err != nil {
			return 0
		}
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n < lo || n > hi {
			err = fmt.Errorf("%w: field %s=%q out of range", ErrMalformed, field, s)
		}
		return n
	}
	f.Size = num("size", -1, math.MaxInt64)
	f.ChunkSize = int(num("chunk", 0, MaxChunkSize))
	f.Chunks = num("n", 0, math.MaxInt64)
	f.Low = num("lo", 0, math.MaxInt64)
	f.ModTime = time.Unix(0, num("mtime", math.MinInt64, math.MaxInt64))
	f.Created = time.UnixMilli(num("created", 0, math.MaxInt64))
	f.Heartbeat = time.UnixMilli(num("hb", 0, math.MaxInt64))
	f.Offset = num("off", 0, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if f.Kind == KindFile && f.ChunkSize == 0 {
		return nil, fmt.Errorf("%w: chunk size 0", ErrMalformed)
	}
	if f.Low == 0 {
		f.Low = 1
	}
	if m, ok := h["mode"]; ok {
		mode, perr := strconv.ParseUint(m, 8, 32)
		if perr != nil {
			return nil, fmt.Errorf("%w: field mode=%q", ErrMalformed, m)
		}
		f.Mode = fs.FileMode(mode).Perm()
	}
	if d, ok := h["digest"]; ok && d != "" {
		if f.Digest, err = ParseDigest(d); err != nil {
			return nil, err
		}
	}
	if f.Offset > 0 {
		if f.Prefix, err = ParseDigest(h["pre"]); err != nil {
			return nil, err
		}
	}
	f.Live = h["live"] == "1"
	// Informative only: a value this version cannot read is no reason to
	// refuse the file.
	if n, perr := strconv.ParseInt(h["expect"], 10, 64); perr == nil && n > 0 {
		f.Expect = n
	}
	return f, nil
}
