// Package wire defines the byte formats filecast stores in Redis and the
// checks applied to everything read back from it.
//
// Everything here is pure: no I/O, no Redis, standard library only. Values
// read from Redis are untrusted; every decoder returns an error wrapping
// ErrMalformed instead of panicking, and names pass CheckName before they
// are used as paths. docs/PROTOCOL.md describes the same formats in prose.
package wire

import "errors"

// Version is the protocol version written into file records whose chunks
// live in the channel's slot; Version2 into those whose chunks are spread
// over every slot (on a Redis Cluster), whose index entries carry the
// upload epoch of their chunk. Readers read both (docs/PROTOCOL.md §3).
const (
	Version  = "1"
	Version2 = "2"
)

// Algorithm names the digest used for chunks and whole files.
const Algorithm = "xxh3-128"

// ErrMalformed reports a record in Redis that does not follow the protocol.
var ErrMalformed = errors.New("malformed record")
