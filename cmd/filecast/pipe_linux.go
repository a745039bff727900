//go:build linux

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// growPipe asks for a 1 MiB buffer on f if it is a pipe (the default, 64
// KiB, makes a fast producer and filecast take turns in small steps). A
// refusal (the limit is /proc/sys/fs/pipe-max-size) changes nothing.
func growPipe(f *os.File) {
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	if rc, err := f.SyscallConn(); err == nil { // unlike Fd, keeps f non-blocking
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20) })
	}
}
