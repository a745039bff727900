// Package keyslot computes Redis Cluster hash slots, and hash tags that
// place a key in a chosen slot.
//
// A Redis Cluster stores key k in slot CRC16(k) mod 16384, where only the
// part between the first "{" and the next "}" is hashed when that part is
// not empty (a hash tag). Tag inverts this: the key "x:{"+Tag(s)+"}:y" is
// in slot s. filecast uses it to spread a file's chunks evenly over the
// slots, and so over every primary, whatever the cluster's layout.
package keyslot

import (
	"strconv"
	"strings"
	"sync"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// Slot returns the hash slot of key.
func Slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % Slots
}

// Tag returns the shortest hash tag of slot s: the base-36 form of the
// first number n = 0, 1, 2, ... whose text hashes to s. Every client
// computes the same table, so the tag of a slot is part of the protocol
// (docs/PROTOCOL.md).
func Tag(s uint16) string { return tags()[s%Slots] }

// tags is built on first use (about 2 ms), so that a process that never
// meets a cluster does not pay for it at start.
var tags = sync.OnceValue(func() *[Slots]string {
	var t [Slots]string
	left := Slots
	for n := int64(0); left > 0; n++ {
		tag := strconv.FormatInt(n, 36)
		s := crc16(tag) % Slots
		if t[s] == "" {
			t[s] = tag
			left--
		}
	}
	return &t
})

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), as Redis
// Cluster uses.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ table[byte(crc>>8)^s[i]]
	}
	return crc
}

var table = func() *[256]uint16 {
	var t [256]uint16
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return &t
}()
