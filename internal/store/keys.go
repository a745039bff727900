package store

import (
	"strconv"

	"github.com/filecast/filecast/internal/keyslot"
)

// Keys names the Redis keys of one channel. All of them share the hash tag
// {channel}, so a channel lives in one Redis Cluster slot and every state
// change is one atomic script. docs/PROTOCOL.md lists them.
type Keys struct {
	prefix, channel, base string
}

// NewKeys returns the key names of channel under prefix.
func NewKeys(prefix, channel string) Keys {
	return Keys{prefix: prefix, channel: channel, base: prefix + ":{" + channel + "}:"}
}

// Channel returns the channel name.
func (k Keys) Channel() string { return k.channel }

// Base is the common start of every key of the channel.
func (k Keys) Base() string { return k.base }

// Files is the stream announcing files; its consumer groups are the receiver groups.
func (k Keys) Files() string { return k.base + "files" }

// Fence is a key that never exists. Every script declares it beside
// Files: while the channel's slot migrates between cluster nodes, Redis
// then refuses the script with TRYAGAIN before it runs (a multi-key call
// with a key missing in a migrating or importing slot), instead of
// failing it half-way at the first key already moved (scripts compute
// the rest of their keys, and Redis does not undo a failed script's
// writes). The client retries until the slot has settled.
func (k Keys) Fence() string { return k.base + "fence" }

// Groups is the set of receiver groups that joined.
func (k Keys) Groups() string { return k.base + "groups" }

// Bytes counts the bytes of chunks the channel holds or has reserved.
func (k Keys) Bytes() string { return k.base + "bytes" }

// Config holds channel settings (max: the budget in bytes).
func (k Keys) Config() string { return k.base + "cfg" }

// Uploads maps a file name to the id of its unfinished upload.
func (k Keys) Uploads() string { return k.base + "up" }

// Live is a sorted set of the ids of unreleased files, scored by start time.
func (k Keys) Live() string { return k.base + "live" }

// Events is a short stream of "bytes were freed" events that senders
// waiting for budget block on.
func (k Keys) Events() string { return k.base + "ev" }

// Waiting is a hash of the senders waiting for room in the budget: file id
// -> since_ms TAB seen_ms TAB ttl_ms TAB name TAB sender (see
// Channel.SetWaiting). The whole key expires when no sender refreshes it.
func (k Keys) Waiting() string { return k.base + "wait" }

// Group is a hash of a group's own state (its last completed mark).
func (k Keys) Group(g string) string { return k.base + "g:" + g }

// Failed is a hash of the files a group gave up on: id -> name TAB reason
// TAB ms TAB state (see scripts/lib.lua).
func (k Keys) Failed(g string) string { return k.base + "g:" + g + ":failed" }

// Blocked is a hash of the group's members that are blocked on a file by
// a fault of their own side: member -> since_ms TAB id TAB name TAB reason.
func (k Keys) Blocked(g string) string { return k.base + "g:" + g + ":blocked" }

// Dead is a sorted set of the files the group gave up on and keeps for the
// channel's retention (dead letters), scored by when, in ms.
func (k Keys) Dead(g string) string { return k.base + "g:" + g + ":dead" }

// Dropped is a hash of the groups dropped: group -> ms TAB reason.
func (k Keys) Dropped() string { return k.base + "dropped" }

// Member is the lease key of one member of a group.
func (k Keys) Member(g, m string) string { return k.base + "g:" + g + ":m:" + m }

// File is the metadata hash of a file.
func (k Keys) File(id string) string { return k.base + "f:" + id }

// Index is the stream listing a file's chunks, with IDs 0-1, 0-2, ...
func (k Keys) Index(id string) string { return k.base + "f:" + id + ":idx" }

// Chunk is the string holding chunk seq (1-based) of a file.
func (k Keys) Chunk(id string, seq int64) string {
	return k.base + "f:" + id + ":c:" + strconv.FormatInt(seq, 10)
}

// Chunk2 is the key of chunk seq, of upload epoch ep, of a protocol 2
// file: outside the channel's slot, in slot (CRC16(id) + seq·Stride) mod
// 16384, so that a file's chunks spread evenly over every primary of a
// cluster whatever its layout (docs/PROTOCOL.md §3.6).
func (k Keys) Chunk2(id string, ep, seq int64) string {
	slot := (uint64(keyslot.Slot(id)) + uint64(seq)*Stride) % keyslot.Slots
	return k.prefix + ":{" + keyslot.Tag(uint16(slot)) + "}:c:" + k.channel + ":" + id + ":" +
		strconv.FormatInt(ep, 10) + ":" + strconv.FormatInt(seq, 10)
}

// Stride is the step in slots between consecutive chunks of a protocol 2
// file: about 16384/φ, so that any run of chunks falls as evenly as it can
// into any contiguous ranges of slots (those a cluster gives its primaries).
const Stride = 10127

// ChunkKey is the key of a chunk of a file of either protocol.
func (k Keys) ChunkKey(spread bool, id string, ep, seq int64) string {
	if spread {
		return k.Chunk2(id, ep, seq)
	}
	return k.Chunk(id, seq)
}

// GC is the journal of protocol 2 chunk keys to delete (lib.lua, journal).
func (k Keys) GC() string { return k.base + "gc" }

// Batch is a hash of the files a batch of sends completed: name -> wire.Sent.
func (k Keys) Batch(batch string) string { return k.base + "batch:" + batch }

// Follower marks that a follower of that name has run on the channel
// (its value: when it first did).
func (k Keys) Follower(name string) string { return k.base + "follow:" + name }

// Channels is the global set of channel names, for status without a channel.
func Channels(prefix string) string { return prefix + ":channels" }
