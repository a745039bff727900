// Package filecast distributes files to many machines through a Redis
// server, and lets receivers process each file while it is still arriving.
//
// # Model
//
// A sender publishes files to a channel (Client.Send, Client.SendFile, or
// Client.SendFiles for files and directories as one resumable batch). A
// file is announced before its first chunk is stored, and its chunks
// (Options.ChunkSize each) are appended to it as they are read, so a
// receiver reads the first byte within milliseconds of the sender starting.
//
// Receivers belong to groups (ReceiveOptions.Group). Every group that has
// joined a channel gets every file published after it joined, even while
// none of its members runs; the members of one group share the files, each
// file going to one member (Client.Receive). A Handler gets each file as a
// *File, an io.Reader that follows the upload; DirHandler writes each file
// under a directory, durably and resumably.
//
// # Guarantees
//
//   - Streaming: a File's bytes are available as soon as their chunk is
//     stored; nothing polls (receivers block in XREAD/XREADGROUP).
//   - At-least-once: a file is acknowledged for a group only after its
//     Handler returned nil; a member that dies mid-file gets it again on
//     restart, or another member gets it after Options.Lease.
//   - Integrity: every chunk is checked against its XXH3-128 digest before
//     a byte of it is handed on, and the whole file's size and digest at
//     its end; failures are ErrCorrupt, never silent.
//   - Bounded memory: a channel never holds more file data in Redis than
//     its budget (SendOptions.MaxBytes); senders wait, and a file larger
//     than the budget streams through it.
//   - Cleanup: a file's keys are deleted as soon as every group that must
//     consume it has acknowledged it.
//   - Resume: dropped connections are retried for Options.RetryFor; a
//     restarted sender continues an unfinished upload of the same name,
//     and a batch of sends (SendOptions.Batch) run again skips the files
//     it already sent.
//   - Safety: names read from Redis are checked (no absolute paths, no
//     "..", no control characters) and a server whose eviction policy
//     could drop data is refused unless Options.AllowEviction is set.
//
// docs/PROTOCOL.md describes the keys and state machines in Redis.
package filecast
