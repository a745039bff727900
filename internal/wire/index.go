package wire

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// EntryKind says what an index entry records.
type EntryKind int

// Kinds of index entry. Chunk entries are numbered 1, 2, …; exactly one
// end entry (EOF or Abort) follows the last chunk.
const (
	ChunkEntry EntryKind = iota
	EOFEntry
	AbortEntry
)

// Entry is one entry of a file's index stream. Its stream ID is "0-Seq".
type Entry struct {
	Kind   EntryKind
	Seq    int64
	Len    int    // ChunkEntry: bytes in the chunk
	Digest Digest // ChunkEntry: chunk digest; EOFEntry: whole-file digest
	// ChunkEntry, if HasPrefix: the digest of the file's bytes from its
	// start to the end of this chunk. It lets a reader check a prefix
	// whose chunks were trimmed, and a sender complete what it sent.
	Prefix    Digest
	HasPrefix bool
	// ChunkEntry of a protocol 2 file: the upload epoch the chunk was
	// stored under, part of its key.
	Epoch  int64
	Size   int64  // EOFEntry: file size
	Reason string // AbortEntry: why
}

// EntryID returns the index stream ID of chunk (or end entry) seq.
func EntryID(seq int64) string { return "0-" + strconv.FormatInt(seq, 10) }

// ChunkFields returns the fields of a chunk entry: its length, digest and
// prefix digest.
func ChunkFields(n int, d, prefix Digest) []string {
	return []string{"n", strconv.Itoa(n), "h", d.String(), "p", prefix.String()}
}

// ParseEntry decodes an index entry from its stream ID and fields.
// maxLen bounds the chunk length accepted (the record's chunk size).
func ParseEntry(id string, fields map[string]string, maxLen int) (Entry, error) {
	var e Entry
	ms, seqs, ok := strings.Cut(id, "-")
	if !ok || ms != "0" {
		return e, fmt.Errorf("%w: index entry id %q", ErrMalformed, id)
	}
	seq, err := strconv.ParseInt(seqs, 10, 64)
	if err != nil || seq < 1 {
		return e, fmt.Errorf("%w: index entry id %q", ErrMalformed, id)
	}
	e.Seq = seq
	switch {
	case fields["eof"] != "":
		e.Kind = EOFEntry
		size, err := strconv.ParseInt(fields["size"], 10, 64)
		if err != nil || size < 0 {
			return e, fmt.Errorf("%w: end entry size %q", ErrMalformed, fields["size"])
		}
		e.Size = size
		if e.Digest, err = ParseDigest(fields["h"]); err != nil {
			return e, err
		}
	case fields["abort"] != "":
		e.Kind = AbortEntry
		e.Reason = fields["abort"]
	default:
		e.Kind = ChunkEntry
		n, err := strconv.Atoi(fields["n"])
		if err != nil || n < 1 || n > maxLen || n > math.MaxInt32 {
			return e, fmt.Errorf("%w: chunk %d length %q (chunk size %d)", ErrMalformed, seq, fields["n"], maxLen)
		}
		e.Len = n
		if e.Digest, err = ParseDigest(fields["h"]); err != nil {
			return e, err
		}
		if p, ok := fields["p"]; ok { // absent from entries of older senders
			if e.Prefix, err = ParseDigest(p); err != nil {
				return e, err
			}
			e.HasPrefix = true
		}
		if s, ok := fields["e"]; ok {
			if e.Epoch, err = strconv.ParseInt(s, 10, 64); err != nil || e.Epoch < 0 {
				return e, fmt.Errorf("%w: chunk %d epoch %q", ErrMalformed, seq, s)
			}
		}
	}
	return e, nil
}
